import { groupBy, mapValues } from "../workers/lib/group-by";
import type { AudienceChange } from "../workers/segments/activation";
import { type AggregateState, applyEvent, emptyState, pruneState } from "../workers/segments/aggregates";
import { type Audience, audienceSchema, Catalog } from "../workers/segments/catalog";
import type { ComputedTraitDefinition, Condition } from "../workers/segments/definition";
import { computeTraitFromState, evaluateAggregates } from "../workers/segments/evaluate";
import { computedTraitSpec, specKey } from "../workers/segments/specs";
import { canonical } from "../workers/segments/time";
import type { PersonEvent } from "../workers/segments/values";

type Values = Record<string, unknown>;
type ValueRow = { audience_id: string; value: string; since: number };
const VALUES = (where: string) => `SELECT profile_id, audience_id, value, since FROM audience_values WHERE ${where}`;
export interface Membership {
  id: string;
  key: string;
  name: string;
  enteredAt: string;
}

export interface AudienceValues {
  segments: Membership[];
  computedTraits: Values;
}

/**
 * Segments and computed traits, evaluated in the identity object on every
 * event and on every alarm. Per person it keeps one aggregate state per spec
 * (so a window never rescans the history), the current memberships and values,
 * and the next instant anything could flip without an event (a window edge);
 * the object's alarm wakes for the earliest of those. Changes are recorded for
 * activation by `emit`, exactly once per change, in the same turn.
 */
export class AudienceEngine {
  private catalog: Catalog;
  private statistics: Record<string, number>;

  constructor(
    private readonly sql: SqlStorage,
    private readonly traitsOf: (profileId: string) => Values,
    private readonly emit: (change: Omit<AudienceChange, "seq">) => void,
  ) {
    sql.exec("CREATE TABLE IF NOT EXISTS audiences (id TEXT PRIMARY KEY, body TEXT NOT NULL)");
    sql.exec("CREATE TABLE IF NOT EXISTS person_state (profile_id TEXT NOT NULL, spec TEXT NOT NULL, state TEXT NOT NULL, PRIMARY KEY (profile_id, spec))");
    sql.exec("CREATE TABLE IF NOT EXISTS audience_values (profile_id TEXT NOT NULL, audience_id TEXT NOT NULL, value TEXT NOT NULL, since INTEGER NOT NULL, PRIMARY KEY (profile_id, audience_id))");
    sql.exec("CREATE INDEX IF NOT EXISTS audience_values_audience ON audience_values (audience_id, profile_id)");
    sql.exec("CREATE TABLE IF NOT EXISTS wakeups (profile_id TEXT PRIMARY KEY, at INTEGER NOT NULL)");
    sql.exec("CREATE INDEX IF NOT EXISTS wakeups_at ON wakeups (at)");
    sql.exec("CREATE TABLE IF NOT EXISTS statistics (key TEXT PRIMARY KEY, value REAL NOT NULL)");
    this.catalog = this.loadCatalog();
    this.statistics = Object.fromEntries(sql.exec<{ key: string; value: number }>("SELECT key, value FROM statistics").toArray().map((r) => [r.key, r.value]));
  }

  audiences(): Audience[] {
    return this.catalog.audiences;
  }

  /** Adds or replaces a definition. Existing profiles are brought up to date by `rebuild` (the backfill). */
  put(audience: Audience) {
    this.sql.exec("INSERT INTO audiences (id, body) VALUES (?, ?) ON CONFLICT DO UPDATE SET body = excluded.body", audience.id, JSON.stringify(audience));
    this.catalog = this.loadCatalog();
  }

  /** Removes a definition and every value it produced; returns the profiles that held one. */
  remove(audienceId: string): string[] {
    const holders = this.sql.exec<{ profile_id: string }>("SELECT profile_id FROM audience_values WHERE audience_id = ?", audienceId).toArray().map((r) => r.profile_id);
    this.sql.exec("DELETE FROM audience_values WHERE audience_id = ?", audienceId);
    this.sql.exec("DELETE FROM audiences WHERE id = ?", audienceId);
    this.catalog = this.loadCatalog();
    return holders;
  }

