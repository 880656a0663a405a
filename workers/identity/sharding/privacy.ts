import type { ErasureCounts, IdentityGraphShard, PrivacyPerson } from "../../../durable-objects/identity-graph";
import { graphShardCount } from "../../env";
import { normalizeIdentifier } from "../extract";
import { type Identifier, identifierKey } from "../types";
import { GraphShards, type ShardStub, ShardStubs } from "./graph-shards";
import { driveMove } from "./handover-saga";
import { everyShard } from "./fan-out";
import { IdentifierIndex } from "./identifier-index";
import { settleWaitingBlocks } from "./match-block-updates";

type PrivacyStub = ShardStub<(typeof PRIVACY_CALLS)[number]>;

/**
 * All of them safe to send twice: reads, a flush that writes what is pending,
 * an erasure that finds nothing left to erase the second time (only its
 * counts then say zero), and confirming block entries the index follows.
 */
const PRIVACY_CALLS = ["getSettings", "personForPrivacy", "erasePerson", "flush", "lookup", "movesInFlight", "blockChangesWaiting", "leadsMatched"] as const;

const ZERO: ErasureCounts = { profiles: 0, identifiers: 0, events: 0 };

/**
 * Access and deletion requests over a workspace's graph shards. A person lives
 * whole on one shard (the router brings everyone an event reaches onto one),
 * so each request finds that shard through the identifier index and asks it
 * alone, as the single graph was asked. With one shard, every call goes to
 * shard 0 without asking the index, as before sharding.
 */
export class ShardedPrivacy {
  private readonly stubs: ShardStubs<(typeof PRIVACY_CALLS)[number]>;
  /** The shards as the hand-over saga reaches them, for finishing a move in flight. */
  private readonly graphShards: GraphShards;

  constructor(
    namespace: DurableObjectNamespace<IdentityGraphShard>,
    private readonly index: IdentifierIndex,
    workspaceId: string,
    private readonly count: number,
  ) {
    this.stubs = new ShardStubs(namespace, workspaceId, PRIVACY_CALLS);
    this.graphShards = new GraphShards(namespace, workspaceId);
  }

  private shard(n: number): PrivacyStub {
    return this.stubs.shard(n);
  }

  /**
   * The request's subject as the key the index places: `personForPrivacy`
   * lower-cases and trims the type, takes a profile id as it is, and
   * normalises any other value with the workspace's settings, which shard 0
   * keeps (the router extracts keys with the same). Null when the value
   * cannot be an identifier: the object would find no one either.
   */
  private async subjectKey(type: string, value: string): Promise<string | null> {
    const normalizedType = type.trim().toLowerCase();
    if (normalizedType === "profile_id") return `profile_id:${value}`;
    const normalized = normalizeIdentifier(normalizedType, value, await this.shard(0).getSettings());
    return normalized.ok ? identifierKey(normalized.identifier) : null;
  }

  /** Everything known about the person `type`/`value` names, from the shard holding them; null when no one does. */
  async person(type: string, value: string): Promise<PrivacyPerson | null> {
    if (this.count === 1) return this.shard(0).personForPrivacy(type, value);
    const key = await this.subjectKey(type, value);
    if (key !== null) await this.settleMoves([key]);
    const placement = key === null ? undefined : (await this.index.locate([key])).get(key);
    // Never placed: no shard has seen it, so no one holds it.
    if (!placement) return null;
    const person = await this.shard(placement.shard).personForPrivacy(type, value);
    return person && this.withHeldElsewhere(person, placement.shard);
  }

  /**
   * Finishes any hand-over still moving the person these keys name. Until it
   * is finished the index places their keys on the source, which holds them
   * only in the move's stored package: a request asking there would find no
   * one, and an erasure would leave the package to bring them back. Any
   * caller may drive a move (every step is idempotent), so the request does,
   * then looks again.
   */
  private async settleMoves(keys: string[]) {
    const placed = await this.index.locate(keys);
    const byShard = new Map<number, string[]>();
    for (const [key, { shard }] of placed) byShard.set(shard, [...(byShard.get(shard) ?? []), key]);
    const moves = (await Promise.all([...byShard].map(([shard, held]) => this.shard(shard).movesInFlight(held)))).flat();
    for (const move of moves) await driveMove(this.graphShards, this.index, move);
  }

  /**
   * A shard counts an identifier as the person's own when no other live
   * profile *there* holds it. One the index places on another shard is held by
   * someone there (a value dropped from the person's events because its owner
   * had it, the owner handed over since): the single graph would have called
   * it shared, so it is moved there, and is neither suppressed nor erased.
   */
  private async withHeldElsewhere(person: PrivacyPerson, shard: number): Promise<PrivacyPerson> {
    if (person.identifiers.length === 0) return person;
    const placed = await this.index.locate(person.identifiers.map(identifierKey));
    const elsewhere = (identifier: Identifier) => {
      const placement = placed.get(identifierKey(identifier));
      return placement !== undefined && placement.shard !== shard;
    };
    if (!person.identifiers.some(elsewhere)) return person;
    return {
      ...person,
      identifiers: person.identifiers.filter((i) => !elsewhere(i)),
      sharedIdentifiers: [...person.sharedIdentifiers, ...person.identifiers.filter(elsewhere)],
    };
  }

