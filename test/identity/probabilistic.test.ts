import { describe, expect, it } from "vitest";
import { DEFAULT_MODEL, LEVELS, blockingKeys, score, weightToProbability, type ProfileFeatures } from "../../workers/identity/probabilistic";
import { jaro, jaroWinkler, soundex } from "../../workers/identity/string-similarity";

const IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
const ANDROID = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36";
const CHROME_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
const CHROME_WINDOWS_OLDER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36";
const FIREFOX_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0";

const profile = (features: Partial<ProfileFeatures>): ProfileFeatures => ({ emails: [], phones: [], ips: [], userAgents: [], ...features });
const levelOf = (result: ReturnType<typeof score>, field: string) => result.fields.find((evidence) => evidence.field === field)?.level;

const katherineOnPhone = profile({
  firstName: "Katherine",
  lastName: "Johnson",
  emails: ["k.johnson+shop@gmail.com"],
  phones: ["+14155550123"],
  address: { street: "12 Market Street", city: "San Francisco", postalCode: "94103", country: "US" },
  ips: ["172.56.10.4"],
  userAgents: [IPHONE],
});

describe("Jaro–Winkler", () => {
  it("scores MARTHA/MARHTA about 0.961, DIXON/DICKSONX about 0.813 and DWAYNE/DUANE about 0.84", () => {
    expect(jaroWinkler("MARTHA", "MARHTA")).toBeCloseTo(0.961, 3);
    expect(jaroWinkler("DIXON", "DICKSONX")).toBeCloseTo(0.813, 3);
    expect(jaroWinkler("DWAYNE", "DUANE")).toBeCloseTo(0.84, 3);
  });

  it("builds on Jaro (MARTHA/MARHTA about 0.944) and is symmetric", () => {
    expect(jaro("MARTHA", "MARHTA")).toBeCloseTo(0.944, 3);
    expect(jaroWinkler("DUANE", "DWAYNE")).toBe(jaroWinkler("DWAYNE", "DUANE"));
  });

  it("gives 1 for identical strings and 0 when nothing matches or one side is empty", () => {
    expect(jaroWinkler("José", "José")).toBe(1);
    expect(jaroWinkler("abc", "xyz")).toBe(0);
    expect(jaroWinkler("", "abc")).toBe(0);
  });
});

describe("Soundex", () => {
  it("codes names by sound, skipping H and W between letters of one code", () => {
    expect(["Robert", "Rupert", "Ashcraft", "Tymczak", "Pfister", "Lee"].map(soundex)).toEqual(["R163", "R163", "A261", "T522", "P236", "L000"]);
  });

  it("declines non-ASCII names so the caller can fall back to a prefix", () => {
    expect(soundex("Müller")).toBeUndefined();
  });
});

describe("the default model", () => {
  it("has m and u that each sum to 1 over every field's levels, on the documented post-blocking prior", () => {
    expect(DEFAULT_MODEL.prior).toBe(0.01);
    for (const field of Object.keys(LEVELS) as (keyof typeof LEVELS)[]) {
      const levels = Object.values(DEFAULT_MODEL.fields[field]) as { m: number; u: number }[];
      expect(levels.map(({ m }) => m).reduce((a, b) => a + b), field).toBeCloseTo(1, 9);
      expect(levels.map(({ u }) => u).reduce((a, b) => a + b), field).toBeCloseTo(1, 9);
    }
  });

  it("turns a weight of zero into the prior and each bit of weight into doubled odds", () => {
    expect(weightToProbability(0, 0.01)).toBeCloseTo(0.01, 12);
    const odds = (p: number) => p / (1 - p);
    expect(odds(weightToProbability(1, 0.01)) / odds(weightToProbability(0, 0.01))).toBeCloseTo(2, 9);
  });
});