  putStatistics(statistics: Record<string, number>) {
    this.sql.exec("DELETE FROM statistics");
    for (const [key, value] of Object.entries(statistics)) this.sql.exec("INSERT INTO statistics (key, value) VALUES (?, ?)", key, value);
    this.statistics = { ...statistics };
  }

  statisticsNow(): Record<string, number> {
    return { ...this.statistics };
  }

  /** Profiles holding an audience (members of a segment, or with a value of a computed trait), in profile id order. */
  members(audienceId: string, after: string | null, limit: number) {
    return this.sql
      .exec<{ profile_id: string; value: string; since: number }>(
        "SELECT profile_id, value, since FROM audience_values WHERE audience_id = ? AND profile_id > ? ORDER BY profile_id LIMIT ?",
        audienceId,
        after ?? "",
        limit,
      )
      .toArray()
      .map((r) => ({ profileId: r.profile_id, value: JSON.parse(r.value) as unknown, since: r.since }));
  }

  memberCount(audienceId: string): number {
    return this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM audience_values WHERE audience_id = ?", audienceId).one().n;
  }

  /** One new event for a person: the specs it may touch are updated, then the person is evaluated. Returns whether anything changed. */
  onEvent(profileId: string, event: PersonEvent, now: number): boolean {
    if (this.catalog.audiences.length === 0) return false;
    const touched = this.catalog.specsTouchedBy(event);
    const states = this.states(profileId);
    for (const [key, spec] of touched) {
      const state = pruneState(spec, applyEvent(spec, states[key] ?? emptyState(spec), event), now);
      this.sql.exec("INSERT INTO person_state (profile_id, spec, state) VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET state = excluded.state", profileId, key, JSON.stringify(state));
      states[key] = state;
    }
    return this.evaluate(profileId, now, states);
  }

  /**
   * Rebuilds a person's states from their events and evaluates them: after a
   * merge or unmerge, and for each profile a backfill reaches.
   */
  rebuild(profileId: string, events: PersonEvent[], now: number): boolean {
    this.sql.exec("DELETE FROM person_state WHERE profile_id = ?", profileId);
    const states: Record<string, AggregateState> = {};
    for (const [key, spec] of this.catalog.specs) {
      let state = emptyState(spec);
      for (const event of events) state = applyEvent(spec, state, event);
      states[key] = pruneState(spec, state, now);
      this.sql.exec("INSERT INTO person_state (profile_id, spec, state) VALUES (?, ?, ?)", profileId, key, JSON.stringify(states[key]));
    }
    return this.evaluate(profileId, now, states);
  }

  /** A profile absorbed by a merge or gone: its values, states and wakeup go (the survivor is rebuilt). */
  forget(profileId: string) {
    for (const table of ["person_state", "audience_values", "wakeups"]) this.sql.exec(`DELETE FROM ${table} WHERE profile_id = ?`, profileId);
  }

  /** Evaluates a person again from their current states: after the statistics or another input changed. */
  reevaluate(profileId: string, now: number): boolean {
    return this.evaluate(profileId, now, this.states(profileId));
  }

  /** Evaluates every person whose wakeup is due; returns the profiles whose values changed. */
  wake(now: number, limit = 500): string[] {
    const due = this.sql.exec<{ profile_id: string }>("SELECT profile_id FROM wakeups WHERE at <= ? ORDER BY at LIMIT ?", now, limit).toArray();
    return due.filter(({ profile_id }) => this.evaluate(profile_id, now, this.states(profile_id))).map((r) => r.profile_id);
  }

  nextWakeup(): number | null {
    return this.sql.exec<{ at: number | null }>("SELECT min(at) AS at FROM wakeups").one().at;
  }

  /** Current memberships and computed values of a profile, for the profile row. */
  valuesOf(profileId: string): AudienceValues {
    return this.audienceValues(this.sql.exec<ValueRow>(VALUES("profile_id = ?"), profileId).toArray());
  }

