// The adapter against the real pino, writing to a stream the test reads.
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { InvalidInputError } from "./errors.js";
import { pinoLogger, type PinoLike } from "./pino-logger.js";
import { Secret } from "./secret.js";

const PASSWORD = "S3cr3t-Pa55w0rd!";

function capture(level = "debug") {
  const chunks: string[] = [];
  const logger = pino({ level, base: null }, { write: (chunk: string) => chunks.push(chunk) });
  return { logger, lines: () => chunks.join("").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe("pinoLogger", () => {
  it("calls pino as (obj, msg), with levels, bound fields and children", () => {
    const { logger, lines } = capture();
    const log = pinoLogger(logger).child({ host: "compute-1" });
    log.info("instance active", { instance: "u1", vcpus: 2 });
    log.child({ driver: "fake" }).warn("slow", { ms: 5 });
    log.debug("details");
    log.error("failed", { error: new InvalidInputError("flavor", "too big") });
    const got = lines();
    expect(got.map((l) => [l.level, l.msg])).toEqual([
      [30, "instance active"],
      [40, "slow"],
      [20, "details"],
      [50, "failed"],
    ]);
    expect(got[0]).toMatchObject({ host: "compute-1", instance: "u1", vcpus: 2 });
    expect(got[1]).toMatchObject({ host: "compute-1", driver: "fake", ms: 5 });
    expect(got[3]?.error).toMatchObject({ code: "VIRTKIT_INVALID_INPUT", field: "flavor" });
  });

  it("redacts Secrets, password-like keys and URI credentials under any key, in fields, bindings and messages", () => {
    const { logger, lines } = capture();
    const log = pinoLogger(logger).child({ connection: `xen://root:${PASSWORD}@xen-1/`, apiToken: PASSWORD });
    log.info(`connecting to https://admin:${PASSWORD}@xen-2/api`, {
      target: `https://admin:${PASSWORD}@xen-2/api?session_token=${PASSWORD}&pool=a`,
      secret: new Secret(PASSWORD),
      nested: { list: [`qemu+tcp://u:${PASSWORD}@h/system`] },
    });
    const text = JSON.stringify(lines());
    expect(text).not.toContain(PASSWORD);
    const [line] = lines();
    expect(line).toMatchObject({
      connection: "xen://root:***@xen-1/",
      apiToken: "***",
      target: "https://admin:***@xen-2/api?session_token=***&pool=a",
      secret: "***",
      nested: { list: ["qemu+tcp://u:***@h/system"] },
      msg: "connecting to https://admin:***@xen-2/api",
    });
  });

  it("skips work for a level pino would drop", () => {
    const calls: string[] = [];
    const fake: PinoLike = {
      debug: () => calls.push("debug"),
      info: () => calls.push("info"),
      warn: () => calls.push("warn"),
      error: () => calls.push("error"),
      child: () => fake,
      isLevelEnabled: (level) => level !== "debug",
    };
    const log = pinoLogger(fake);
    log.debug("dropped", {
      get expensive(): string {
        throw new Error("redacted although dropped");
      },
    });
    log.info("kept");
    expect(calls).toEqual(["info"]);
  });
});
