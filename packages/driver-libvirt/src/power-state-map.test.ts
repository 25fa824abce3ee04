import { PowerState } from "@virtkit/core";
import { DomainState } from "@virtkit/libvirt-rpc";
import { describe, expect, it } from "vitest";
import { LIBVIRT_POWER_STATE, toPowerState } from "./power-state-map.js";

describe("LIBVIRT_POWER_STATE", () => {
  it.each([
    [DomainState.NOSTATE, PowerState.NOSTATE],
    [DomainState.RUNNING, PowerState.RUNNING],
    [DomainState.BLOCKED, PowerState.RUNNING],
    [DomainState.PAUSED, PowerState.PAUSED],
    [DomainState.SHUTDOWN, PowerState.SHUTDOWN],
    [DomainState.SHUTOFF, PowerState.SHUTDOWN],
    [DomainState.CRASHED, PowerState.CRASHED],
    [DomainState.PMSUSPENDED, PowerState.SUSPENDED],
  ])("virDomainState %i -> power state %i (Nova's map)", (domainState, power) => {
    expect(LIBVIRT_POWER_STATE[domainState]).toBe(power);
    expect(toPowerState(domainState)).toBe(power);
  });
  it("reports a managed-saved shut-off domain as SUSPENDED", () => {
    expect(toPowerState(DomainState.SHUTOFF, true)).toBe(PowerState.SUSPENDED);
    expect(toPowerState(DomainState.RUNNING, true)).toBe(PowerState.RUNNING);
  });
  it("maps unknown states to NOSTATE", () => {
    expect(toPowerState(99)).toBe(PowerState.NOSTATE);
  });
});
