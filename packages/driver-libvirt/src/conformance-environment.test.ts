// What the libvirt environment says about itself reaches reports: no secret of the URI may.
import { describe, expect, it } from "vitest";
import { libvirtEnvironmentLimits, libvirtEnvironmentNotes } from "./conformance-environment.js";

describe("environment notes and limits", () => {
  it.each(["qemu+tcp://admin:SECRETpw@127.0.0.1:1/system", "qemu+tcp://h/system?auth_pass=SECRETpw&keyfile=/k"])(
    "never carry the URI's password or query: %s",
    (uri) => {
      const text = JSON.stringify([libvirtEnvironmentNotes("qemu", uri), libvirtEnvironmentLimits("qemu", uri)]);
      expect(text).not.toContain("SECRET");
      expect(text).not.toContain("/k");
      expect(text).toContain("qemu+tcp://");
    },
  );
});
