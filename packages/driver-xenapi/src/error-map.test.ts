import { describe, expect, it } from "vitest";
import { mapXapiError } from "./error-map.js";
import { XapiError, XapiTransportError } from "./xapi-error.js";

const ctx = { operation: "pause", instanceId: "11111111-1111-4111-8111-111111111111", host: "127.0.0.1:1" };

describe("mapXapiError", () => {
  it.each([
    [["VM_BAD_POWER_STATE", "OpaqueRef:v", "running", "halted"], "VIRTKIT_INVALID_STATE"],
    [["OTHER_OPERATION_IN_PROGRESS", "VM", "OpaqueRef:v"], "VIRTKIT_INVALID_STATE"],
    [["OPERATION_BLOCKED", "OpaqueRef:v", "rescued"], "VIRTKIT_HYPERVISOR_UNAVAILABLE"],
    [["HANDLE_INVALID", "VM", "OpaqueRef:v"], "VIRTKIT_INSTANCE_NOT_FOUND"],
    [["SR_FULL", "1", "2"], "VIRTKIT_INSUFFICIENT_STORAGE"],
    [["HOST_OFFLINE", "OpaqueRef:h"], "VIRTKIT_HYPERVISOR_UNAVAILABLE"],
  ])("%j -> %s, with XAPI's code and params kept on the cause", (desc, code) => {
    const [c, ...p] = desc as string[];
    const xe = new XapiError("VM.pause", c!, p);
    const err = mapXapiError(xe, ctx);
    expect(err.code).toBe(code);
    expect(err.cause).toBe(xe);
    expect((err.cause as XapiError).xapiCode).toBe(c);
    expect((err.cause as XapiError).xapiParams).toEqual(p);
  });

  it("names the power state the instance was in for VM_BAD_POWER_STATE", () => {
    const err = mapXapiError(new XapiError("VM.pause", "VM_BAD_POWER_STATE", ["OpaqueRef:v", "running", "halted"]), ctx);
    expect(err.message).toContain("SHUTDOWN");
  });

  it("maps transport failures to HypervisorUnavailableError", () => {
    expect(mapXapiError(new XapiTransportError("refused"), ctx).code).toBe("VIRTKIT_HYPERVISOR_UNAVAILABLE");
  });

  it("masks session refs in SESSION_INVALID", () => {
    const xe = new XapiError("VM.pause", "SESSION_INVALID", ["OpaqueRef:secret-session"]);
    expect(xe.message).not.toContain("secret-session");
    expect(mapXapiError(xe, ctx).code).toBe("VIRTKIT_HYPERVISOR_UNAVAILABLE");
  });
});
