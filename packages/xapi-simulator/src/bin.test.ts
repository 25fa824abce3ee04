// The runnable server: `virtkit-xapi-simulator` prints where it listens and answers there; with the
// password from the environment it never prints it. Needs `pnpm build` (turbo runs it first).
import { spawn } from "node:child_process";
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
});
