import { existsSync } from "node:fs";
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BROKEN_VARIANTS } from "../testing/broken-drivers.js";
import { runAgainstVariant } from "../testing/catch-rate.js";
import type { RunReport } from "../types.js";
import { buildMatrix } from "./build-matrix.js";
import { renderHtml } from "./render-html.js";

const CHROMIUM = "/usr/bin/chromium";
const haveChromium = existsSync(CHROMIUM);

describe.skipIf(!haveChromium)(
  `the support matrix page in headless Chromium${haveChromium ? "" : ` (skipped: ${CHROMIUM} is absent)`}`,
  () => {
    let dir: string;
    let page: string;
    let failingId: string;
    let failingReason: string;

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), "virtkit-matrix-"));
      const healthy = await runAgainstVariant(undefined);
      const variant = BROKEN_VARIANTS.find((v) => v.name === "pause-does-nothing")!;
      const broken = await runAgainstVariant(variant);
      // A reason carrying markup must show as text, never run.
      const hostile: RunReport = {
        ...broken,
        driver: { name: "broken" },
        notes: ["<script>window.__xss = 1</script> simulated"],
        results: broken.results.map((r) =>
          r.id === "lifecycle.pause-unpause"
            ? { ...r, reason: `${r.reason} <script>window.__xss = 1</script><img src=x onerror="window.__xss=2">` }
            : r,
        ),
      };
      const failing = hostile.results.find((r) => r.status === "fail")!;
      failingId = failing.id;
      failingReason = failing.reason!;
      const matrix = buildMatrix([healthy, hostile], [{ name: "libvirt", reason: "no libvirt daemon configured" }]);
      page = join(dir, "support-matrix.html");
      await writeFile(page, renderHtml(matrix));
    }, 30_000);

    afterAll(async () => {
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it("shows the table, one cell per driver and scenario, reasons as text, and can be screenshotted", async () => {
      const { chromium } = await import("playwright-core");
      const userDataDir = await mkdtemp(join(tmpdir(), "virtkit-chromium-"));
      const context = await chromium.launchPersistentContext(userDataDir, {
        executablePath: CHROMIUM,
        headless: true,
        args: [
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          "--disable-quic",
          "--no-first-run",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
        ],
      });
      try {
        const tab = await context.newPage();
        await tab.goto(pathToFileURL(page).href);
        expect(await tab.locator("table#matrix").count()).toBe(1);
        const headers = await tab
          .locator("thead th[data-driver]")
          .evaluateAll((ths) => ths.map((t) => t.getAttribute("data-driver")));
        expect(headers).toEqual(["broken", "fake", "libvirt"]);
        const scenarios = await tab.locator("tbody th[scope=row]").count();
        expect(scenarios).toBeGreaterThan(30);
        for (const d of ["fake", "broken", "libvirt"]) {
          expect(await tab.locator(`td.cell[data-driver="${d}"]`).count()).toBe(scenarios);
        }
        // The healthy fake passes every row; any that did not is named (with its status), not just counted.
        const notPassing = await tab
          .locator(`td.cell[data-driver="fake"]:not([data-status="pass"])`)
          .evaluateAll((tds) => tds.map((t) => `${t.getAttribute("data-scenario")}: ${t.getAttribute("data-status")} (${t.getAttribute("title")})`));
        expect(notPassing).toEqual([]);
        const cell = tab.locator(`td.cell[data-driver="broken"][data-scenario="${failingId}"]`);
        expect(await cell.getAttribute("data-status")).toBe("fail");
        expect(await cell.locator(".reason").textContent()).toBe(failingReason);
        expect(await tab.locator(`td.cell[data-driver="libvirt"]`).first().textContent()).toContain(
          "no libvirt daemon configured",
        );
        expect(await tab.evaluate(() => (globalThis as unknown as { __xss?: number }).__xss)).toBeUndefined();
        expect(await tab.locator("#notes").textContent()).toContain("<script>window.__xss = 1</script> simulated");
        const shot = join(dir, "matrix.png");
        await tab.screenshot({ path: shot, fullPage: true });
        expect((await stat(shot)).size).toBeGreaterThan(10_000);
      } finally {
        await context.close();
        await rm(userDataDir, { recursive: true, force: true });
      }
    }, 60_000);
  },
);
