import { describe, expect, it } from "vitest";
import { InstanceExistsError, InstanceNotFoundError, UnexpectedTaskStateError } from "./errors.js";
import { InMemoryInstanceStore, type NewInstanceRecord } from "./instance-store.js";
import { PowerState, TaskState, VmState } from "./states.js";
import { testInstance } from "./testing/stub-driver.js";

function newRecord(): NewInstanceRecord {
  return { ...testInstance(), vmState: VmState.ACTIVE, taskState: null, powerState: PowerState.RUNNING, host: "h1" };
}

describe("InMemoryInstanceStore", () => {
  it("creates, gets, lists and deletes; records are frozen copies", async () => {
    const store = new InMemoryInstanceStore();
    const input = newRecord();
    const created = await store.create(input);
    expect(created).toMatchObject(input);
    expect(created.createdAt).toBe(created.updatedAt);
    expect(Object.isFrozen(created)).toBe(true);
    expect(Object.isFrozen(created.flavor)).toBe(true);
    expect(created.flavor).not.toBe(input.flavor);
    expect(await store.get(input.uuid)).toEqual(created);
    expect(await store.list()).toHaveLength(1);
    await expect(store.create(input)).rejects.toBeInstanceOf(InstanceExistsError);
    await store.delete(input.uuid);
    await expect(store.get(input.uuid)).rejects.toBeInstanceOf(InstanceNotFoundError);
    await expect(store.delete(input.uuid)).rejects.toBeInstanceOf(InstanceNotFoundError);
    await expect(store.save(input.uuid, {})).rejects.toBeInstanceOf(InstanceNotFoundError);
  });

  it.each([
    [null, null, true],
    [null, [null, TaskState.PAUSING], true],
    [TaskState.PAUSING, [null, TaskState.PAUSING], true],
    [TaskState.PAUSING, undefined, true],
    [null, TaskState.PAUSING, false],
    [TaskState.DELETING, null, false],
    [TaskState.DELETING, [TaskState.PAUSING, TaskState.UNPAUSING], false],
    [TaskState.PAUSING, [], false],
  ] as const)("save with stored task %j expecting %j: written=%s", async (stored, expected, ok) => {
    const store = new InMemoryInstanceStore();
    const { uuid } = await store.create({ ...newRecord(), taskState: stored });
    const before = await store.get(uuid);
    const attempt = store.save(uuid, { vmState: VmState.PAUSED, taskState: null }, { expectedTaskState: expected });
    if (ok) {
      const after = await attempt;
      expect(after).toMatchObject({ vmState: VmState.PAUSED, taskState: null });
    } else {
      const err = await attempt.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(UnexpectedTaskStateError);
      expect(err).toMatchObject({ instanceId: uuid, actual: stored });
      expect(await store.get(uuid)).toEqual(before);
    }
  });

  it("one of two racing claims wins", async () => {
    const store = new InMemoryInstanceStore();
    const { uuid } = await store.create(newRecord());
    const results = await Promise.allSettled([
      store.save(uuid, { taskState: TaskState.PAUSING }, { expectedTaskState: null }),
      store.save(uuid, { taskState: TaskState.DELETING }, { expectedTaskState: null }),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual(["fulfilled", "rejected"]);
    expect((await store.get(uuid)).taskState).toBe(TaskState.PAUSING);
  });

  it("delete compares and sets too", async () => {
    const store = new InMemoryInstanceStore();
    const { uuid } = await store.create({ ...newRecord(), taskState: TaskState.MIGRATING });
    await expect(store.delete(uuid, { expectedTaskState: TaskState.DELETING })).rejects.toBeInstanceOf(
      UnexpectedTaskStateError,
    );
    await store.delete(uuid, { expectedTaskState: TaskState.MIGRATING });
    expect(await store.list()).toEqual([]);
  });

  it("sets and clears lastError and bumps updatedAt", async () => {
    const store = new InMemoryInstanceStore();
    const { uuid, updatedAt } = await store.create(newRecord());
    await new Promise((r) => setTimeout(r, 2));
    const withError = await store.save(uuid, { lastError: { code: "X", message: "m", at: "t" } });
    expect(withError.lastError).toEqual({ code: "X", message: "m", at: "t" });
    expect(withError.updatedAt > updatedAt).toBe(true);
    const cleared = await store.save(uuid, { lastError: null });
    expect(cleared).not.toHaveProperty("lastError");
  });

  it("honours an aborted signal", async () => {
    const store = new InMemoryInstanceStore();
    await expect(store.list({ signal: AbortSignal.abort() })).rejects.toThrow(/aborted/);
  });
});