describe("scoring a pair of profiles", () => {
  it("scores one person seen on two devices above 0.9", () => {
    const onLaptop = profile({
      firstName: "katherine",
      lastName: "JOHNSON",
      emails: ["kjohnson@gmail.com"],
      phones: ["+14155550123"],
      address: { street: "12 Market St.", city: "San Francisco", postalCode: "94103", country: "us" },
      ips: ["73.162.4.20"],
      userAgents: [CHROME_WINDOWS],
    });
    const result = score(katherineOnPhone, onLaptop);
    expect(result.probability).toBeGreaterThan(0.9);
    // `kjohnson` is Katherine Johnson's initial and surname: with the names agreeing, it adds nothing of its own.
    expect(levelOf(result, "email")).toBe("missing");
    expect(levelOf(result, "address")).toBe("same street and postal code");
  });

  it("scores a typo in the last name plus the same phone above 0.9", () => {
    const inStore = profile({ firstName: "Katherine", lastName: "Jonhson", phones: ["+14155550123"], emails: ["kate.j@yahoo.com"] });
    const result = score(katherineOnPhone, inStore);
    expect(levelOf(result, "lastName")).toBe("jaro-winkler>=0.92");
    expect(levelOf(result, "phone")).toBe("exact");
    expect(levelOf(result, "email")).toBe("missing");
    expect(result.probability).toBeGreaterThan(0.9);
  });

  it("keeps two people of one household (same address, IP and last name) below 0.9", () => {
    const home = { street: "400 Oak Avenue", city: "Portland", postalCode: "97205", country: "US" };
    const mother = profile({ firstName: "Susan", lastName: "Miller", emails: ["susan.miller@gmail.com"], address: home, ips: ["24.20.1.7"], userAgents: [IPHONE] });
    const son = profile({ firstName: "Jake", lastName: "Miller", emails: ["jakem2009@outlook.com"], address: { ...home, street: "400 Oak Ave" }, ips: ["24.20.1.7"], userAgents: [ANDROID] });
    const result = score(mother, son);
    expect(levelOf(result, "address")).toBe("same street and postal code");
    expect(levelOf(result, "ip")).toBe("shared");
    expect(result.probability).toBeLessThan(0.9);
  });

  it("keeps strangers who share only an office NAT IP below 0.05", () => {
    const alice = profile({ firstName: "Alice", lastName: "Nguyen", emails: ["alice.nguyen@acme.com"], phones: ["+442079460001"], ips: ["198.51.100.7"], userAgents: [CHROME_WINDOWS] });
    const bob = profile({ firstName: "Robert", lastName: "Okafor", emails: ["bokafor@acme.com"], phones: ["+447700900123"], ips: ["198.51.100.7"], userAgents: [FIREFOX_MAC] });
    expect(score(alice, bob).probability).toBeLessThan(0.05);
  });

  it("keeps a shared IP below 0.05 even when nothing else is known", () => {
    expect(score(profile({ ips: ["198.51.100.7"] }), profile({ ips: ["198.51.100.7"] })).probability).toBeLessThan(0.05);
  });

  it("does not change the weight for a field missing on either side", () => {
    const a = profile({ firstName: "Ana", lastName: "Silva", phones: ["+351912345678"] });
    const b = profile({ firstName: "Ana", lastName: "Silva", phones: ["+351912345678"] });
    const baseline = score(a, b);
    const withOneSided = score(
      { ...a, emails: ["ana@example.pt"], address: { city: "Lisboa" }, userAgents: [IPHONE] },
      { ...b, ips: ["203.0.113.5"], address: { street: "Rua Augusta 10" } },
    );
    expect(withOneSided.weight).toBe(baseline.weight);
    expect(withOneSided.probability).toBe(baseline.probability);
    for (const field of ["email", "address", "ip", "userAgent"]) expect(levelOf(withOneSided, field)).toBe("missing");
  });

  it("lists every field as evidence with its level and weight, zero for missing ones, summing to the total", () => {
    const other = profile({ firstName: "Kathrine", lastName: "Johnson", emails: ["kjohnson@hotmail.com"], phones: ["+1 (415) 555-0123"], ips: ["172.56.10.4"], userAgents: [IPHONE] });
    const result = score(katherineOnPhone, other);
    expect(result.fields.map(({ field, level }) => [field, level])).toEqual([
      ["firstName", "jaro-winkler>=0.92"],
      ["lastName", "exact"],
      ["email", "missing"],
      ["phone", "exact"],
      ["address", "missing"],
      ["ip", "shared"],
      ["userAgent", "identical"],
    ]);
    expect(result.fields.find((evidence) => evidence.field === "address")?.weight).toBe(0);
    expect(result.fields.find((evidence) => evidence.field === "ip")!.weight).toBeCloseTo(Math.log2(0.25 / 0.06), 9);
    expect(result.weight).toBeCloseTo(result.fields.reduce((sum, { weight }) => sum + weight, 0), 9);
  });

  it("does not count an email local part that names explain, so namesakes are not one person by email", () => {
    const patricia = profile({ firstName: "Patricia", lastName: "Walker", emails: ["patriciaw@gmx.de"] });
    const namesake = profile({ firstName: "Patricia", lastName: "Walker", emails: ["patricia.walker910@proton.me"] });
    const result = score(patricia, namesake);
    expect(levelOf(result, "email")).toBe("missing");
    expect(result.weight).toBeCloseTo(levelOf(result, "firstName") === "exact" ? Math.log2(0.85 / 0.01) + Math.log2(0.88 / 0.01) : Number.NaN, 9);
  });

  it("still counts the handle a person chose, once the names are taken out", () => {
    const atWork = profile({ firstName: "James", lastName: "Sanchez", emails: ["james.sanchez431@yahoo.com"] });
    const atHome = profile({ firstName: "James", lastName: "Sanchez", emails: ["sanchez_431@icloud.com"] });
    const stranger = profile({ firstName: "James", lastName: "Sanchez", emails: ["james.sanchez66@icloud.com"] });
    expect(levelOf(score(atWork, atHome), "email")).toBe("exact");
    expect(levelOf(score(atWork, stranger), "email")).toBe("missing");
    // What is left is a number: numbers are compared exactly, since `p162` is not a typo of `162`.
    const pat = profile({ firstName: "Patricia", lastName: "Thomas", emails: ["pthomas162@proton.me"] });
    expect(levelOf(score(pat, profile({ firstName: "Patricia", lastName: "Thomas", emails: ["patricia.thomas162@gmail.com"] })), "email")).toBe("different");
    // A name known on one side only still explains the local part; with no names known, all of it is the handle.
    expect(levelOf(score(profile({ emails: ["patriciaw@gmx.de"] }), profile({ firstName: "Patricia", emails: ["patriciaw@proton.me"] })), "email")).toBe("missing");
    expect(levelOf(score(profile({ emails: ["patriciaw@gmx.de"] }), profile({ emails: ["patriciaw@proton.me"] })), "email")).toBe("exact");
  });

  it("grades phones with the same last 7 digits, postal-only addresses and same-family agents", () => {
    const a = profile({ phones: ["+14155550123"], address: { street: "1 Main St", postalCode: "94103" }, userAgents: [CHROME_WINDOWS] });
    const b = profile({ phones: ["+16505550123"], address: { street: "9 Elm St", postalCode: "94 103" }, userAgents: [CHROME_WINDOWS_OLDER] });
    const result = score(a, b);
    expect([levelOf(result, "phone"), levelOf(result, "address"), levelOf(result, "userAgent")]).toEqual(["same last 7 digits", "same postal code", "same family"]);
  });

  it("does not count a street without a postal code or city, since every town has a Main Street", () => {
    expect(levelOf(score(profile({ address: { street: "1 Main St" } }), profile({ address: { street: "1 Main Street" } })), "address")).toBe("missing");
    expect(levelOf(score(profile({ address: { street: "1 Main St", city: "Springfield" } }), profile({ address: { street: "2 Elm St", city: "springfield" } })), "address")).toBe("same city");
  });

  it("compares IPv6 addresses by their /64, since devices rotate the low half", () => {
    const a = profile({ ips: ["2001:db8:abcd:12::1"] });
    const b = profile({ ips: ["2001:0db8:abcd:0012:8a2e:370:7334:1"] });
    expect(levelOf(score(a, b), "ip")).toBe("shared");
  });
});

