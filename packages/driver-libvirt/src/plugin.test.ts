import { CONTRACT_VERSION, InMemoryImageService, TOKENS, createContainer, driverToken } from "@virtkit/core";
import { describe, expect, it } from "vitest";
import { libvirtEnvironmentLimits, libvirtEnvironmentNotes } from "./conformance-environment.js";
import { LibvirtDriver, virtTypeFromUri } from "./libvirt-driver.js";
import defaultPlugin, { libvirtOptionsSchema, plugin } from "./plugin.js";

describe("plugin manifest", () => {
  it("is a virtkit driver for this contract", () => {
    expect(defaultPlugin).toBe(plugin);
    expect(plugin).toMatchObject({ kind: "virtkit-driver", name: "libvirt", contractVersion: "^1.0.0" });
    expect(CONTRACT_VERSION.split(".")[0]).toBe("1");
  });

  it("coerces CLI strings and refuses unknown or bad options", () => {
    expect(
      libvirtOptionsSchema.parse({
        uri: "test+unix:///default?socket=/tmp/s",
        timeoutMs: "5000",
        keepaliveIntervalSec: "0",
      }),
    ).toEqual({ uri: "test+unix:///default?socket=/tmp/s", timeoutMs: 5000, keepaliveIntervalSec: 0 });
    expect(libvirtOptionsSchema.safeParse({}).success).toBe(false);
    expect(libvirtOptionsSchema.safeParse({ uri: "qemu:///system", bogus: "1" }).success).toBe(false);
    expect(libvirtOptionsSchema.safeParse({ uri: "qemu:///system", timeoutMs: "" }).success).toBe(false);
    expect(libvirtOptionsSchema.safeParse({ uri: "qemu:///system", timeoutMs: "abc" }).success).toBe(false);
    expect(libvirtOptionsSchema.safeParse({ uri: "not a uri" }).success).toBe(false);
    expect(
      libvirtOptionsSchema.safeParse({ uri: "qemu:///system", liveMigrationUriTemplate: "qemu+tcp://x" }).success,
    ).toBe(false);
  });

  it("registers a LibvirtDriver with the container's image service", () => {
    const c = createContainer();
    c.register(TOKENS.ImageService, { useValue: new InMemoryImageService() });
    const token = driverToken("libvirt");
    plugin.register(c, { name: "libvirt", token, options: libvirtOptionsSchema.parse({ uri: "test:///default" }) });
    const driver = c.resolve(token);
    expect(driver).toBeInstanceOf(LibvirtDriver);
    expect(c.resolve(token)).toBe(driver);
    expect((driver as LibvirtDriver).virtType).toBe("test");
  });
});

describe("plugin conformance environment", () => {
  it("names its limits by scenario ids the kit really has, each with a reason", async () => {
    const { SCENARIOS, SCENARIO_GROUPS } = await import("@virtkit/conformance");
    const known = new Set<string>([...SCENARIOS.map((s) => s.id), ...SCENARIO_GROUPS]);
    for (const uri of ["test+unix:///default?socket=/tmp/s", "qemu+tcp://kvm-1/system"]) {
      const limits = libvirtEnvironmentLimits(virtTypeFromUri(uri), uri);
      expect(Object.keys(limits).length).toBeGreaterThan(0);
      for (const [key, reason] of Object.entries(limits)) {
        expect(known.has(key), key).toBe(true);
        expect(reason.length).toBeGreaterThan(20);
        expect(reason).not.toContain("socket=");
      }
      // No guest login anywhere here: the password's effect is never claimed as verified.
      expect(limits["admin-password.set"]).toBeDefined();
    }
    expect(libvirtEnvironmentLimits("test", "test:///default")["migration.live"]).toMatch(
      /test:\/\/\/default .*no migration/,
    );
    expect(libvirtEnvironmentNotes("test", "test+unix:///default?socket=/tmp/s").join("\n")).not.toContain("/tmp/s");
  });

  it("is offered by the plugin and builds an environment without connecting", async () => {
    const factory = plugin.conformanceEnvironment?.(
      libvirtOptionsSchema.parse({ uri: "test+unix:///default?socket=/nonexistent" }),
    );
    expect(factory).toBeTypeOf("function");
    const env = await factory!({ prefix: "vkunit" });
    expect(env.hosts).toHaveLength(1);
    expect(env.hypervisorControls?.setLatency).toBeTypeOf("function");
    expect(env.verifyAdminPassword).toBeUndefined();
    expect(await env.leftovers?.()).toEqual([]);
    await env.cleanup();
  });
});

describe("uri validation", () => {
  it.each(["qemu+tcp://[::1:SECRETx/system", "qemu+tcp://admin:SECRETpw@h:99999/system", "qemu+carrier://h/system"])(
    "refuses %s up front without repeating it",
    (uri) => {
      const r = libvirtOptionsSchema.safeParse({ uri });
      expect(r.success).toBe(false);
      expect(JSON.stringify(r.error?.issues)).not.toContain("SECRET");
    },
  );

  it("accepts the URIs the daemon takes", () => {
    for (const uri of [
      "qemu:///system",
      "qemu+unix:///system?socket=/run/x",
      "test+tcp://127.0.0.1:16519/default",
      "qemu+tls://h/system",
    ]) {
      expect(libvirtOptionsSchema.safeParse({ uri }).success).toBe(true);
    }
  });
});
