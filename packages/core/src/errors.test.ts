import { describe, expect, it } from "vitest";
import * as errors from "./errors.js";
import {
  ERROR_CLASSES,
  DriverLoadError,
  InstanceNotFoundError,
  PasswordSetFailedError,
  VirtkitError,
  findError,
  isInstanceNotFound,
  isInvalidInput,
  isInvalidState,
  isUnsupported,
} from "./errors.js";
import { Secret } from "./secret.js";

type AnyErrorClass = (typeof ERROR_CLASSES)[number];

/** Sample constructor arguments per class (the last one is always the options). */
const ARGS: Record<string, unknown[]> = {
  InstanceNotFoundError: ["i-1"],
  InstanceNotRunningError: ["i-1"],
  InvalidStateError: ["i-1", "pause", "SHUTDOWN"],
  PowerOffFailureError: ["i-1", "timed out"],
  PasswordSetFailedError: ["i-1", "agent failed"],
  AdminPasswordNotSupportedError: ["not supported"],
  GuestAgentNotEnabledError: ["i-1"],
  GuestAgentUnresponsiveError: ["i-1"],
  UnsupportedOperationError: ["pause", "fake"],
  InvalidInputError: ["instance.name", "bad"],
  UnexpectedTaskStateError: ["i-1", [null], "deleting"],
  MigrationPreCheckError: ["no room"],
  LiveMigrationFailedError: ["i-1", "aborted"],
  HypervisorUnavailableError: ["h1", "refused"],
  DriverLoadError: ["fake", "not found"],
  SnapshotNotFoundError: ["i-1", "s-1"],
  ImageNotFoundError: ["img-1"],
  InstanceExistsError: ["i-1"],
  OperationTimeoutError: ["spawn", 1000],
  OperationAbortedError: ["spawn"],
  StorageUnavailableError: ["default", "not active"],
  InsufficientStorageError: ["default", "needs 10 GiB"],
};

function make(cls: AnyErrorClass, options?: errors.VirtkitErrorOptions): errors.VirtkitError {
  const args = ARGS[cls.name];
  if (!args) throw new Error(`no sample args for ${cls.name}`);
  const Ctor = cls as unknown as new (...a: unknown[]) => errors.VirtkitError;
  return new Ctor(...args, options);
}

// A second copy of the module, as when a driver package resolves its own @virtkit/core.
const other = (await import(/* @vite-ignore */ `./errors.js?copy=${Date.now()}`)) as typeof errors;

