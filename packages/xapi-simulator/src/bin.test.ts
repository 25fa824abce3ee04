// The runnable server: `virtkit-xapi-simulator` prints where it listens and answers there; with the
// password from the environment it never prints it. Needs `pnpm build` (turbo runs it first).
import { spawn, spawnSync } from "node:child_process";
import { createInterface } from "node:readline";
import { describe, expect, it } from "vitest";
import { Session } from "./testing/rpc-client.js";

describe("virtkit-xapi-simulator", () => {
  it("prints its URLs, serves XAPI there and keeps an env password off its output", async () => {
    const password = "from-the-environment-42";
    const p = spawn(process.execPath, [new URL("../bin/xapi-simulator.js", import.meta.url).pathname], {
      env: { ...process.env, VIRTKIT_XAPI_SIM_PASSWORD: password },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const out: string[] = [];
    let err = "";
    p.stderr.on("data", (d: Buffer) => (err += d.toString()));
    try {
      const lines = createInterface({ input: p.stdout });
      await new Promise<void>((resolve, reject) => {
        p.on("exit", () => reject(new Error(`exited: ${err}`)));
        lines.on("line", (l) => {
          out.push(l);
          if (l.startsWith("username:")) resolve();
        });
      });
      expect(out[0]).toMatch(/simulator/);
      const url = /^url:\s+(\S+)$/.exec(out.find((l) => l.startsWith("url:")) ?? "")?.[1] ?? "";
      const s = await Session.login(url, "root", password);
      expect((await s.call<string[]>("pool.get_all")).length).toBe(1);
      await s.logout();
      expect(out.join("\n")).not.toContain(password);
      expect(err).not.toContain(password);
    } finally {
      p.kill("SIGTERM");
    }
  });

  const bin = new URL("../bin/xapi-simulator.js", import.meta.url).pathname;

  it("--help prints its usage and starts nothing; an argument it does not take is exit 2", () => {
    const help = spawnSync(process.execPath, [bin, "--help"], { encoding: "utf8", timeout: 10_000 });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^usage: virtkit-xapi-simulator/);
    expect(help.stdout).toContain("VIRTKIT_XAPI_SIM_PASSWORD");
    const wrong = spawnSync(process.execPath, [bin, "--port", "8080"], { encoding: "utf8", timeout: 10_000 });
    expect(wrong.status).toBe(2);
    expect(wrong.stderr).toMatch(/unexpected argument "--port"/);
    expect(wrong.stdout).toBe("");
  });

  it("in JSON mode prints the generated password once, so a program can log in", async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, VIRTKIT_XAPI_SIM_JSON: "1", VIRTKIT_XAPI_SIM_QUIET: "1" };
    delete env.VIRTKIT_XAPI_SIM_PASSWORD;
    const p = spawn(process.execPath, [bin], { env, stdio: ["ignore", "pipe", "pipe"] });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        p.on("exit", () => reject(new Error("exited")));
        createInterface({ input: p.stdout }).once("line", resolve);
      });
      const info = JSON.parse(line) as { url: string; username: string; password: string };
      expect(info.password.length).toBeGreaterThan(8);
      const s = await Session.login(info.url, info.username, info.password);
      expect((await s.call<string[]>("pool.get_all")).length).toBe(1);
      await s.logout();
    } finally {
      p.kill("SIGTERM");
    }
  });
});
