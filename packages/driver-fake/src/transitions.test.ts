import { InvalidStateError, PowerState, type Instance } from "@virtkit/core";
import { describe, expect, it } from "vitest";
import type { FakeDriver } from "./fake-driver.js";
import { makeCloud, makeInstance, recordEvents } from "./testing/fixtures.js";
import { INSTANCE_STATES, TRANSITIONS, nextState, type InstanceStateName, type PowerOperation } from "./transitions.js";

type Op = "pause" | "unpause" | "suspend" | "resume" | "powerOff" | "powerOn" | "rebootSoft" | "rebootHard" | "rescue";

// The expected table, written out independently of TRANSITIONS: op -> state -> result ("x" = illegal).
const EXPECTED: Record<Op, Record<InstanceStateName, InstanceStateName | "x">> = {
  pause: { RUNNING: "PAUSED", PAUSED: "x", SUSPENDED: "x", SHUTDOWN: "x", CRASHED: "x" },
  unpause: { RUNNING: "x", PAUSED: "RUNNING", SUSPENDED: "x", SHUTDOWN: "x", CRASHED: "x" },
  suspend: { RUNNING: "SUSPENDED", PAUSED: "SUSPENDED", SUSPENDED: "x", SHUTDOWN: "x", CRASHED: "x" },
  resume: { RUNNING: "x", PAUSED: "x", SUSPENDED: "RUNNING", SHUTDOWN: "x", CRASHED: "x" },
  powerOff: {
    RUNNING: "SHUTDOWN",
    PAUSED: "SHUTDOWN",
    SUSPENDED: "SHUTDOWN",
    SHUTDOWN: "SHUTDOWN",
    CRASHED: "SHUTDOWN",
  },
  powerOn: { RUNNING: "RUNNING", PAUSED: "x", SUSPENDED: "x", SHUTDOWN: "RUNNING", CRASHED: "RUNNING" },
  // A soft reboot of a guest that is not running is a hard one (Nova's _soft_reboot returns False).
  rebootSoft: { RUNNING: "RUNNING", PAUSED: "RUNNING", SUSPENDED: "RUNNING", SHUTDOWN: "RUNNING", CRASHED: "RUNNING" },
  // Nova's ALLOW_HARD_REBOOT includes SUSPENDED: the saved state is discarded, the guest boots.
  rebootHard: { RUNNING: "RUNNING", PAUSED: "RUNNING", SUSPENDED: "RUNNING", SHUTDOWN: "RUNNING", CRASHED: "RUNNING" },
  rescue: { RUNNING: "RUNNING", PAUSED: "x", SUSPENDED: "x", SHUTDOWN: "RUNNING", CRASHED: "x" },
};

// The operation name InvalidStateError reports.
const OP_NAME: Record<Op, string> = {
  pause: "pause",
  unpause: "unpause",
  suspend: "suspend",
  resume: "resume",
  powerOff: "powerOff",
  powerOn: "powerOn",
  rebootSoft: "reboot",
  rebootHard: "reboot",
  rescue: "rescue",
};

async function putInState(driver: FakeDriver, instance: Instance, state: InstanceStateName): Promise<void> {
  await driver.spawn({ instance });
  switch (state) {
    case "RUNNING":
      break;
    case "PAUSED":
      await driver.pause(instance);
      break;
    case "SUSPENDED":
      await driver.suspend(instance);
      break;
    case "SHUTDOWN":
      await driver.powerOff(instance);
      break;
    case "CRASHED":
      driver.faults.crash(instance.uuid);
      break;
  }
  expect((await driver.getInfo(instance)).state).toBe(PowerState[state]);
}

function run(driver: FakeDriver, op: Op, instance: Instance): Promise<void> {
  switch (op) {
    case "rebootSoft":
      return driver.reboot(instance, "SOFT");
    case "rebootHard":
      return driver.reboot(instance, "HARD");
    case "rescue":
      return driver.rescue(instance, { properties: {} });
    default:
      return driver[op](instance);
  }
}

// Both reboot types share the table's `reboot` row.
const tableOp = (op: Op): PowerOperation => (op === "rebootSoft" || op === "rebootHard" ? "reboot" : op);

describe("the transition table", () => {
  it("matches the written-out expectations", () => {
    for (const [op, row] of Object.entries(EXPECTED) as [Op, Record<InstanceStateName, InstanceStateName | "x">][]) {
      for (const state of INSTANCE_STATES) {
        expect(nextState(tableOp(op), state) ?? "x", `${op} from ${state}`).toBe(row[state]);
      }
    }
    const ops = new Set([...(Object.keys(EXPECTED) as Op[]).map(tableOp), "unrescue"]);
    expect(Object.keys(TRANSITIONS).sort()).toEqual([...ops].sort());
  });
});

