// The order defineConformanceSuite registers its tests in: vitest's reporters list them so.
import { afterAll, expect } from "vitest";
import { fakeEnvironment } from "../environments/fake-environment.js";
import { defineConformanceSuite } from "./define-suite.js";
import { orderRow } from "./fixtures/order-rows.js";

const table = [
  orderRow("order.a"),
  orderRow("order.b", 300),
  orderRow("order.c", Number.NaN),
  orderRow("order.d", 1_100),
  orderRow("order.e", -5),
];
const ids = ["order.a", "order.b", "order.c", "order.d", "order.e"];

// A driver author's own file: the table's order, whatever the waits.
defineConformanceSuite({
  driver: { name: "table-order" },
  environment: fakeEnvironment(),
  scenarios: table,
  parallel: 2,
});
// The CLI's runner: the longest waits first (it reports in the table's order itself).
defineConformanceSuite({
  driver: { name: "waits-first" },
  environment: fakeEnvironment(),
  scenarios: table,
  parallel: 2,
  longestWaitsFirst: true,
});
// Asked for, but one at a time or fail-fast: nothing to gain, the table's order.
defineConformanceSuite({
  driver: { name: "one-at-a-time" },
  environment: fakeEnvironment(),
  scenarios: table,
  parallel: 1,
  longestWaitsFirst: true,
});
defineConformanceSuite({
  driver: { name: "fail-fast" },
  environment: fakeEnvironment(),
  scenarios: table,
  parallel: 2,
  failFast: true,
  longestWaitsFirst: true,
});

// vitest passes the file's suite second; its first argument must be a destructuring pattern.
// eslint-disable-next-line no-empty-pattern
afterAll(({}, file) => {
  const registered = (driver: string): string[] => {
    const suite = file.tasks.find((t) => t.name === `virtkit conformance: ${driver}`);
    return suite !== undefined && "tasks" in suite ? suite.tasks.map((t) => t.name.split(" ")[0] ?? "") : [];
  };
  expect(registered("table-order")).toEqual(ids);
  // NaN and negative waits count as none: they keep their table places among the unmarked rows.
  expect(registered("waits-first")).toEqual(["order.d", "order.b", "order.a", "order.c", "order.e"]);
  expect(registered("one-at-a-time")).toEqual(ids);
  expect(registered("fail-fast")).toEqual(ids);
});
