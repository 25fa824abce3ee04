// @virtkit/core loads reflect-metadata, which tsyringe needs: keep it imported first.
import { CONTRACT_VERSION, InMemoryImageService, TOKENS, driverToken } from "@virtkit/core";
import { container } from "tsyringe";
import { describe, expect, it } from "vitest";
import { LibvirtDriver } from "./libvirt-driver.js";
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
    const c = container.createChildContainer();
    c.register(TOKENS.ImageService, { useValue: new InMemoryImageService() });
    const token = driverToken("libvirt");
    plugin.register(c, { name: "libvirt", token, options: libvirtOptionsSchema.parse({ uri: "test:///default" }) });
    const driver = c.resolve(token);
    expect(driver).toBeInstanceOf(LibvirtDriver);
    expect(c.resolve(token)).toBe(driver);
    expect((driver as LibvirtDriver).virtType).toBe("test");
  });
});
