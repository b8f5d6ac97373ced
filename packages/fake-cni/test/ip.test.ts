/** Address arithmetic used by the IPAM (RFC 4291 / RFC 5952 text forms, RFC 4632 prefixes). */
import { describe, expect, it } from "vitest";
import { contains, formatIp, lastOf, parseCidr, parseIp } from "../src/plugin/ip.js";

describe("ip", () => {
  it.each([
    ["10.0.0.1", "10.0.0.1"],
    ["fd00::1", "fd00::1"],
    ["FD00:0:0:0:0:0:0:1", "fd00::1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["::", "::"],
    ["::ffff:10.1.2.3", "::ffff:a01:203"],
    ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
  ])("parses %s and formats it canonically as %s", (text, canon) => {
    const ip = parseIp(text);
    expect(ip).toBeDefined();
    expect(formatIp(ip!)).toBe(canon);
  });

  it.each(["", "1.2.3", "256.1.1.1", "01.1.1.1", "1::2::3", "1:2:3:4:5:6:7:8:9", "g::1", "1.2.3.4/24", " 1.2.3.4"])("rejects %j", (t) => {
    expect(parseIp(t)).toBeUndefined();
  });

  it("handles prefixes: network, last address, containment", () => {
    const c = parseCidr("10.1.2.3/22")!;
    expect(formatIp(c.network)).toBe("10.1.0.0");
    expect(formatIp(lastOf(c))).toBe("10.1.3.255");
    expect(contains(c, parseIp("10.1.3.7")!)).toBe(true);
    expect(contains(c, parseIp("10.1.4.0")!)).toBe(false);
    const v6 = parseCidr("fd00:1::/120")!;
    expect(formatIp(lastOf(v6))).toBe("fd00:1::ff");
    expect(contains(v6, parseIp("10.1.3.7")!)).toBe(false);
    expect(parseCidr("10.0.0.0/33")).toBeUndefined();
    expect(parseCidr("fd00::/129")).toBeUndefined();
    expect(parseCidr("10.0.0.0")).toBeUndefined();
  });
});
