// The nested-qemu environment's start and release against a stand-in of @virtkit/nested-qemu (no
// Docker here): options it sets itself are refused, an interrupt during the hosts' start leaves
// nothing behind (dispose stops the start and waits for its cleanup), and the runner owns the signals.
import { InvalidInputError } from "@virtkit/core";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

const SESSION_ENV = "VIRTKIT_NESTED_QEMU_SESSION";

const nq = vi.hoisted(() => ({
  startCalls: [] as { signal?: AbortSignal; handleSignals?: boolean; session?: string }[],
  cleanedUp: false,
  sweeps: [] as { session?: string }[],
}));

vi.mock("@virtkit/nested-qemu", () => ({
  SESSION_ENV: "VIRTKIT_NESTED_QEMU_SESSION",
  configureTestcontainers: () => "unix:///stand-in.sock",
  ensureImage: () => Promise.resolve({ image: "stand-in:1" }),
  // A start that runs until aborted, then takes a moment to remove what it made before it rejects.
  startNestedHosts: (options: { signal?: AbortSignal; handleSignals?: boolean; session?: string }) => {
    nq.startCalls.push(options);
    return new Promise((_, reject) => {
      options.signal?.addEventListener("abort", () => {
        setTimeout(() => {
          nq.cleanedUp = true;
          reject(new Error("start aborted"));
        }, 50);
      });
    });
  },
  sweepNestedQemu: (options: { session?: string }) => {
    nq.sweeps.push(options);
    return Promise.resolve({ containers: [], networks: [], volumes: [], failures: [] });
  },
}));

const { nestedQemuEnvironment } = await import("./nested-qemu-environment.js");

const validate = vi.fn((raw: Readonly<Record<string, string>>) => ({ uri: raw.uri ?? "" }));

describe("the nested-qemu environment", () => {
  let savedSession: string | undefined;
  beforeEach(() => {
    savedSession = process.env[SESSION_ENV];
    delete process.env[SESSION_ENV];
    nq.startCalls.length = 0;
    nq.sweeps.length = 0;
    nq.cleanedUp = false;
    validate.mockClear();
  });
  afterEach(() => {
    if (savedSession === undefined) delete process.env[SESSION_ENV];
    else process.env[SESSION_ENV] = savedSession;
  });

  it.each([
    ["uri", "qemu:///system"],
    ["allowPasswordOverTcp", "false"],
    ["allowPasswordOverTcp", "true"],
    ["liveMigrationInboundAddr", "10.0.0.1"],
  ])("refuses %s=%s: it sets that for each of its hosts itself", async (key, value) => {
    const env = nestedQemuEnvironment(validate as never);
    const made = env.conformanceEnvironment({ [key]: value }, {});
    await expect(made).rejects.toBeInstanceOf(InvalidInputError);
    await expect(made).rejects.toThrow(`the nested-qemu environment sets ${key} for each of its hosts itself`);
    expect(validate).not.toHaveBeenCalled();
  });

  it("dispose stops a start under way and returns only once its cleanup is done", async () => {
    const factory = await nestedQemuEnvironment(validate as never).conformanceEnvironment({}, {});
    const made = factory({ prefix: "vkt" });
    made.catch(() => undefined);
    await vi.waitFor(() => expect(nq.startCalls).toHaveLength(1));
    const call = nq.startCalls[0]!;
    // The runner handles SIGINT/SIGTERM and disposes: the hosts' own handler would re-raise the
    // signal, which the CLI takes for a second Ctrl-C (exit at once, no report).
    expect(call.handleSignals).toBe(false);
    expect(call.signal?.aborted).toBe(false);
    await factory.dispose?.();
    expect(call.signal?.aborted).toBe(true);
    expect(nq.cleanedUp).toBe(true);
    await expect(made).rejects.toThrow("start aborted");
  });

  it("hands its session to child processes and sweeps what they left in it on dispose", async () => {
    const factory = await nestedQemuEnvironment(validate as never).conformanceEnvironment({}, {});
    const session = process.env[SESSION_ENV];
    expect(session).toBeTruthy();
    // A second environment in the same process neither takes the session over nor sweeps it.
    const second = await nestedQemuEnvironment(validate as never).conformanceEnvironment({}, {});
    expect(process.env[SESSION_ENV]).toBe(session);
    await second.dispose?.();
    expect(nq.sweeps).toHaveLength(0);
    // Never started here (a child started the hosts): swept twice, a create the child sent as it died may land late.
    await factory.dispose?.();
    expect(nq.sweeps.map((s) => s.session)).toEqual([session, session]);
    expect(process.env[SESSION_ENV]).toBeUndefined();
  });
});