  /**
   * Erases the person these profile ids belong to (the identity step of a
   * deletion), writes the erasure through to D1, and forgets their keys in
   * the index, so a later event carrying one of them is placed as new.
   *
   * Their shard is located now, not when the request was made: a move in
   * between goes with the person. Every shard the index places one of their
   * profile ids or identifiers on is asked; one that holds nothing of them
   * erases nothing.
   *
   * Only when the request found the person (`profileIds` not empty) are
   * `identifiers` theirs alone, as the object decided; otherwise they are the
   * request's subject, which may be a quarantined key other people's profiles
   * still hold, and which must stay placed where they are.
   */
  async erase(profileIds: string[], identifiers: Identifier[]): Promise<ErasureCounts> {
    if (this.count === 1) {
      const erased = await this.shard(0).erasePerson(profileIds);
      await this.shard(0).flush();
      return erased;
    }
    if (profileIds.length === 0) return { ...ZERO };
    const profileKeys = profileIds.map((id) => `profile_id:${id}`);
    const keys = [...profileKeys, ...identifiers.map(identifierKey)];
    await this.settleMoves(keys);
    const placed = await this.index.locate(keys);
    const homes = new Set(profileKeys.flatMap((key) => placed.get(key)?.shard ?? []));
    const shards = new Set([...placed.values()].map((p) => p.shard));
    const counts = await Promise.all([...shards].map((n) => this.eraseOn(n, profileIds, keys, homes.has(n))));
    // The other shards hold nothing of theirs but what names them: a review scored across shards, a copy a hand-over left, a suggested pair.
    await everyShard(this.count, async (n) => (shards.has(n) ? null : this.shard(n).erasePerson(profileIds)));
    return counts.reduce((sum, c) => ({ profiles: sum.profiles + c.profiles, identifiers: sum.identifiers + c.identifiers, events: sum.events + c.events }), { ...ZERO });
  }

  /**
   * Erase, write through, then release (and take the person's profiles out
   * of the match blocks): a retry after a failure anywhere repeats all of it harmlessly. Keys are released from a shard that holds
   * one of the person's profile ids or where they were just found, never from
   * one that only holds an identifier of theirs: that would be another
   * person's there, and must stay placed. `release` itself forgets only keys
   * placed on this shard.
   */
  private async eraseOn(n: number, profileIds: string[], keys: string[], home: boolean): Promise<ErasureCounts> {
    const erased = await this.shard(n).erasePerson(profileIds, true);
    await this.shard(n).flush();
    if (home || erased.profiles > 0) {
      // Before the release: a retry finds this shard only while the index still places their keys here.
      await this.dropLeftBlocks(n);
      await Promise.all([this.index.release(keys, n), this.index.forgetProfiles(profileIds)]);
    }
    return erased;
  }

  /**
   * Has the index drop the block entries an erasure on shard `n` left: other
   * profiles whose features named the erased email or phone are no longer in
   * those blocks (whose keys hold the email's handle or the phone's digits).
   * The shard keeps them until confirmed, so a retried deletion, which finds
   * no one left to erase, still drops them.
   */
  private async dropLeftBlocks(n: number) {
    await settleWaitingBlocks(this.shard(n), this.index);
  }

  /**
   * The deletion's last look: a person the graph built again from an event
   * that was already past the suppression check holding one of `identifiers`
   * is erased too, and written through.
   */
  async eraseRecreated(identifiers: Identifier[]): Promise<void> {
    if (this.count === 1) {
      const object = this.shard(0);
      for (const key of identifiers.map(identifierKey)) {
        const again = await object.lookup(key);
        if (again) await object.erasePerson([again.profileId]);
      }
      await object.flush();
      return;
    }
    const placed = await this.index.locate(identifiers.map(identifierKey));
    const touched = new Set<number>();
    for (const [key, { shard }] of placed) {
      const again = await this.shard(shard).lookup(key);
      if (!again) continue;
      // Asked by profile id, so the shard names that person's own identifiers: the keys to release.
      const person = await this.shard(shard).personForPrivacy("profile_id", again.profileId);
      if (!person) continue;
      const keys = [...person.profileIds.map((id) => `profile_id:${id}`), ...person.identifiers.map(identifierKey)];
      await this.shard(shard).erasePerson(person.profileIds, true);
      await this.dropLeftBlocks(shard);
      await Promise.all([this.index.release(keys, shard), this.index.forgetProfiles(person.profileIds)]);
      touched.add(shard);
    }
    await Promise.all([...touched].map((n) => this.shard(n).flush()));
  }
}

/** The privacy side of a workspace's identity, over as many graph shards as the deployment has. */
export function privacyFor(env: Pick<Env, "IDENTITY" | "IDENTIFIER_INDEX">, workspaceId: string): ShardedPrivacy {
  return new ShardedPrivacy(env.IDENTITY, new IdentifierIndex(env.IDENTIFIER_INDEX, workspaceId), workspaceId, graphShardCount(env));
}
