import type { EventAssignment } from "../../../durable-objects/identity-graph";
import type { QueuedEvent } from "../../intake/envelope";
import { createLogger } from "../../lib/logger";
import { eventIdentifiers } from "../extract";
import type { IdentitySettings } from "../settings";
import { identifierKey } from "../types";
import { hotKeys, KeyGroups, placeGroups, type ShardMove } from "./batch-groups";
import type { GraphShards } from "./graph-shards";
import { leadsMatched, type MatchLead, matchAcrossShards } from "./cross-shard-matching";
import { MatchBlockUpdates } from "./match-block-updates";
import { driveMove, handOverKeys } from "./handover-saga";
import { type IdentifierIndex, type IndexPlacement, shardHash } from "./identifier-index";

/**
 * Routes a workspace's events over its graph shards so that each event is
 * resolved in one graph holding every cluster its identifiers reach, as the
 * single graph would resolve it:
 *
 * - a batch's events are grouped by the identifiers they share; a group whose
 *   identifiers the index places on several shards is first brought onto one
 *   (the people holding them are handed over, all groups' moves at once);
 * - each event then goes to its group's shard, and its new identifiers are
 *   claimed for it; a group never seen goes to a shard chosen by hash of its
 *   strongest identifier;
 * - quarantined identifiers link no one, so they group no one: the event's
 *   shard is told to refuse them.
 *
 * Events are sent per shard in order, and a hand-over happens only between
 * rounds of sending, so no event is resolved before one that came earlier and
 * reached the same people.
 */
/** Rounds of hand-overs a batch, or one event of it, may wait for before the batch fails and is delivered again. */
const MAX_GATHER_ROUNDS = 16;

export class ShardRouter {
  /** Where each key is, as far as this batch knows: the index's answers, updated by claims and moves. */
  private readonly view = new Map<string, IndexPlacement>();
  /**
   * The keys of each person handed over during the batch. A person moves
   * whole, so groups reaching different keys of one person are one group:
   * otherwise two groups could keep pulling that person between their shards.
   */
  private readonly people: string[][] = [];
  /** People (and keys nobody held) handed over for this batch, for the log. */
  private handOvers = 0;
  /** How many times each event was answered `moved`. */
  private readonly bounced = new Map<string, number>();
  /** Profiles that gained a blocking key on their shard during the batch: matched with the other shards' people at its end. */
  private readonly leads: (MatchLead & { shard: number })[] = [];
  /** Match block entries that changed on their shard outside matching: the index follows them at the batch's end. */
  private readonly blockUpdates = new MatchBlockUpdates();

  constructor(
    private readonly shards: GraphShards,
    private readonly index: IdentifierIndex,
    private readonly count: number,
    private readonly settings: IdentitySettings,
  ) {}

