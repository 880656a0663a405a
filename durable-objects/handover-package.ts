import { z } from "zod";
import type { ReviewItem } from "../workers/identity/graph";
import type { GraphRows } from "../workers/identity/handover";
import { clusterRowSchema, conflictSchema, featuresSchema, indexEntrySchema, linkSchema, mergeSchema, reviewSchema } from "../workers/identity/snapshot";

/**
 * A hand-over's package: the rows of one person, cut into parts of at most
 * MAX_PART_CHARS characters of JSON, each stored at the shard that hands the
 * person over until the move completes, and each read, validated and written
 * on its own at the shard that takes them. Every part carries the move's
 * head, so a part explains itself; its sections hold rows as the tables hold
 * them (graph rows as their zod schemas in snapshot.ts describe them, profile
 * rows as their SQLite columns).
 */

/** At most this many characters of JSON per part; counted in UTF-8 bytes, which are never fewer, so a part also stays well under SQLite's 2 MB per value. */
export const MAX_PART_CHARS = 1_000_000;

const shard = z.number().int().min(0);
const text = z.string().nullable();

const profileEvent = z.strictObject({
  message_id: z.string(),
  profile_id: z.string(),
  at: z.number(),
  type: z.string(),
  name: text,
  source_id: text,
  traits: text,
  group_id: text,
  record: text,
  consent: text,
});
const traitRow = z.strictObject({ profile_id: z.string(), key: z.string(), value: z.string(), at: z.number(), message_id: z.string(), source_id: text });
const consentRow = z.strictObject({ profile_id: z.string(), category: z.string(), consented: z.number().int(), at: z.number(), message_id: z.string(), conflict: z.number().int() });
const accountRow = z.strictObject({ group_id: z.string(), created_at: z.number(), updated_at: z.number(), last_source_id: text, last_message_id: text });
const accountTraitRow = z.strictObject({ group_id: z.string(), key: z.string(), value: z.string(), at: z.number(), message_id: z.string(), source_id: text });
const personStateRow = z.strictObject({ profile_id: z.string(), spec: z.string(), state: z.string() });
const audienceValueRow = z.strictObject({ profile_id: z.string(), audience_id: z.string(), value: z.string(), since: z.number() });
const wakeupRow = z.strictObject({ profile_id: z.string(), at: z.number() });

const sections = {
  // The graph's rows.
  clusters: z.array(clusterRowSchema),
  index: z.array(z.tuple([z.string(), indexEntrySchema])),
  features: z.array(z.tuple([z.string(), featuresSchema])),
  blocks: z.array(z.tuple([z.string(), z.array(z.string())])),
  assignments: z.array(z.tuple([z.string(), z.string()])),
  links: z.array(z.tuple([z.string(), linkSchema])),
  merges: z.array(mergeSchema),
  reviews: z.array(reviewSchema),
  conflicts: z.array(conflictSchema),
  neverMerge: z.array(z.string()),
  tombstones: z.array(z.string()),
  suggested: z.array(z.string()),
  // The profile store's rows.
  events: z.array(profileEvent),
  traits: z.array(traitRow),
  consent: z.array(consentRow),
  sources: z.array(z.tuple([z.string(), text])),
  accounts: z.array(accountRow),
  accountTraits: z.array(accountTraitRow),
  personState: z.array(personStateRow),
  audienceValues: z.array(audienceValueRow),
  wakeups: z.array(wakeupRow),
  /** Segment and computed-trait changes not yet sent to the activation queue, as the `emissions` table holds them. */
  emissions: z.array(z.string()),
  // What waits for matching across graph shards (pending-match-leads.ts).
  /** Profiles answered as leads whose matching the router has not confirmed: `[profileId, version]`. */
  matchLeads: z.array(z.tuple([z.string(), z.number().int().min(0)])),
  /** Block entries the identifier index has not been confirmed to follow: `[block, profileId, version]`. */
  blockChanges: z.array(z.tuple([z.string(), z.string(), z.number().int().min(0)])),
};

const headSchema = z.strictObject({
  v: z.literal(1),
  moveId: z.string(),
  from: shard,
  to: shard,
  part: z.number().int().min(0),
  /** The package's last part: the target knows it has them all. */
  last: z.boolean(),
  /** The D1 write version of the shard handing over: the target writes above it. */
  version: z.number().int().min(0),
  /** The block clock of the shard handing over: the target speaks of the person's block entries above it. */
  blockClock: z.number().int().min(0).optional(),
  /** The person's clusters, live first. */
  profiles: z.array(z.string()),
  /** The keys the move takes (what the index repoints): arriving at the target until it finishes. */
  keys: z.array(z.string()),
});