describe("every operation from every state", () => {
  const cases = (Object.keys(EXPECTED) as Op[]).flatMap((op) => INSTANCE_STATES.map((state) => [op, state] as const));

  it.each(cases)("%s from %s", async (op, state) => {
    const { drivers } = makeCloud();
    const driver = drivers[0]!;
    const instance = makeInstance();
    await putInState(driver, instance, state);
    const before = await driver.getInfo(instance);
    const expected = EXPECTED[op][state];
    if (expected === "x") {
      const err = await run(driver, op, instance).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidStateError);
      expect(err).toMatchObject({ instanceId: instance.uuid, operation: OP_NAME[op], state });
      const after = await driver.getInfo(instance);
      expect(after.state).toBe(before.state);
      expect(after.internalId).toBe(before.internalId);
    } else {
      await run(driver, op, instance);
      expect((await driver.getInfo(instance)).state).toBe(PowerState[expected]);
    }
    expect(await driver.instanceExists(instance)).toBe(true);
    expect(await driver.listInstanceUuids()).toEqual([instance.uuid]);
  });
});

describe("rescue mode", () => {
  it("unrescue is illegal unless rescued, in every state", async () => {
    for (const state of INSTANCE_STATES) {
      const { drivers } = makeCloud();
      const driver = drivers[0]!;
      const instance = makeInstance();
      await putInState(driver, instance, state);
      await expect(driver.unrescue(instance)).rejects.toMatchObject({
        code: "VIRTKIT_INVALID_STATE",
        operation: "unrescue",
        state,
      });
      expect((await driver.getInfo(instance)).state).toBe(PowerState[state]);
    }
  });

  it("rescue of a rescued instance is illegal; unrescue returns to RUNNING", async () => {
    const { drivers, cloud } = makeCloud();
    const driver = drivers[0]!;
    const instance = makeInstance();
    await driver.spawn({ instance });
    await driver.rescue(instance, { id: "rescue-image", properties: {} });
    expect(cloud.guest(instance.uuid).consoleOutput()).toContain("root=/dev/vdb1");
    await expect(driver.rescue(instance, { properties: {} })).rejects.toBeInstanceOf(InvalidStateError);
    await driver.unrescue(instance);
    expect((await driver.getInfo(instance)).state).toBe(PowerState.RUNNING);
    await expect(driver.unrescue(instance)).rejects.toBeInstanceOf(InvalidStateError);
  });

  it("a rescued instance that was powered off unrescues to RUNNING", async () => {
    const { drivers } = makeCloud();
    const driver = drivers[0]!;
    const instance = makeInstance();
    await driver.spawn({ instance });
    await driver.rescue(instance, { properties: {} });
    await driver.powerOff(instance);
    await driver.unrescue(instance);
    expect((await driver.getInfo(instance)).state).toBe(PowerState.RUNNING);
  });
});

describe("destroy", () => {
  it.each(INSTANCE_STATES)("works from %s and is idempotent", async (state) => {
    const { drivers } = makeCloud();
    const driver = drivers[0]!;
    const instance = makeInstance();
    await putInState(driver, instance, state);
    await driver.destroy(instance);
    expect(await driver.instanceExists(instance)).toBe(false);
    expect(await driver.listInstances()).toEqual([]);
    await driver.destroy(instance);
  });

  it("of a never-existing instance is fine", async () => {
    const { drivers } = makeCloud();
    await expect(drivers[0]!.destroy(makeInstance())).resolves.toBeUndefined();
  });
});

describe("events per transition", () => {
  it.each([
    ["pause", "RUNNING", ["PAUSED"]],
    ["unpause", "PAUSED", ["RESUMED"]],
    ["suspend", "RUNNING", ["SUSPENDED"]],
    ["resume", "SUSPENDED", ["RESUMED"]],
    ["powerOff", "RUNNING", ["STOPPED"]],
    ["powerOff", "SHUTDOWN", []],
    ["powerOn", "SHUTDOWN", ["STARTED"]],
    ["powerOn", "RUNNING", []],
    ["rebootSoft", "RUNNING", []],
    ["rebootHard", "RUNNING", ["STOPPED", "STARTED"]],
    ["rebootHard", "SHUTDOWN", ["STARTED"]],
    // A hard reboot destroys the crashed domain first, as Nova's _hard_reboot does.
    ["rebootHard", "CRASHED", ["STOPPED", "STARTED"]],
    ["rebootHard", "PAUSED", ["STOPPED", "STARTED"]],
    ["rescue", "RUNNING", ["STOPPED", "STARTED"]],
    ["rescue", "SHUTDOWN", ["STARTED"]],
  ] as [Op, InstanceStateName, string[]][])("%s from %s emits %j", async (op, state, expected) => {
    const { drivers } = makeCloud();
    const driver = drivers[0]!;
    const instance = makeInstance();
    await putInState(driver, instance, state);
    const rec = recordEvents(driver);
    await run(driver, op, instance);
    expect(rec.transitions()).toEqual(expected);
    for (const e of rec.events) expect(e).toMatchObject({ instanceUuid: instance.uuid, host: "host-a" });
  });

  it("spawn emits STARTED, crash CRASHED, destroy STOPPED", async () => {
    const { drivers } = makeCloud();
    const driver = drivers[0]!;
    const rec = recordEvents(driver);
    const instance = makeInstance();
    await driver.spawn({ instance });
    driver.faults.crash(instance.uuid);
    await driver.destroy(instance);
    expect(rec.transitions()).toEqual(["STARTED", "CRASHED", "STOPPED"]);
  });
});