  async resolve(events: QueuedEvent[], sources: Record<string, string>): Promise<EventAssignment[]> {
    const keysOf = await this.locate(events);
    const position = new Map(events.map((event, i) => [event.messageId, i]));
    const out = new Map<string, EventAssignment>();
    const gathered = new Map<string, number>();
    let queue = events;
    let rounds = 0;
    while (queue.length > 0) {
      const plan = this.plan(queue, keysOf);
      if (plan.moves.length > 0) {
        // Each round finishes its moves, so groups end on one shard unless other consumers keep moving their people.
        if (++rounds > MAX_GATHER_ROUNDS) throw new Error(`the batch's identifiers were still on several graph shards after ${MAX_GATHER_ROUNDS} rounds of hand-overs`);
        const made = await Promise.all(plan.moves.map((move) => handOverKeys(this.shards, this.index, move.from, move.keys, move.to)));
        for (const moves of made) this.learn(moves);
        continue;
      }
      const confirmed = await this.claim(plan, keysOf);
      const sent = await this.send(confirmed.byShard, keysOf, sources);
      for (const assignment of sent.applied) out.set(assignment.messageId, assignment);
      const stopped = queue[plan.stoppedAt];
      if (stopped && confirmed.replan.length === 0 && sent.again.length === 0) {
        const times = (gathered.get(stopped.messageId) ?? 0) + 1;
        // Each round finishes moves, so the people an event reaches end on one shard unless other consumers keep moving them.
        if (times > MAX_GATHER_ROUNDS) throw new Error(`event ${stopped.messageId}: its identifiers were still on several graph shards after ${MAX_GATHER_ROUNDS} hand-overs`);
        gathered.set(stopped.messageId, times);
        await this.gather(stopped, keysOf, plan.stopTarget);
      }
      queue = [...sent.again, ...confirmed.replan, ...queue.slice(plan.stoppedAt)].sort((a, b) => position.get(a.messageId)! - position.get(b.messageId)!);
    }
    const logger = createLogger({ workspaceId: this.shards.workspaceId });
    logger.info("events routed over graph shards", { events: events.length, handOvers: this.handOvers, rounds });
    if (this.leads.length > 0 || this.blockUpdates.any()) {
      // Suggestions only: a failure here must not send the batch's resolved events round again.
      try {
        // First, so that a key a profile no longer gives brings it no candidate.
        const updates = this.blockUpdates.updates();
        if (updates.length > 0) await this.index.updateBlocks(updates);
        const leads = this.leads.map((lead) => this.blockUpdates.current(lead));
        if (leads.length > 0) logger.info("matched across graph shards", { leads: leads.length, ...(await matchAcrossShards(this.shards, this.index, leads)) });
        await leadsMatched(this.shards, this.leads, this.blockUpdates.answeredBy());
      } catch (error) {
        logger.warn("matching across graph shards failed; their shards answer these profiles again with their next event or a delivery of this batch again", { leads: this.leads.length, error: String(error) });
      }
    }
    return events.map((event) => out.get(event.messageId)!);
  }

  /** Each event's identifier keys, and where the index places them; an alias's previous id counts only when known, as in the graph. */
  private async locate(events: QueuedEvent[]): Promise<Map<string, string[]>> {
    const keysOf = new Map<string, string[]>();
    const previous = new Map<string, string>();
    for (const event of events) {
      const found = eventIdentifiers(event, this.settings);
      keysOf.set(event.messageId, found.identifiers.map(identifierKey));
      if (found.previous) previous.set(event.messageId, identifierKey(found.previous));
    }
    const placed = await this.index.locate([...[...keysOf.values()].flat(), ...previous.values()]);
    for (const [key, placement] of placed) this.view.set(key, placement);
    for (const [messageId, key] of previous) if (this.view.has(key)) keysOf.get(messageId)!.push(key);
    return keysOf;
  }

  /**
   * Groups the events by the identifiers they share and places each group on
   * one shard. Groups placed on several shards answer the moves that bring
   * them together first (nothing is planned then). Otherwise events are
   * planned in order, each to its group's shard, with its unplaced keys
   * claimed for it, until one whose quarantine-bound keys sit elsewhere: that
   * one is brought together on its own (`gather`) once the events before it are sent.
   */
  private plan(queue: QueuedEvent[], keysOf: Map<string, string[]>) {
    const byShard = new Map<number, QueuedEvent[]>();
    const claims = new Map<string, number>();
    const linkingOf = (event: QueuedEvent) => this.linking(keysOf.get(event.messageId)!);
    const hot = hotKeys(queue.map(linkingOf), this.settings.bridgeQuarantineThreshold);
    const groups = new KeyGroups();
    for (const event of queue) groups.add(linkingOf(event).filter((key) => !hot.has(key)));
    for (const keys of this.people) groups.add(keys.filter((key) => !hot.has(key) && !this.view.get(key)?.quarantined));
    const { targets, moves } = placeGroups(groups.groups(), (key) => this.view.get(key)?.shard, (keys) => this.home(keys));
    if (moves.length > 0) return { moves, byShard, claims, stoppedAt: 0, stopTarget: 0, planned: [] as QueuedEvent[] };
    let stoppedAt = queue.length;
    let stopTarget = 0;
    for (let i = 0; i < queue.length; i++) {
      const keys = linkingOf(queue[i]!);
      const grouped = keys.find((key) => !hot.has(key));
      const placed = keys.map((key) => this.view.get(key)?.shard ?? claims.get(key)).filter((s) => s !== undefined);
      const shard = grouped !== undefined ? targets.get(groups.root(grouped))! : (placed[0] ?? this.home(keys));
      if (placed.some((s) => s !== shard)) {
        stoppedAt = i;
        stopTarget = shard;
        break;
      }
      for (const key of keys) if (!this.view.has(key) && !claims.has(key)) claims.set(key, shard);
      let list = byShard.get(shard);
      if (!list) byShard.set(shard, (list = []));
      list.push(queue[i]!);
    }
    return { moves: [] as ShardMove[], byShard, claims, stoppedAt, stopTarget, planned: queue.slice(0, stoppedAt) };
  }

