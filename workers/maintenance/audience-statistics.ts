import { audiencesFor } from "../identity/sharding/audiences";
import { createLogger, errorFields } from "../lib/logger";
import { segmentDefinitionSchema } from "../segments/definition";
import { requiredStatistics, type StatisticOperand } from "../segments/specs";
import { numericValue, resolvePath } from "../segments/values";

/**
 * Workspace statistics for segments that compare a person with everyone
 * (`{ statistic: "average", of: { trait: "lifetime_value" } }`): on every cron
 * run, for each workspace whose segments ask for any, they are computed from
 * the live profiles in D1 and put to the workspace's identity object, which
 * evaluates every profile again against them.
 *
 * A value counts when it is a number, or a string written as one (as the
 * segment language reads numbers); profiles without one are left out, and a
 * statistic nobody has a value for is not supplied (its comparisons are false).
 * Plain paths are aggregated by D1; a path with `[]` (each element counts) is
 * read profile by profile.
 */

type Column = "traits" | "computed_traits";
type StatFunction = StatisticOperand["statistic"];

interface Summary {
  count: number;
  sum: number;
  min: number;
  max: number;
  /** Only computed when asked for: it needs every distinct value. */
  median?: number;
}

/** Distinct values per page of a median's histogram, and profiles per page of a scan. */
const PAGE = 5_000;
const SCAN_PAGE = 1_000;

/** Segments whose definition mentions a statistic: the JSON text says `"statistic"` somewhere in it. */
async function statisticsWanted(db: D1Database): Promise<Map<string, Map<string, StatisticOperand>>> {
  const { results } = await db
    .prepare("SELECT workspace_id AS workspaceId, definition FROM audiences WHERE kind = 'segment' AND instr(definition, '\"statistic\"') > 0")
    .all<{ workspaceId: string; definition: string }>();
  const byWorkspace = new Map<string, Map<string, StatisticOperand>>();
  for (const row of results) {
    const parsed = segmentDefinitionSchema.safeParse(JSON.parse(row.definition));
    if (!parsed.success) continue;
    const wanted = byWorkspace.get(row.workspaceId) ?? new Map<string, StatisticOperand>();
    for (const [key, operand] of requiredStatistics(parsed.data)) wanted.set(key, operand);
    if (wanted.size) byWorkspace.set(row.workspaceId, wanted);
  }
  return byWorkspace;
}

export async function pushAudienceStatistics(env: Env, now: Date): Promise<{ workspaces: number; statistics: number }> {
  const logger = createLogger({ job: "audience-statistics", at: now.toISOString() });
  const wanted = await statisticsWanted(env.DB);
  let workspaces = 0;
  let pushed = 0;
  for (const [workspaceId, operands] of wanted) {
    try {
      const statistics = await workspaceStatistics(env.DB, workspaceId, [...operands.values()]);
      // Figures over the whole workspace (D1 holds every shard's profiles): the same to every graph shard.
      const changed = await audiencesFor(env, workspaceId).putStatistics(statistics);
      workspaces++;
      pushed += Object.keys(statistics).length;
      logger.info("workspace statistics put", { workspaceId, statistics, reevaluatedProfilesChanged: changed });
    } catch (error) {
      // One workspace's failure leaves the others' statistics fresh; the next run tries again.
      logger.error("workspace statistics failed", { workspaceId, ...errorFields(error) });
    }
  }
  return { workspaces, statistics: pushed };
}

/** Every asked-for statistic, by `statisticKey`; one pass over the profiles per distinct trait or computed trait. */
export async function workspaceStatistics(db: D1Database, workspaceId: string, operands: StatisticOperand[]): Promise<Record<string, number>> {
  const bySource = new Map<string, { column: Column; path: string; prefix: string; functions: Set<StatFunction> }>();
  for (const operand of operands) {
    const column: Column = operand.of?.trait !== undefined ? "traits" : "computed_traits";
    const path = (operand.of?.trait ?? operand.of?.computedTrait)!;
    const prefix = column === "traits" ? `traits.${path}` : `computed.${path}`;
    const source = bySource.get(prefix) ?? { column, path, prefix, functions: new Set<StatFunction>() };
    source.functions.add(operand.statistic);
    bySource.set(prefix, source);
  }
  const out: Record<string, number> = {};
  for (const { column, path, prefix, functions } of bySource.values()) {
    const summary = await summarize(db, workspaceId, column, path, functions.has("median"));
    if (!summary || summary.count === 0) continue;
    for (const fn of functions) {
      const value = fn === "average" ? summary.sum / summary.count : fn === "median" ? summary.median : summary[fn];
      if (value !== undefined && Number.isFinite(value)) out[`${fn}(${prefix})`] = value;
    }
  }
  return out;
}

