// The kit as a driver author uses it: about ten lines in an ordinary vitest file.
import { computeServiceFactory } from "../compute-service-adapter.js";
import { fakeEnvironment } from "../environments/fake-environment.js";
import { defineConformanceSuite } from "./define-suite.js";

defineConformanceSuite({
  driver: { name: "fake" },
  environment: fakeEnvironment({ notes: ["the fake driver, through defineConformanceSuite"] }),
  service: computeServiceFactory(),
  parallel: 4,
});