  /**
   * Claims the planned keys. A key another consumer claimed first for another
   * shard undoes the plan from the first event carrying it: those events are
   * planned again with the index's answer.
   */
  private async claim(plan: ReturnType<ShardRouter["plan"]>, keysOf: Map<string, string[]>) {
    const perShard = new Map<number, string[]>();
    for (const [key, shard] of plan.claims) {
      let keys = perShard.get(shard);
      if (!keys) perShard.set(shard, (keys = []));
      keys.push(key);
    }
    const lost = new Set<string>();
    await Promise.all(
      [...perShard].map(async ([shard, keys]) => {
        for (const [key, placement] of await this.index.claim(keys, shard)) {
          this.view.set(key, placement);
          if (placement.shard !== shard) lost.add(key);
        }
      }),
    );
    if (lost.size === 0) return { byShard: plan.byShard, replan: [] as QueuedEvent[] };
    const cut = plan.planned.findIndex((event) => keysOf.get(event.messageId)!.some((key) => lost.has(key)));
    const kept = new Set(plan.planned.slice(0, cut).map((event) => event.messageId));
    const byShard = new Map([...plan.byShard].map(([shard, events]) => [shard, events.filter((e) => kept.has(e.messageId))] as const));
    return { byShard, replan: plan.planned.slice(cut) };
  }

  /**
   * Sends each shard its events, in parallel across shards. An event whose
   * identifiers a shard handed over meanwhile comes back `moved`, with the
   * rest of that shard's list: the move is finished and they are routed again.
   */
  private async send(byShard: Map<number, QueuedEvent[]>, keysOf: Map<string, string[]>, sources: Record<string, string>) {
    const applied: EventAssignment[] = [];
    const again: QueuedEvent[] = [];
    const quarantined: string[] = [];
    await Promise.all(
      [...byShard].map(async ([shard, events]) => {
        if (events.length === 0) return;
        const refused = [...new Set(events.flatMap((e) => keysOf.get(e.messageId)!.filter((key) => this.view.get(key)?.quarantined)))];
        const answers = await this.shards.shard(shard).resolveEvents(events, { sources: pick(sources, events), shard, matchLeads: true, ...(refused.length ? { quarantined: refused } : {}) });
        for (const [i, answer] of answers.entries()) {
          if (answer.moved) {
            const times = (this.bounced.get(answer.messageId) ?? 0) + 1;
            // Each answer finishes the move, so the key's shard is known next time; answered again and again, the index and the shard's marks disagree.
            if (times > MAX_GATHER_ROUNDS) throw new Error(`event ${answer.messageId}: graph shard ${shard} still answers that ${answer.moved.key} moved after ${MAX_GATHER_ROUNDS} hand-overs`);
            this.bounced.set(answer.messageId, times);
            const driven = await handOverKeys(this.shards, this.index, shard, [answer.moved.key], answer.moved.to);
            this.learn(driven);
            // The index places the key here after all (released, then claimed here again): the shard's mark is stale.
            if (driven.placed.get(answer.moved.key) === shard) await this.shards.shard(shard).forgetMovedMarks([answer.moved.key]);
            again.push(...events.slice(i));
            break;
          }
          applied.push(answer);
          quarantined.push(...(answer.quarantined ?? []));
          if (answer.matchBlocks && answer.profileId) {
            this.leads.push({ profileId: answer.profileId, blocks: answer.matchBlocks, version: answer.matchVersion ?? 0, at: eventTime(events[i]!), shard });
            this.blockUpdates.lead(answer.profileId, answer.matchBlocks, answer.matchVersion ?? 0);
          }
          if (answer.blockUpdates) this.blockUpdates.answer(shard, answer.blockUpdates);
        }
      }),
    );
    if (quarantined.length > 0) {
      await this.index.setQuarantined(quarantined, true);
      for (const key of quarantined) {
        const placement = this.view.get(key);
        if (placement) placement.quarantined = true;
      }
    }
    await this.placeProfiles(applied, byShard);
    return { applied, again };
  }

