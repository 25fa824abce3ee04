import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { debianSources, parseDeb822, parseOneLine, readAptEntries } from "./apt-sources.js";

const DEB822 = `Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main contrib

Types: deb
URIs: https://vendor.example/apt
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/vendor.gpg

Types: deb
Enabled: no
URIs: http://disabled.example/debian
Suites: bookworm
Components: main
`;

describe("apt sources", () => {
  it("reads deb822 stanzas: deb types only, disabled ones left out", () => {
    const entries = parseDeb822(DEB822);
    expect(entries.map((e) => e.uri)).toEqual([
      "http://deb.debian.org/debian",
      "http://deb.debian.org/debian-security",
      "https://vendor.example/apt",
    ]);
    expect(entries[0]).toMatchObject({ suites: ["bookworm", "bookworm-updates"], components: ["main"] });
  });

  it("reads one-line entries with options and comments", () => {
    const entries = parseOneLine(
      "# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm main contrib # tail\ndeb-src http://x bookworm main\n",
    );
    expect(entries).toEqual([
      { uri: "http://m.example/debian", suites: ["bookworm"], components: ["main", "contrib"], signedBy: "/k.gpg" },
    ]);
  });

  it("keeps Debian's own entries for the suite and picks the main suite's mirror for debootstrap", () => {
    const sources = debianSources(parseDeb822(DEB822));
    expect(sources.mirror).toBe("http://deb.debian.org/debian");
    expect(sources.suite).toBe("bookworm");
    expect(sources.sourcesFile).toContain("Suites: bookworm bookworm-updates");
    expect(sources.sourcesFile).toContain("URIs: http://deb.debian.org/debian-security");
    expect(sources.sourcesFile).not.toContain("vendor.example");
    expect(sources.sourcesFile).not.toContain("disabled.example");
  });

  it("refuses a machine without a mirror for the suite", () => {
    expect(() => debianSources(parseOneLine("deb http://m/debian trixie main\n"))).toThrow(
      /no apt entry for Debian bookworm/,
    );
  });

  it("reads sources.list and sources.list.d, skipping other files", async () => {
    const root = mkdtempSync(join(tmpdir(), "vk-apt-"));
    mkdirSync(join(root, "sources.list.d"));
    writeFileSync(join(root, "sources.list"), "deb http://a/debian bookworm main\n");
    writeFileSync(
      join(root, "sources.list.d", "b.sources"),
      "Types: deb\nURIs: http://b/debian\nSuites: bookworm\nComponents: main\n",
    );
    writeFileSync(join(root, "sources.list.d", "c.list.disabled"), "deb http://c/debian bookworm main\n");
    expect((await readAptEntries(root)).map((e) => e.uri)).toEqual(["http://a/debian", "http://b/debian"]);
  });
});