/** `$."a"."b"` for `a.b`; null when D1 cannot address the path (a `[]`, or a name with a double quote). */
function jsonPath(path: string): string | null {
  const names = path.split(".");
  if (names.some((name) => name.includes("[]") || name.includes('"'))) return null;
  return `$.${names.map((name) => `"${name}"`).join(".")}`;
}

function summarize(db: D1Database, workspaceId: string, column: Column, path: string, withMedian: boolean): Promise<Summary | null> {
  const json = jsonPath(path);
  return json === null ? scan(db, workspaceId, column, path) : aggregate(db, workspaceId, column, json, withMedian);
}

/**
 * Numbers are aggregated by D1. Strings that may be numbers (those with a
 * digit) come back one row per distinct string with its count, and are read
 * here as the segment language reads them.
 */
async function aggregate(db: D1Database, workspaceId: string, column: Column, json: string, withMedian: boolean): Promise<Summary | null> {
  const value = `json_extract(${column}, ?2)`;
  const type = `json_type(${column}, ?2)`;
  const candidate = `(${type} IN ('integer', 'real') OR (${type} = 'text' AND ${value} GLOB '*[0-9]*'))`;
  const { results } = await db
    .prepare(
      `SELECT CASE WHEN ${type} IN ('integer', 'real') THEN NULL ELSE ${value} END AS text, count(*) AS n, total(${value}) AS total, min(${value}) AS low, max(${value}) AS high
       FROM profiles WHERE workspace_id = ?1 AND canonical_id IS NULL AND ${candidate} GROUP BY 1`,
    )
    .bind(workspaceId, json)
    .all<{ text: string | null; n: number; total: number; low: number; high: number }>();
  const summary: Summary = { count: 0, sum: 0, min: Infinity, max: -Infinity };
  for (const row of results) {
    const number = row.text === null ? null : numericValue(row.text);
    if (row.text !== null && number === null) continue;
    summary.count += row.n;
    summary.sum += number === null ? row.total : number * row.n;
    summary.min = Math.min(summary.min, number ?? row.low);
    summary.max = Math.max(summary.max, number ?? row.high);
  }
  if (summary.count === 0) return null;
  if (withMedian) {
    const histogram: [number, number][] = [];
    let after: number | string | null = null;
    for (;;) {
      const page: { v: number | string; n: number }[] = (
        await db
          .prepare(
            `SELECT ${value} AS v, count(*) AS n FROM profiles WHERE workspace_id = ?1 AND canonical_id IS NULL AND ${candidate} AND (?3 IS NULL OR ${value} > ?3)
             GROUP BY 1 ORDER BY 1 LIMIT ?4`,
          )
          .bind(workspaceId, json, after, PAGE)
          .all<{ v: number | string; n: number }>()
      ).results;
      for (const row of page) {
        const number = numericValue(row.v);
        if (number !== null) histogram.push([number, row.n]);
      }
      if (page.length < PAGE) break;
      after = page.at(-1)!.v;
    }
    summary.median = median(histogram);
  }
  return summary;
}

/** Paths D1 cannot address: every live profile's document is read and the path resolved here, each element found counting once. */
async function scan(db: D1Database, workspaceId: string, column: Column, path: string): Promise<Summary | null> {
  const counts = new Map<number, number>();
  let after = "";
  for (;;) {
    const { results } = await db
      .prepare(`SELECT profile_id AS id, ${column} AS doc FROM profiles WHERE workspace_id = ?1 AND canonical_id IS NULL AND profile_id > ?2 ORDER BY profile_id LIMIT ?3`)
      .bind(workspaceId, after, SCAN_PAGE)
      .all<{ id: string; doc: string }>();
    for (const row of results) {
      for (const found of resolvePath(JSON.parse(row.doc), path)) {
        const number = numericValue(found);
        if (number !== null) counts.set(number, (counts.get(number) ?? 0) + 1);
      }
    }
    if (results.length < SCAN_PAGE) break;
    after = results.at(-1)!.id;
  }
  if (counts.size === 0) return null;
  const histogram = [...counts];
  const summary: Summary = { count: 0, sum: 0, min: Infinity, max: -Infinity, median: median(histogram) };
  for (const [number, n] of histogram) {
    summary.count += n;
    summary.sum += number * n;
    summary.min = Math.min(summary.min, number);
    summary.max = Math.max(summary.max, number);
  }
  return summary;
}

/** The middle value of a histogram of (value, count); the mean of the two middle values for an even count. */
export function median(histogram: [number, number][]): number | undefined {
  const sorted = [...histogram].sort((a, b) => a[0] - b[0]);
  const count = sorted.reduce((sum, [, n]) => sum + n, 0);
  if (count === 0) return undefined;
  const at = (index: number) => {
    let seen = 0;
    for (const [value, n] of sorted) {
      seen += n;
      if (index < seen) return value;
    }
    return sorted.at(-1)![0];
  };
  return count % 2 === 1 ? at((count - 1) / 2) : (at(count / 2 - 1) + at(count / 2)) / 2;
}