describe("error classes", () => {
  it("lists every concrete class exactly once, and every one has sample args", () => {
    const concrete = Object.values(errors).filter(
      (v): v is AnyErrorClass => typeof v === "function" && v !== VirtkitError && Object.hasOwn(v, "CODE"),
    );
    expect(new Set(ERROR_CLASSES).size).toBe(ERROR_CLASSES.length);
    expect([...concrete].sort((a, b) => a.name.localeCompare(b.name))).toEqual(
      [...ERROR_CLASSES].sort((a, b) => a.name.localeCompare(b.name)),
    );
    expect(Object.keys(ARGS).sort()).toEqual(ERROR_CLASSES.map((c) => c.name).sort());
  });

  it("codes are unique and prefixed", () => {
    const codes = ERROR_CLASSES.map((c) => c.CODE);
    expect(new Set(codes).size).toBe(codes.length);
    for (const code of codes) expect(code).toMatch(/^VIRTKIT_[A-Z_]+$/);
  });

  it("the module loaded twice is really a second copy", () => {
    expect(other.InstanceNotFoundError).not.toBe(InstanceNotFoundError);
  });

  describe.each(ERROR_CLASSES.map((cls) => [cls.name, cls] as const))("%s", (name, cls) => {
    const err = make(cls);

    it("has its code, name and a message", () => {
      expect(err.code).toBe(cls.CODE);
      expect(err.name).toBe(name);
      expect(err.message.length).toBeGreaterThan(0);
      expect(String(err)).toContain(name);
    });

    it("is instanceof itself, VirtkitError and Error, and of no other class", () => {
      expect(err).toBeInstanceOf(cls);
      expect(err).toBeInstanceOf(VirtkitError);
      expect(err).toBeInstanceOf(Error);
      for (const otherCls of ERROR_CLASSES) if (otherCls !== cls) expect(err instanceof otherCls).toBe(false);
    });

    it("is instanceof across a second copy of the module, both ways", () => {
      const OtherCls = (other as unknown as Record<string, AnyErrorClass>)[name] as AnyErrorClass;
      expect(err instanceof OtherCls).toBe(true);
      expect(err instanceof other.VirtkitError).toBe(true);
      const foreign = make(OtherCls);
      expect(foreign instanceof cls).toBe(true);
      expect(foreign instanceof VirtkitError).toBe(true);
      expect(findError(foreign, cls.CODE)).toBe(foreign);
    });

    it("is found by findError through a cause chain", () => {
      const chain = new Error("outer", { cause: new Error("middle", { cause: err }) });
      expect(findError(chain, cls.CODE)).toBe(err);
      const otherCode = ERROR_CLASSES.find((c) => c !== cls)!.CODE;
      expect(findError(chain, otherCode)).toBeUndefined();
    });

    it("toJSON carries code, name, message and fields but no cause and no secret", () => {
      const secret = new Secret("hunter2-secret");
      const withCause = make(cls, {
        cause: Object.assign(new Error("driver said hunter2-secret"), { password: "hunter2-secret", secret }),
      });
      const json = withCause.toJSON();
      expect(json).toMatchObject({ code: cls.CODE, name, message: withCause.message });
      expect(json).not.toHaveProperty("cause");
      expect(JSON.stringify(withCause)).not.toContain("hunter2");
      expect(JSON.stringify(json)).not.toContain("hunter2");
    });
  });

  it("a plain object with only the base brand is a VirtkitError but no concrete class", () => {
    const branded = Object.defineProperty(new Error("x"), Symbol.for("virtkit.error"), { value: true });
    expect(branded instanceof VirtkitError).toBe(true);
    expect(branded instanceof InstanceNotFoundError).toBe(false);
    expect({} instanceof VirtkitError).toBe(false);
    const nothing: unknown = null;
    expect(nothing instanceof VirtkitError).toBe(false);
  });

  it("findError survives a cyclic cause chain and non-objects", () => {
    const a = new Error("a") as Error & { cause?: unknown };
    const b = new Error("b", { cause: a });
    a.cause = b;
    expect(findError(a, "VIRTKIT_INSTANCE_NOT_FOUND")).toBeUndefined();
    expect(findError("text", "VIRTKIT_INSTANCE_NOT_FOUND")).toBeUndefined();
    expect(findError(undefined, "VIRTKIT_INSTANCE_NOT_FOUND")).toBeUndefined();
  });

  it.each([
    [isInstanceNotFound, new errors.InstanceNotFoundError("i")],
    [isUnsupported, new errors.UnsupportedOperationError("pause", "x")],
    [isInvalidState, new errors.InvalidStateError("i", "pause", "SHUTDOWN")],
    [isInvalidInput, new errors.InvalidInputError("f", "r")],
  ])("%o matches through a cause and nothing else", (predicate, err) => {
    expect(predicate(err)).toBe(true);
    expect(predicate(new Error("wrapped", { cause: err }))).toBe(true);
    expect(predicate(new DriverLoadError("x", "y"))).toBe(false);
    expect(predicate(new Error("plain"))).toBe(false);
  });

  it("PasswordSetFailedError's message is built only from the id and reason", () => {
    const err = new PasswordSetFailedError("i-1", "error setting admin password");
    expect(err.message).toBe("Failed to set admin password on i-1 because error setting admin password");
  });
});
