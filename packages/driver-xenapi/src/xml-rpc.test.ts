// XML-RPC replies a hostile or broken host may send: malformed, never a RangeError or a stack overflow.
import { HypervisorUnavailableError } from "@virtkit/core";
import { describe, expect, it } from "vitest";
import { mapXapiError } from "./error-map.js";
import { XmlRpcParseError, decodeMethodResponse, parseXml } from "./xml-rpc.js";

const reply = (value: string) =>
  `<?xml version="1.0"?><methodResponse><params><param><value>${value}</value></param></params></methodResponse>`;

describe("XML-RPC from a hostile host", () => {
  it.each(["&#x110000;", "&#0;", "&#xD800;"])(
    "a character reference naming no XML character (%s) is malformed",
    (ref) => {
      expect(() => decodeMethodResponse(reply(`<string>${ref}</string>`))).toThrow(XmlRpcParseError);
    },
  );

  it("elements nested past 256 are malformed, before the recursive decode could overflow; 50 deep decodes", () => {
    const nested = (n: number) =>
      `${"<array><data><value>".repeat(n)}<string>x</string>${"</value></data></array>".repeat(n)}`;
    expect(() => decodeMethodResponse(reply(nested(100_000)))).toThrow(/nested deeper than 256/);
    let v: unknown = decodeMethodResponse(reply(nested(50)));
    for (let i = 0; i < 50; i++) v = (v as unknown[])[0];
    expect(v).toBe("x");
    expect(parseXml("<a/>").children[0]?.name).toBe("a");
  });

  it("a parse error maps to HypervisorUnavailableError saying the reply was malformed", () => {
    const mapped = mapXapiError(new XmlRpcParseError("elements nested deeper than 256"), {
      operation: "getInfo",
      host: "https://xs",
    });
    expect(mapped).toBeInstanceOf(HypervisorUnavailableError);
    expect(mapped.message).toMatch(/malformed XML-RPC: elements nested deeper than 256/);
  });
});