  /** Brings the people an event reaches onto its group's shard, one move per shard they are on. */
  private async gather(event: QueuedEvent, keysOf: Map<string, string[]>, target: number) {
    const keys = this.linking(keysOf.get(event.messageId)!).filter((key) => this.view.has(key) && this.view.get(key)!.shard !== target);
    const from = [...new Set(keys.map((key) => this.view.get(key)!.shard))];
    const made = await Promise.all(from.map((shard) => handOverKeys(this.shards, this.index, shard, keys.filter((key) => this.view.get(key)!.shard === shard), target)));
    for (const moves of made) this.learn(moves);
  }

  /** What the index now places each key of the moves on; a moved person's keys are one group from now on. */
  private learn({ moves, placed }: { moves: { keys: string[] }[]; placed: Map<string, number> }) {
    this.handOvers += moves.length;
    for (const [key, shard] of placed) this.view.set(key, { shard, quarantined: this.view.get(key)?.quarantined ?? false });
    // A move of keys nobody held names no profile: its keys are not one person.
    for (const move of moves) if (move.keys.some((key) => key.startsWith("profile_id:"))) this.people.push(move.keys);
  }

  /** Profile ids are placed too, so a read by profile id finds its shard. */
  private async placeProfiles(applied: EventAssignment[], byShard: Map<number, QueuedEvent[]>) {
    const shardOf = new Map<string, number>();
    for (const [shard, events] of byShard) for (const event of events) shardOf.set(event.messageId, shard);
    const perShard = new Map<number, Set<string>>();
    for (const { messageId, profileId } of applied) {
      if (!profileId || this.view.has(`profile_id:${profileId}`)) continue;
      const shard = shardOf.get(messageId)!;
      let keys = perShard.get(shard);
      if (!keys) perShard.set(shard, (keys = new Set()));
      keys.add(`profile_id:${profileId}`);
    }
    await Promise.all(
      [...perShard].map(async ([shard, keys]) => {
        for (const [key, placement] of await this.index.claim(keys, shard)) this.view.set(key, placement);
      }),
    );
  }

  private linking(keys: string[]) {
    return keys.filter((key) => !this.view.get(key)?.quarantined);
  }

  /** A new person's shard: by hash of their user id, or of their first identifier in key order. */
  private home(keys: string[]): number {
    const key = keys.find((k) => k.startsWith("user_id:")) ?? [...keys].sort()[0];
    return key === undefined ? 0 : shardHash(key) % this.count;
  }
}

const eventTime = (event: QueuedEvent) => Date.parse(event.timestamp) || Date.parse(event.receivedAt);

const pick = (sources: Record<string, string>, events: QueuedEvent[]) => Object.fromEntries(events.filter((e) => sources[e.messageId] !== undefined).map((e) => [e.messageId, sources[e.messageId]!]));

/** How the router drives a move it did not start: re-exported for the consumer's tests. */
export { driveMove };
