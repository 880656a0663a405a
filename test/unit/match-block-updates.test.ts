import { describe, expect, it } from "vitest";
import type { MatchLead } from "../../workers/identity/sharding/cross-shard-matching";
import { MatchBlockUpdates } from "../../workers/identity/sharding/match-block-updates";

/** What a router keeps of a round's words on match-block entries, whatever order the shards' answers arrive in. */

const lead = (blocks: string[], version: number): MatchLead => ({ profileId: "prof_a", blocks, version, at: 0 });

describe("a router's words on match-block entries", () => {
  it("takes a lead's blocks in place of an update answered before it", () => {
    const words = new MatchBlockUpdates();
    words.answer(0, [["ln:D000:j", "prof_a", false, 5]]);
    words.lead("prof_a", ["ln:D000:j"], 6);
    expect(words.updates()).toEqual([]);
    expect(words.current(lead(["ln:D000:j"], 6)).blocks).toEqual(["ln:D000:j"]);
  });

  it("keeps a newer leave that arrived before an older lead, and matches the lead without that block", () => {
    const words = new MatchBlockUpdates();
    // The person was handed to shard 1, which answered first; shard 0's older lead arrives after.
    words.answer(1, [["ln:D000:j", "prof_a", false, 100]]);
    words.lead("prof_a", ["ln:D000:j", "pc:69003:d"], 5);
    expect(words.updates()).toEqual([["ln:D000:j", "prof_a", false, 100]]);
    expect(words.current(lead(["ln:D000:j", "pc:69003:d"], 5)).blocks).toEqual(["pc:69003:d"]);
  });

  it("counts a leave answered after the lead in the same call, at the same version", () => {
    const words = new MatchBlockUpdates();
    words.lead("prof_a", ["ln:D000:j"], 7);
    words.answer(0, [["ln:D000:j", "prof_a", false, 7]]);
    expect(words.current(lead(["ln:D000:j"], 7)).blocks).toEqual([]);
  });

  it("does not let an older leave arriving late take a block from a newer lead", () => {
    const words = new MatchBlockUpdates();
    words.lead("prof_a", ["ln:D000:j"], 9);
    words.answer(0, [["ln:D000:j", "prof_a", false, 4]]);
    expect(words.current(lead(["ln:D000:j"], 9)).blocks).toEqual(["ln:D000:j"]);
  });

  it("keeps the newest word per entry and confirms each shard the version it answered", () => {
    const words = new MatchBlockUpdates();
    words.answer(2, [["em:janedoe", "prof_a", true, 8]]);
    words.answer(2, [["em:janedoe", "prof_a", false, 3]]);
    expect(words.updates()).toEqual([["em:janedoe", "prof_a", true, 8]]);
    expect(words.answeredBy()).toEqual(new Map([[2, [["em:janedoe", "prof_a", 8]]]]));
  });
});
