import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type Docker from "dockerode";
import { IMAGE_REPOSITORY, imageState, planLayers } from "./image.js";
import { LAYER_HASH_LABEL, LAYER_LABEL } from "./labels.js";

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

describe("a cached layer", () => {
  /** A Docker engine whose images are these tags with these labels. */
  const engine = (images: Record<string, Record<string, string> | null>) =>
    ({
      getImage: (tag: string) => ({
        inspect: async () => {
          if (!(tag in images)) throw Object.assign(new Error("no such image"), { statusCode: 404 });
          return { Config: { Labels: images[tag] } };
        },
      }),
    }) as unknown as Docker;

  it("is used only when its labels name this layer and these inputs; another image under the tag is rebuilt", async () => {
    const [base] = await planLayers(aptRoot("deb http://m/debian bookworm main\n"));
    const signal = new AbortController().signal;
    const ours = { [LAYER_LABEL]: "base", [LAYER_HASH_LABEL]: base!.hash };
    expect(await imageState(engine({ [base!.tag]: ours }), base!, signal)).toBe("ours");
    expect(await imageState(engine({}), base!, signal)).toBe("missing");
    // Retagged by hand (docker tag debian:bookworm ...), or built from other inputs.
    const unlabelled = await imageState(engine({ [base!.tag]: null }), base!, signal);
    expect(unlabelled).toEqual({ foreign: expect.stringContaining(`${LAYER_LABEL}=(none)`) });
    const other = await imageState(engine({ [base!.tag]: { ...ours, [LAYER_HASH_LABEL]: "0123456789abcdef" } }), base!, signal);
    expect(other).toEqual({ foreign: expect.stringContaining("0123456789abcdef") });
  });
});
