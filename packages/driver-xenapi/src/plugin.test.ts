import { EventEmitter } from "node:events";
import { DriverRegistry, MemoryLogger, createContainer, driverToken, validatePluginManifest, validatePluginOptions, type Secret } from "@virtkit/core";
import { describe, expect, it } from "vitest";
import { PASSWORD_ENV, promptHidden, resolveXenapiPassword } from "./password-source.js";
import { plugin, xenapiOptionsSchema } from "./plugin.js";
import { XenapiDriver } from "./xenapi-driver.js";

describe("the xenapi plugin", () => {
  it("is a valid manifest that says where its results come from", () => {
    expect(() => validatePluginManifest(plugin, "xenapi")).not.toThrow();
    expect(plugin.name).toBe("xenapi");
    expect(plugin.notes?.join(" ")).toMatch(/XAPI simulator/);
  });

  it("refuses the password as an option, and a URL carrying credentials", () => {
    const pw = xenapiOptionsSchema.safeParse({ url: "https://xs1", password: "hunter2-secret" });
    expect(pw.success).toBe(false);
    expect(JSON.stringify(pw.error?.issues)).toMatch(/VIRTKIT_XENAPI_PASSWORD/);
    expect(JSON.stringify(pw.error?.issues)).not.toContain("hunter2-secret");
    expect(xenapiOptionsSchema.safeParse({ url: "https://root:pw@xs1" }).success).toBe(false);
    expect(xenapiOptionsSchema.safeParse({ url: "https://xs1", insecure: "true", timeoutMs: "5000" }).data).toEqual({
      url: "https://xs1",
      insecure: true,
      timeoutMs: 5000,
    });
    expect(xenapiOptionsSchema.safeParse({ bogus: 1 }).success).toBe(false);
    // A URL that does not parse is the option's error, not the schema's crash.
    for (const bad of ["abc", "http://", "http://127.0.0.1:99999", "https://256.1.1.1", "https://a b"]) {
      const r = xenapiOptionsSchema.safeParse({ url: bad });
      expect(r.success, bad).toBe(false);
      expect(r.error?.issues[0]?.path, bad).toEqual(["url"]);
    }
  });

  it("refuses http:// to another machine (the password would cross the network in clear) unless allowHttp", () => {
    const off = xenapiOptionsSchema.safeParse({ url: "http://xs1.example" });
    expect(off.success).toBe(false);
    expect(JSON.stringify(off.error?.issues)).toMatch(/in clear: use https:\/\//);
    expect(xenapiOptionsSchema.safeParse({ url: "http://xs1.example", allowHttp: "true" }).success).toBe(true);
    for (const local of ["http://127.0.0.1:8080", "http://localhost", "http://[::1]:4000", "https://xs1.example"]) {
      expect(xenapiOptionsSchema.safeParse({ url: local }).success, local).toBe(true);
    }
  });

  it("validates CLI strings through core's option parser", () => {
    expect(() => validatePluginOptions(plugin, { password: "x" })).toThrow(/VIRTKIT_XENAPI_PASSWORD/);
  });

  it("registers a XenapiDriver under the token it is given", () => {
    const child = createContainer();
    plugin.register(child, { name: "xs", token: driverToken("xs"), options: { url: "https://xs1" } });
    expect(child.resolve(driverToken("xs"))).toBeInstanceOf(XenapiDriver);
    expect(child.isRegistered(driverToken("xenapi"), false)).toBe(false);
  });

  it("runs against the embedded simulator when no url is given, through a DriverRegistry, and says so in the service's log", async () => {
    const logger = new MemoryLogger();
    const registry = new DriverRegistry({ logger });
    registry.add("sim-host", plugin, {});
    const driver = registry.get("sim-host");
    expect(driver).toBeInstanceOf(XenapiDriver);
    try {
      await driver.initHost("sim-host");
      expect((await driver.getHostInfo()).hypervisorType).toBe("Xen");
      expect(await driver.listInstances()).toEqual([]);
      expect(logger.records.some((r) => r.level === "warn" && /embedded XAPI simulator, not a real host/.test(r.msg))).toBe(true);
    } finally {
      await driver.cleanupHost("sim-host");
    }
  });
});

describe("the password source", () => {
  it("reads VIRTKIT_XENAPI_PASSWORD", async () => {
    const s = await resolveXenapiPassword("root@xs1", { [PASSWORD_ENV]: "from-env" }, { isTTY: false } as never);
    expect(s.reveal()).toBe("from-env");
  });

  it("refuses without the variable and without a terminal, naming the variable", async () => {
    const input = Object.assign(new EventEmitter(), { isTTY: false, resume() {}, pause() {} });
    await expect(resolveXenapiPassword("root@xs1", {}, input)).rejects.toMatchObject({
      code: "VIRTKIT_INVALID_INPUT",
      message: expect.stringContaining(PASSWORD_ENV),
    });
  });

  it("refuses a real-host conformance run up front when no password can come (before any scenario)", () => {
    const saved = process.env[PASSWORD_ENV];
    const tty = process.stdin.isTTY;
    delete process.env[PASSWORD_ENV];
    process.stdin.isTTY = false;
    try {
      expect(() => plugin.conformanceEnvironment!({ url: "https://xs1" })).toThrow(
        expect.objectContaining({ code: "VIRTKIT_INVALID_INPUT", message: expect.stringContaining(PASSWORD_ENV) }),
      );
      process.env[PASSWORD_ENV] = "from-env";
      const real = plugin.conformanceEnvironment!({ url: "https://xs1" });
      expect(typeof real).toBe("function");
      // A real host keeps the CLI's default number of scenarios at once; only the simulator asks for more.
      expect(real.defaultParallel).toBeUndefined();
      expect(plugin.conformanceEnvironment!({}).defaultParallel).toBe(16);
    } finally {
      if (saved === undefined) delete process.env[PASSWORD_ENV];
      else process.env[PASSWORD_ENV] = saved;
      process.stdin.isTTY = tty;
    }
  });

  it("an unreachable real host fails every environment with one typed error before anything is created", async () => {
    const saved = process.env[PASSWORD_ENV];
    process.env[PASSWORD_ENV] = "from-env";
    try {
      const factory = plugin.conformanceEnvironment!({ url: "http://127.0.0.1:1", username: "root" });
      const first = await factory({ prefix: "a" }).catch((e: unknown) => e);
      expect(first).toMatchObject({ code: "VIRTKIT_HYPERVISOR_UNAVAILABLE" });
      expect(String((first as Error).message)).not.toContain("from-env");
      // The second scenario gets the same answer at once: one login attempt per run.
      const t0 = performance.now();
      await expect(factory({ prefix: "b" })).rejects.toBe(first);
      expect(performance.now() - t0).toBeLessThan(100);
    } finally {
      if (saved === undefined) delete process.env[PASSWORD_ENV];
      else process.env[PASSWORD_ENV] = saved;
    }
  });

  it("prompts on a terminal without echoing what is typed", async () => {
    const input = Object.assign(new EventEmitter(), { isTTY: true, setRawMode: () => undefined, resume() {}, pause() {} });
    let written = "";
    const out = { write: (t: string) => (written += t) };
    const p = promptHidden("pw: ", input, out);
    input.emit("data", Buffer.from("s3cr"));
    input.emit("data", Buffer.from("etx\u007f\r"));
    const got: Secret = await p;
    expect(got.reveal()).toBe("s3cret");
    expect(written).not.toContain("s3cr");
  });
});
