import type { EventRecord } from "../profiles/event-record";
import type { AccountRow, IdentifierRow, ProfileRow } from "../profiles/write-through";

export interface EventQuery {
  since?: number;
  until?: number;
  order: "asc" | "desc";
  after?: { at: number; messageId: string };
  limit: number;
}

export type ProfileCore = Omit<ProfileRow, "identifiers" | "links" | "canonicalId"> & {
  computedTraits: Record<string, unknown>;
  segments: { id: string; key: string; name?: string; enteredAt?: string }[];
};

/**
 * Where the Profile API reads from. Two implementations with one contract:
 * D1 through a Sessions API session (fast, from a replica when allowed, with
 * read-your-writes through a bookmark), and the workspace's identity object
 * itself for `?consistency=strong`.
 */
export interface ProfileReader {
  /** The live profile holding `type:value` (`profile_id:…` names a profile directly); merged profiles resolve to their survivor. */
  findUser(type: string, value: string): Promise<ProfileCore | null>;
  identifiers(profileId: string): Promise<IdentifierRow[]>;
  links(profileId: string): Promise<NonNullable<ProfileRow["links"]>>;
  events(profileId: string, query: EventQuery): Promise<EventRecord[]>;
  findAccount(groupId: string): Promise<AccountRow | null>;
  /** Profiles linked to an account, oldest link first. */
  accountMembers(groupId: string): Promise<{ profileId: string; userId: string | null; linkedAt: number; sourceId: string | null }[]>;
  /** The D1 bookmark to hand back, when the read went through D1. */
  bookmark(): string | null;
}