export const partSchema = headSchema.extend(Object.fromEntries(Object.entries(sections).map(([name, schema]) => [name, schema.optional()])) as { [K in keyof typeof sections]: z.ZodOptional<(typeof sections)[K]> });

export type Part = z.infer<typeof partSchema>;
export type PartHead = z.infer<typeof headSchema>;
export type SectionName = keyof typeof sections;
export type SectionRow<K extends SectionName> = z.infer<(typeof sections)[K]>[number];
export type ProfileRows = Pick<Part, "events" | "traits" | "consent" | "sources" | "accounts" | "accountTraits" | "personState" | "audienceValues" | "wakeups" | "emissions">;

/** Bytes of a string in UTF-8, without encoding it. */
function utf8Length(json: string): number {
  if (!/[^\x00-\x7f]/.test(json)) return json.length;
  let bytes = json.length;
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i);
    // Two more bytes for a character from U+0800 (three in all), one more for the rest above ASCII and for each half of a surrogate pair (four in all).
    if (c >= 0x80) bytes += c >= 0x800 && (c < 0xd800 || c > 0xdfff) ? 2 : 1;
  }
  return bytes;
}

/**
 * Cuts rows into parts as they come, storing each part as soon as it is full,
 * so memory holds one part however large the person. A row is serialised
 * once. The last part is stored by `end`, even when nothing was added: the
 * package then is its head alone.
 */
export class PartWriter {
  private readonly sections = new Map<SectionName, string[]>();
  private size = 2;
  private part = 0;

  constructor(
    private readonly head: Omit<PartHead, "v" | "part" | "last">,
    private readonly store: (part: number, body: string) => void,
    private readonly maxChars = MAX_PART_CHARS,
  ) {}

  add<K extends SectionName>(section: K, row: SectionRow<K>): void {
    const json = JSON.stringify(row);
    const size = utf8Length(json) + 1;
    const opening = this.sections.has(section) ? 0 : section.length + 5;
    if (this.size + opening + size + this.headSize() > this.maxChars) {
      if (this.sections.size === 0) throw new Error(`hand-over ${this.head.moveId}: a ${section} row of ${size} bytes does not fit in a part of ${this.maxChars}`);
      this.flush(false);
      this.add(section, row);
      return;
    }
    let rows = this.sections.get(section);
    if (!rows) this.sections.set(section, (rows = []));
    rows.push(json);
    this.size += opening + size;
  }

  /** Stores the last part; returns how many parts the package has. */
  end(): number {
    this.flush(true);
    return this.part;
  }

  private headJson(last: boolean) {
    return JSON.stringify({ v: 1, ...this.head, part: this.part, last } satisfies PartHead);
  }

  private headSize() {
    return utf8Length(this.headJson(false)) + 1;
  }

  private flush(last: boolean) {
    const body = [...this.sections].map(([name, rows]) => `"${name}":[${rows.join(",")}]`);
    const head = this.headJson(last);
    this.store(this.part, body.length ? `${head.slice(0, -1)},${body.join(",")}}` : head);
    this.part += 1;
    this.sections.clear();
    this.size = 2;
  }
}

/** A stored part, validated: anything else is an Error naming the move, the part and every invalid path. */
export function parsePart(moveId: string, part: number, body: string): Part {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch (error) {
    throw new Error(`hand-over ${moveId} part ${part} is not JSON: ${(error as Error).message}`);
  }
  const parsed = partSchema.safeParse(raw);
  if (!parsed.success) {
    const detail = parsed.error.issues.map((issue) => `${issue.path.join(".") || "(part)"}: ${issue.message}`).join("; ");
    throw new Error(`hand-over ${moveId} part ${part} is invalid: ${detail}`);
  }
  if (parsed.data.moveId !== moveId || parsed.data.part !== part) {
    throw new Error(`hand-over ${moveId} part ${part} holds part ${parsed.data.part} of hand-over ${parsed.data.moveId}`);
  }
  return parsed.data;
}

/** The graph's rows of a part, as the graph holds them. */
export function graphRowsOf(part: Part): Partial<GraphRows> {
  return {
    clusters: part.clusters?.map((c) => ({ ...c, identifiers: new Map(c.identifiers) })),
    index: part.index,
    features: part.features,
    blocks: part.blocks,
    assignments: part.assignments,
    links: part.links,
    merges: part.merges,
    // Parsed by the same schema the graph's own table reads reviews with.
    reviews: part.reviews as ReviewItem[] | undefined,
    conflicts: part.conflicts,
    neverMerge: part.neverMerge,
    tombstones: part.tombstones,
    suggested: part.suggested,
  };
}
