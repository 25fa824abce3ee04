import {
  GuestAgentUnresponsiveError,
  HypervisorUnavailableError,
  InstanceExistsError,
  InstanceNotFoundError,
  InvalidInputError,
  InvalidStateError,
  OperationAbortedError,
  OperationTimeoutError,
  SnapshotNotFoundError,
  UnsupportedOperationError,
  VirtkitError,
} from "@virtkit/core";
import {
  LibvirtAbortedError,
  LibvirtConnectionClosedError,
  LibvirtError,
  LibvirtTimeoutError,
  LibvirtVersionSkewError,
  VirErrorNumber,
} from "@virtkit/libvirt-rpc";
import { describe, expect, it } from "vitest";
import { mapLibvirtError, redact, redactLibvirtError } from "./error-map.js";
import { XmlParseError } from "./xml.js";

/** A daemon error as the rpc client raises it. */
export function lvError(code: number, message = "boom", int1 = 0): LibvirtError {
  return new LibvirtError(
    { code, domain: 10, message, level: 2, str1: message, str2: null, str3: null, int1, int2: 0 },
    "DOMAIN_X",
  );
}

const ctx = { instanceId: "i-1", operation: "pause", stateName: "SHUTDOWN", host: "qemu:///system" };

describe("mapLibvirtError", () => {
  it.each([
    [VirErrorNumber.VIR_ERR_NO_DOMAIN, InstanceNotFoundError],
    [VirErrorNumber.VIR_ERR_OPERATION_INVALID, InvalidStateError],
    [VirErrorNumber.VIR_ERR_NO_SUPPORT, UnsupportedOperationError],
    [VirErrorNumber.VIR_ERR_OPERATION_UNSUPPORTED, UnsupportedOperationError],
    [VirErrorNumber.VIR_ERR_DOM_EXIST, InstanceExistsError],
    [VirErrorNumber.VIR_ERR_NO_DOMAIN_SNAPSHOT, SnapshotNotFoundError],
    [VirErrorNumber.VIR_ERR_AGENT_UNRESPONSIVE, GuestAgentUnresponsiveError],
    [VirErrorNumber.VIR_ERR_OPERATION_TIMEOUT, OperationTimeoutError],
    [VirErrorNumber.VIR_ERR_XML_ERROR, InvalidInputError],
    [VirErrorNumber.VIR_ERR_RPC, HypervisorUnavailableError],
    [VirErrorNumber.VIR_ERR_NO_CONNECT, HypervisorUnavailableError],
  ])("virErrorNumber %i -> %o, keeping the LibvirtError as cause", (code, cls) => {
    const err = lvError(code);
    const mapped = mapLibvirtError(err, ctx);
    expect(mapped).toBeInstanceOf(cls);
    expect(mapped.cause).toBe(err);
  });
  it("names the operation and the current state for a wrong-state error", () => {
    const mapped = mapLibvirtError(lvError(VirErrorNumber.VIR_ERR_OPERATION_INVALID), ctx) as InvalidStateError;
    expect(mapped).toMatchObject({ instanceId: "i-1", operation: "pause", state: "SHUTDOWN" });
  });
  it("maps client-side failures", () => {
    expect(mapLibvirtError(new LibvirtTimeoutError("DOMAIN_X", 5), ctx)).toBeInstanceOf(OperationTimeoutError);
    expect(mapLibvirtError(new LibvirtAbortedError("DOMAIN_X"), ctx)).toBeInstanceOf(OperationAbortedError);
    expect(mapLibvirtError(new LibvirtConnectionClosedError(), ctx)).toBeInstanceOf(HypervisorUnavailableError);
    const skew = new LibvirtVersionSkewError("DOMAIN_X", lvError(VirErrorNumber.VIR_ERR_NO_SUPPORT));
    expect(mapLibvirtError(skew, { ...ctx, capability: "liveMigration" })).toMatchObject({
      capability: "liveMigration",
    });
  });
  it("maps XML from the daemon that does not parse to HypervisorUnavailableError, not the bare base error", () => {
    const mapped = mapLibvirtError(new XmlParseError("elements nested deeper than 256"), ctx);
    expect(mapped).toBeInstanceOf(HypervisorUnavailableError);
    expect(mapped.message).toMatch(/libvirtd answered XML that does not parse: elements nested deeper than 256/);
  });
  it("passes virtkit errors through and wraps anything else", () => {
    const v = new InstanceNotFoundError("x");
    expect(mapLibvirtError(v, ctx)).toBe(v);
    const other = mapLibvirtError(lvError(VirErrorNumber.VIR_ERR_INTERNAL_ERROR, "odd"), ctx);
    expect(other).toBeInstanceOf(VirtkitError);
    expect(other.message).toContain("odd");
  });
  it("never lets a secret through, in the message or in the cause", () => {
    const err = lvError(VirErrorNumber.VIR_ERR_INTERNAL_ERROR, "failed to set password hunter2 for root");
    const mapped = mapLibvirtError(err, { ...ctx, secrets: ["hunter2"] });
    expect(mapped.message).not.toContain("hunter2");
    expect(JSON.stringify(mapped.toJSON())).not.toContain("hunter2");
    const cause = mapped.cause as LibvirtError;
    expect(cause).toBeInstanceOf(LibvirtError);
    expect(cause.message).not.toContain("hunter2");
    expect(cause.remote.str1).not.toContain("hunter2");
    expect(cause.virErrorCode).toBe(VirErrorNumber.VIR_ERR_INTERNAL_ERROR);
    expect(redact("a pw b pw", ["pw"])).toBe("a *** b ***");
    expect(redactLibvirtError(err, ["hunter2"]).message).toBe("failed to set password *** for root");
  });
});