  /** `valuesOf` for many profiles in one query; a profile in no audience is absent. */
  valuesOfMany(profileIds: string[]): Map<string, AudienceValues> {
    const rows = this.sql.exec<ValueRow & { profile_id: string }>(VALUES("profile_id IN (SELECT value FROM json_each(?))"), JSON.stringify(profileIds)).toArray();
    return mapValues(groupBy(rows, (row) => row.profile_id), (group) => this.audienceValues(group));
  }

  private audienceValues(rows: ValueRow[]): AudienceValues {
    const byId = new Map(this.catalog.audiences.map((a) => [a.id, a]));
    const segments: Membership[] = [];
    const computedTraits: Values = {};
    for (const row of rows) {
      const audience = byId.get(row.audience_id);
      if (!audience) continue;
      if (audience.kind === "segment") segments.push({ id: audience.id, key: audience.key, name: audience.name, enteredAt: new Date(row.since).toISOString() });
      else computedTraits[audience.key] = JSON.parse(row.value);
    }
    segments.sort((a, b) => (a.key < b.key ? -1 : 1));
    return { segments, computedTraits };
  }

  private states(profileId: string): Record<string, AggregateState> {
    const rows = this.sql.exec<{ spec: string; state: string }>("SELECT spec, state FROM person_state WHERE profile_id = ?", profileId).toArray();
    return Object.fromEntries(rows.map((r) => [r.spec, JSON.parse(r.state) as AggregateState]));
  }

  /** Computed traits first (segments may read them), then segments in dependency order; each change recorded once. */
  private evaluate(profileId: string, now: number, states: Record<string, AggregateState>): boolean {
    const stored = new Map(
      this.sql.exec<{ audience_id: string; value: string }>("SELECT audience_id, value FROM audience_values WHERE profile_id = ?", profileId).toArray().map((r) => [r.audience_id, r.value]),
    );
    const traits = this.traitsOf(profileId);
    const computedTraits: Values = {};
    const segments = new Set<string>();
    let next = Infinity;
    let changed = false;
    for (const audience of this.catalog.ordered) {
      let value: unknown;
      if (audience.kind === "computed_trait") {
        const definition = audience.definition as ComputedTraitDefinition;
        const result = computeTraitFromState(definition, states[specKey(computedTraitSpec(definition))], now);
        value = result.value ?? null;
        if (result.nextChangeAt !== null) next = Math.min(next, result.nextChangeAt);
        computedTraits[audience.key] = value;
      } else {
        const result = evaluateAggregates(audience.definition as Condition, { traits, computedTraits, segments, statistics: this.statistics, aggregates: states }, now);
        value = result.member;
        if (result.nextChangeAt !== null) next = Math.min(next, result.nextChangeAt);
        if (result.member) segments.add(audience.id);
      }
      const held = audience.kind === "segment" ? (value ? "true" : null) : value === null ? null : canonical(value);
      const before = stored.get(audience.id) ?? null;
      if (held === before || (held !== null && before !== null && canonical(JSON.parse(before)) === held)) continue;
      changed = true;
      if (held === null) this.sql.exec("DELETE FROM audience_values WHERE profile_id = ? AND audience_id = ?", profileId, audience.id);
      else this.sql.exec("INSERT INTO audience_values (profile_id, audience_id, value, since) VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET value = excluded.value, since = excluded.since", profileId, audience.id, JSON.stringify(value), now);
      this.emit(audience.kind === "segment" ? { audience, profileId, at: now, entered: held !== null } : { audience, profileId, at: now, value });
    }
    if (Number.isFinite(next)) this.sql.exec("INSERT INTO wakeups (profile_id, at) VALUES (?, ?) ON CONFLICT DO UPDATE SET at = excluded.at", profileId, next);
    else this.sql.exec("DELETE FROM wakeups WHERE profile_id = ?", profileId);
    return changed;
  }

  private loadCatalog(): Catalog {
    const rows = this.sql.exec<{ body: string }>("SELECT body FROM audiences ORDER BY id").toArray();
    return new Catalog(rows.map((r) => audienceSchema.parse(JSON.parse(r.body))));
  }
}
