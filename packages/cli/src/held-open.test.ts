// A driver that leaves handles open after its cleanup (an interval, a listening socket) must not
// hang the CLI after the report: it exits with its code and says what held it.
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeHandles, exitWhenHeldOpen } from "./held-open.js";
import { wrappedFakePlugin } from "./testing/cli-process.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = join(root, "bin", "run.js");


let dir: string;
let leaky: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "virtkit-held-open-"));
  // The fake, but every initHost starts an interval and a listening socket that cleanupHost leaves open.
  leaky = await wrappedFakePlugin(
    dir,
    "leaky",
    `(d) => {
  const initHost = d.initHost.bind(d);
  d.initHost = async (...args) => {
    setInterval(() => undefined, 60_000);
    createServer().listen(0, "127.0.0.1");
    return initHost(...args);
  };
}`,
    `import { createServer } from "node:net";`,
  );
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs the CLI; a hang is cut at 60 s (status null). */
function virtkit(args: string[]) {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", timeout: 60_000, killSignal: "SIGKILL" });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - t0 };
}

describe("handles a driver leaves open", () => {
  it("names the kinds, leaving the standard streams out", () => {
    expect(describeHandles(["PipeWrap", "Timeout", "TCPServerWrap", "Timeout", "TTYWrap"])).toBe("2 Timeout, 1 TCPServerWrap");
    expect(describeHandles(["PipeWrap"])).toBe("of a kind Node does not name");
  });

  it("exits with the command's code once the grace is over, and never holds the process itself", async () => {
    const said: string[] = [];
    const exits: number[] = [];
    exitWhenHeldOpen({ graceMs: 20, resources: () => ["Timeout"], write: (t) => said.push(t), code: () => 1, exit: (c) => exits.push(c) });
    await new Promise((r) => setTimeout(r, 60));
    expect(exits).toEqual([1]);
    expect(said.join("")).toMatch(/handles left open keep the process alive \(1 Timeout\).*exiting with code 1/);
  });

  it("conformance run --runner direct exits with its code after the report", async () => {
    const report = join(dir, "run.json");
    const r = virtkit(["conformance", "run", "--driver", leaky, "--runner", "direct", "--focus", "^lifecycle\\.spawn$", "--report-json", report]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/handles left open keep the process alive \(.*Timeout.*\).*exiting with code 0/);
    expect(r.stderr).toMatch(/TCPServerWrap/);
    expect(JSON.parse(await readFile(report, "utf8"))).toMatchObject({ ok: true });
  }, 90_000);

  it("conformance bench exits with its code after the report", () => {
    const r = virtkit(["conformance", "bench", "--driver", leaky, "--count", "1", "--operations", "spawn,destroy", "--json"]);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ schema: "virtkit.bench/1", ok: true });
    expect(r.stderr).toMatch(/handles left open keep the process alive \(.*Timeout.*\)/);
  }, 90_000);

  it("a command whose driver leaves nothing open exits on its own, without the message", () => {
    const r = virtkit(["conformance", "bench", "--driver", "fake", "--count", "1", "--operations", "spawn,destroy", "--json"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/handles left open/);
  }, 90_000);
});
