import { describe, expect, it } from "vitest";
import {
  LibvirtAbortedError,
  LibvirtAuthUnsupportedError,
  LibvirtConnectionClosedError,
  LibvirtError,
  LibvirtProtocolError,
  LibvirtRpcError,
  LibvirtTimeoutError,
  LibvirtUriError,
  LibvirtVersionSkewError,
  isAgentUnresponsive,
  isConnectionClosed,
  isNoDomain,
  isNoDomainSnapshot,
  isNoSupport,
  isOperationInvalid,
  isOperationTimeout,
} from "./errors.js";
import { VirErrorNumber, virErrorDomainName, virErrorName } from "./error-codes.js";

const remote = (code: number, message = "m") => ({
  code,
  domain: 10,
  message,
  level: 2,
  str1: null,
  str2: null,
  str3: null,
  int1: 0,
  int2: 0,
});

describe("errors", () => {
  it.each([
    [new LibvirtError(remote(42)), "LibvirtError", "LIBVIRT_REMOTE_ERROR"],
    [new LibvirtProtocolError("bad"), "LibvirtProtocolError", "LIBVIRT_PROTOCOL_ERROR"],
    [new LibvirtTimeoutError("X", 5), "LibvirtTimeoutError", "LIBVIRT_TIMEOUT"],
    [new LibvirtAbortedError("X"), "LibvirtAbortedError", "LIBVIRT_ABORTED"],
    [new LibvirtConnectionClosedError(), "LibvirtConnectionClosedError", "LIBVIRT_CONNECTION_CLOSED"],
    [new LibvirtVersionSkewError("X", new LibvirtError(remote(3))), "LibvirtVersionSkewError", "LIBVIRT_VERSION_SKEW"],
    [new LibvirtUriError("u", "r"), "LibvirtUriError", "LIBVIRT_INVALID_URI"],
    [new LibvirtAuthUnsupportedError([1]), "LibvirtAuthUnsupportedError", "LIBVIRT_AUTH_UNSUPPORTED"],
  ])("%s has name %s and code %s", (err, name, code) => {
    expect(err.name).toBe(name);
    expect(err.code).toBe(code);
    expect(err).toBeInstanceOf(LibvirtRpcError);
    expect(err).toBeInstanceOf(Error);
  });

  it("names libvirt codes and domains", () => {
    const e = new LibvirtError(remote(VirErrorNumber.VIR_ERR_NO_DOMAIN, "Domain not found"), "DOMAIN_LOOKUP_BY_NAME");
    expect(e.virErrorCode).toBe(42);
    expect(e.virErrorName).toBe("VIR_ERR_NO_DOMAIN");
    expect(e.virErrorDomainName).toBe("VIR_FROM_QEMU");
    expect(e.message).toBe("Domain not found");
    expect(virErrorName(9999)).toBe("VIR_ERR_9999");
    expect(virErrorDomainName(12)).toBe("VIR_FROM_TEST");
    expect(VirErrorNumber.VIR_ERR_OPERATION_INVALID).toBe(55);
    expect(VirErrorNumber.VIR_ERR_AGENT_UNRESPONSIVE).toBe(86);
    expect(VirErrorNumber.VIR_ERR_NO_SUPPORT).toBe(3);
  });

  it.each([
    [isNoDomain, 42],
    [isOperationInvalid, 55],
    [isNoSupport, 3],
    [isOperationTimeout, 68],
    [isAgentUnresponsive, 86],
    [isNoDomainSnapshot, 72],
  ])("predicate %o matches code %d, also through cause chains", (pred, code) => {
    const e = new LibvirtError(remote(code));
    expect(pred(e)).toBe(true);
    expect(pred(new Error("wrapped", { cause: e }))).toBe(true);
    expect(pred(new LibvirtError(remote(1)))).toBe(false);
    expect(pred(new Error("x"))).toBe(false);
    expect(pred(undefined)).toBe(false);
  });

  it("version skew keeps the daemon error as its cause", () => {
    const skew = new LibvirtVersionSkewError("DOMAIN_FOO", new LibvirtError(remote(3, "unknown procedure: 999")));
    expect(skew.unknownProcedure).toBe(true);
    expect(skew.procedure).toBe("DOMAIN_FOO");
    expect(isNoSupport(skew)).toBe(true);
    expect(skew.message).toContain("DOMAIN_FOO");
  });

  it("instanceof works across copies through the Symbol.for brand", () => {
    const foreign = Object.create(Object.prototype) as Record<symbol, boolean>;
    foreign[Symbol.for("virtkit.libvirt-rpc.error")] = true;
    foreign[Symbol.for("virtkit.libvirt-rpc.error.LIBVIRT_TIMEOUT")] = true;
    expect(foreign).toBeInstanceOf(LibvirtTimeoutError);
    expect(foreign).toBeInstanceOf(LibvirtRpcError);
    expect(foreign).not.toBeInstanceOf(LibvirtAbortedError);
    expect(isConnectionClosed(new LibvirtProtocolError("x"))).toBe(true);
  });
});
