/**
 * JUnit XML (`--junit`): one testcase per scenario; unsupported and skipped scenarios are
 * `<skipped>` with their reason; notes are suite properties.
 *
 * The XML agrees with the exit code: only failures at the run's level (`--level`) are
 * `<failure>`s. A failure below it (a SHOULD scenario failing under `--level MUST`) does not fail
 * the run, so it is a `<skipped>` case whose message starts with `SHOULD failure below level MUST`,
 * with the property `virtkit.status=fail` (the JSON report keeps it a plain `fail`).
 */
import { levelCounts, type RunReport, type ScenarioResult } from "../types.js";
import type { ConformanceReporter } from "./reporter.js";

/** Escapes text for XML attributes and content. */
export function xmlEscape(text: string): string {
  return (
    text
      .replace(/&/g, "&amp;")
      .replace(/</g, "&lt;")
      .replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;")
      .replace(/'/g, "&apos;")
      // Characters XML 1.0 cannot carry at all.
      // eslint-disable-next-line no-control-regex
      .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F]/g, "")
  );
}

/** JUnit output. */
export class JunitReporter implements ConformanceReporter {
  render(report: RunReport): string {
    const s = report.summary;
    const name = `virtkit conformance: ${report.driver.name}`;
    const seconds = (ms: number) => (ms / 1000).toFixed(3);
    const cases = report.results.map((r) => this.#testcase(r, seconds, report.level));
    // Errors outside any scenario are one more case, failed: the XML still agrees with the exit code.
    const errors = report.errors ?? [];
    if (errors.length > 0) {
      const text = xmlEscape(errors.join("\n"));
      cases.push(
        `    <testcase classname="virtkit.run" name="errors outside any scenario" time="0.000">\n      <failure message="${xmlEscape(`${errors.length} error(s) outside any scenario`)}" type="error">${text}</failure>\n    </testcase>`,
      );
    }
    const failures = s.failingAtLevel + (errors.length > 0 ? 1 : 0);
    const tests = s.total + (errors.length > 0 ? 1 : 0);
    const skipped = s.unsupported + s.skipped + (s.fail - s.failingAtLevel);
    const props = [
      ...report.notes.map((n) => `      <property name="note" value="${xmlEscape(n)}"/>`),
      `      <property name="level" value="${report.level}"/>`,
      `      <property name="runner" value="${report.runner}"/>`,
      ...(report.driver.version
        ? [`      <property name="driver.version" value="${xmlEscape(report.driver.version)}"/>`]
        : []),
    ];
    return [
      `<?xml version="1.0" encoding="UTF-8"?>`,
      `<testsuites name="${xmlEscape(name)}" tests="${tests}" failures="${failures}" skipped="${skipped}" time="${seconds(report.durationMs)}">`,
      `  <testsuite name="${xmlEscape(name)}" tests="${tests}" failures="${failures}" errors="0" skipped="${skipped}" time="${seconds(report.durationMs)}" timestamp="${report.startedAt}">`,
      `    <properties>`,
      ...props,
      `    </properties>`,
      ...cases,
      `  </testsuite>`,
      `</testsuites>`,
      "",
    ].join("\n");
  }

  #testcase(r: ScenarioResult, seconds: (ms: number) => string, level: RunReport["level"]): string {
    const open = `    <testcase classname="${xmlEscape(`virtkit.${r.group}`)}" name="${xmlEscape(`${r.id} [${r.level}] ${r.title}`)}" time="${seconds(r.durationMs)}"`;
    const reason = xmlEscape(r.reason ?? "");
    // JUnit has no warning element; system-out is what CI result pages show for a passing case.
    // A failure's driver log goes there too: what the driver was doing when it failed.
    const lines = [...(r.warnings ?? []).map((w) => `warning: ${w}`), ...(r.status === "fail" ? (r.log ?? []) : [])];
    const out = lines.length > 0 ? `\n      <system-out>${xmlEscape(lines.join("\n"))}</system-out>` : "";
    switch (r.status) {
      case "pass":
        return out ? `${open}>${out}\n    </testcase>` : `${open}/>`;
      case "fail": {
        const detail = xmlEscape(`${r.reason ?? ""}${r.step ? `\nstep: ${r.step}` : ""}${r.location ? `\nat: ${r.location}` : ""}`);
        if (!levelCounts(r.level, level)) {
          const props = [
            `        <property name="virtkit.status" value="fail"/>`,
            ...(r.step ? [`        <property name="virtkit.step" value="${xmlEscape(r.step)}"/>`] : []),
            ...(r.location ? [`        <property name="virtkit.location" value="${xmlEscape(r.location)}"/>`] : []),
          ];
          return `${open}>\n      <properties>\n${props.join("\n")}\n      </properties>\n      <skipped message="${r.level} failure below level ${level} (does not fail the run): ${reason}"/>${out}\n    </testcase>`;
        }
        return `${open}>\n      <failure message="${reason}" type="${r.mismatch ?? "failure"}">${detail}</failure>${out}\n    </testcase>`;
      }
      case "unsupported":
        return `${open}>\n      <skipped message="unsupported: ${reason}"/>${out}\n    </testcase>`;
      case "skipped":
        return `${open}>\n      <skipped message="${reason}"/>${out}\n    </testcase>`;
    }
  }
}
