import { describe, expect, it } from "vitest";
import { redactOptions, scrubOptionSecrets } from "./redact-options.js";

describe("redactOptions", () => {
  it("hides values under password-like keys and URI credentials, keeps the rest", () => {
    expect(
      redactOptions({
        password: "hunter2",
        apiToken: "tok",
        uri: "qemu+tcp://admin:hunter2@host:16509/system?socket=/run/x&auth_pass=p4ss",
        plain: "qemu:///system",
        user: "admin@host",
        timeoutMs: "5",
      }),
    ).toEqual({
      password: "***",
      apiToken: "***",
      uri: "qemu+tcp://admin:***@host:16509/system?socket=/run/x&auth_pass=***",
      plain: "qemu:///system",
      user: "admin@host",
      timeoutMs: "5",
    });
  });

  it("scrubs those secrets from a text", () => {
    expect(scrubOptionSecrets("bad hunter2 and p4ss", { uri: "xen://u:hunter2@h/?password=p4ss" })).toBe("bad *** and ***");
    expect(scrubOptionSecrets("nothing here", { password: "" })).toBe("nothing here");
  });
});
