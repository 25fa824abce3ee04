import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { IMAGE_REPOSITORY, planLayers } from "./image.js";

function aptRoot(list: string): string {
  const root = mkdtempSync(join(tmpdir(), "vk-apt-"));
  writeFileSync(join(root, "sources.list"), list);
  return root;
}

describe("image layers", () => {
  it("tags each layer by a hash of its inputs, bottom up", async () => {
    const root = aptRoot("deb http://m/debian bookworm main\n");
    const plans = await planLayers(root);
    expect(plans.map((p) => p.name)).toEqual(["base", "hypervisor", "guest"]);
    for (const p of plans) expect(p.tag).toMatch(new RegExp(`^${IMAGE_REPOSITORY}/${p.name}:[0-9a-f]{16}$`));
    // Same inputs, same tags: the cache holds across runs.
    expect((await planLayers(root)).map((p) => p.tag)).toEqual(plans.map((p) => p.tag));
  });

  it("a different mirror changes every tag (each layer hashes its parent's tag)", async () => {
    const a = await planLayers(aptRoot("deb http://m/debian bookworm main\n"));
    const b = await planLayers(aptRoot("deb http://other/debian bookworm main\n"));
    for (let i = 0; i < a.length; i++) expect(b[i]!.tag).not.toBe(a[i]!.tag);
  });
});
