import { describe, expect, it } from "vitest";
import { XmlParseError, escapeXml, parseXml, serializeXml, type XmlElement } from "./xml.js";

describe("escapeXml", () => {
  it("escapes the five special characters", () => {
    expect(escapeXml(`a'><evil/>&"`)).toBe("a&apos;&gt;&lt;evil/&gt;&amp;&quot;");
  });
});

describe("parseXml on what a hostile daemon may send", () => {
  it.each(["&#x110000;", "&#0;", "&#xD800;", "&#99999999999;"])(
    "refuses the character reference %s as a parse error, not a RangeError",
    (ref) => {
      expect(() => parseXml(`<a>${ref}</a>`)).toThrow(XmlParseError);
    },
  );
  it("refuses elements nested past 256, before any recursive walk could overflow, and reads 200 deep", () => {
    const deep = (n: number) => `${"<d>".repeat(n)}${"</d>".repeat(n)}`;
    expect(() => parseXml(deep(200_000))).toThrow(/nested deeper than 256/);
    expect(parseXml(deep(200)).name).toBe("d");
  });
});

describe("parseXml", () => {
  it("reads elements, attributes in both quotes, text, entities, CDATA, comments and the declaration", () => {
    const root = parseXml(
      `<?xml version="1.0"?>\n<!-- c --><a x='1' y="&lt;2&gt;"><b>t &amp; &#65;&#x42;</b><c/><d><![CDATA[<raw>]]></d></a>`,
    );
    expect(root.name).toBe("a");
    expect(root.attributes).toEqual({ x: "1", y: "<2>" });
    expect(root.children.map((c) => c.name)).toEqual(["b", "c", "d"]);
    expect(root.children[0]?.text).toBe("t & AB");
    expect(root.children[2]?.text).toBe("<raw>");
  });
  it.each([
    ["<a><b></a>", "mismatched"],
    ["<a>", "unclosed"],
    ["<a/><b/>", "root"],
    ["<a x='1' x='2'/>", "duplicate"],
    ["<a>&nope;</a>", "entity"],
    ["<!DOCTYPE a><a/>", "DTD"],
    ["", "root"],
    ["<a <b/>", "bad tag"],
  ])("refuses %s", (xml, msg) => {
    expect(() => parseXml(xml)).toThrow(XmlParseError);
    expect(() => parseXml(xml)).toThrow(new RegExp(msg, "i"));
  });
  it("round-trips through serializeXml", () => {
    const xml = `<a k='v&apos;"'><b>x &lt; y</b><c n='1'/></a>`;
    // Indentation adds whitespace-only text; compare without it.
    const norm = (e: XmlElement): unknown => ({ ...e, text: e.text.trim(), children: e.children.map(norm) });
    const again = parseXml(serializeXml(parseXml(xml)));
    expect(norm(again)).toEqual(norm(parseXml(xml)));
  });
});
