// The README's usage block documents every flag of every command (the classes' own flag tables).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { COMMANDS } from "./commands/index.js";

const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
/** The first code block: the usage. */
const usage = /```\n([\s\S]*?)```/.exec(readme)?.[1] ?? "";

/** The usage lines of `id` (`conformance:run` → lines from `virtkit conformance run` up to the next command). */
function usageOf(id: string): string {
  const out: string[] = [];
  let mine = false;
  for (const line of usage.split("\n")) {
    if (line.startsWith("virtkit ")) mine = line.startsWith(`virtkit ${id.replace(/:/g, " ")} `) || line === `virtkit ${id.replace(/:/g, " ")}`;
    if (mine) out.push(line);
  }
  return out.join("\n");
}

describe("README usage", () => {
  it.each(Object.entries(COMMANDS))("documents every flag of %s", (id, command) => {
    const text = usageOf(id);
    expect(text, `no usage line for ${id}`).not.toBe("");
    const flags = [...Object.keys(command.flags ?? {}), ...(command.enableJsonFlag ? ["json"] : [])];
    const missing = flags.filter((f) => !new RegExp(`--${f}\\b`).test(text));
    expect(missing, `${id}: flags missing from packages/cli/README.md's usage`).toEqual([]);
  });

  it("documents --explore with its own flags", () => {
    expect(usageOf("conformance:run")).toMatch(/--explore \[--runs <n>\] \[--seed <n>\]/);
    expect(readme).toMatch(/`--explore` runs random operation sequences/);
  });
});