describe("blocking keys", () => {
  it("are shared by the last-name typo pair and not by strangers", () => {
    const typo = profile({ firstName: "Katherine", lastName: "Jonhson", phones: ["+14155550123"] });
    const shared = blockingKeys(katherineOnPhone).filter((key) => blockingKeys(typo).includes(key));
    expect(shared).toEqual(["ln:J525:k", "ph:5550123"]);

    const stranger = profile({ firstName: "Robert", lastName: "Okafor", emails: ["bokafor@acme.com"], phones: ["+447700900123"], address: { postalCode: "EC1A 1BB" } });
    expect(blockingKeys(katherineOnPhone).filter((key) => blockingKeys(stranger).includes(key))).toEqual([]);
  });

  it("name the surname code and initial, the bare email handle, the phone's last 7 digits and the postal code with the surname initial", () => {
    expect(blockingKeys(katherineOnPhone)).toEqual(["em:kjohnson", "ln:J525:k", "pc:94103:j", "ph:5550123"]);
  });

  it("strip accents before coding, fall back to the first 4 letters for non-Latin surnames, and skip role mailboxes", () => {
    expect(blockingKeys(profile({ firstName: "Jürgen", lastName: "Müller", emails: ["info@mueller.de", "j.mueller+x@web.de"] }))).toEqual(["em:jmueller", "ln:M460:j"]);
    expect(blockingKeys(profile({ firstName: "Иван", lastName: "Петров" }))).toEqual(["ln:петр:и"]);
  });
});
