import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { dayOf, profilesPrefix } from "../../workers/export/layout";
import { exportProfilesSnapshot } from "../../workers/export/profiles";
import { getExport } from "../../workers/export/registry";
import { admin, track } from "../helpers";
import { listKeys, readAll, readParquet } from "./helpers";
import type { ProfilesTableRow } from "../../workers/db/rows";

const RUN = `wp-${Date.now().toString(36)}`;
const minute = (n: number) => new Date(Date.now() - 3_600_000 + n * 60_000).toISOString();

async function sync(path: string, body: Record<string, unknown>) {
  const response = await track(`${path}?sync=true`, body);
  expect(response.status).toBe(200);
  return ((await response.json()) as { profile: { id: string } | null }).profile!.id;
}

type D1Profile = ProfilesTableRow;

const d1Profile = (workspaceId: string, profileId: string) =>
  env.DB.prepare("SELECT * FROM profiles WHERE workspace_id = ?1 AND profile_id = ?2").bind(workspaceId, profileId).first<D1Profile>();

const liveCount = async (workspaceId: string) =>
  (await env.DB.prepare("SELECT count(*) AS n FROM profiles WHERE workspace_id = ?1 AND canonical_id IS NULL").bind(workspaceId).first<{ n: number }>())!.n;

describe("profiles snapshot", () => {
  it("writes today's live profiles with typed columns, leaving merged-away profiles out", async () => {
    const userId = `${RUN}-ada`;
    const ada = await sync("/v1/identify", {
      userId,
      timestamp: minute(1),
      traits: { email: `${userId}@example.com`, firstName: "Ada", lastName: "Lovelace", phone: "+44 20 7946 0958", plan: "pro", seats: 3, ltv: 12.5, beta: true },
    });
    await sync("/v1/track", { userId, timestamp: minute(2), event: "Order Completed", properties: { revenue: 10 } });
    // Two profiles, then a message that links them: one is absorbed (canonical_id set) and must not be exported.
    const anon = `${RUN}-anon`;
    const grace = `${RUN}-grace`;
    const survivor = await sync("/v1/identify", { anonymousId: anon, timestamp: minute(3), traits: { favourite: "tea" } });
    const absorbed = await sync("/v1/identify", { userId: grace, timestamp: minute(4), traits: { plan: "free" } });
    await sync("/v1/identify", { userId: grace, anonymousId: anon, timestamp: minute(5), traits: { plan: "team" } });
    expect((await d1Profile("default", absorbed))!.canonical_id).toBe(survivor);

    const response = await admin("/admin/v1/exports", { method: "POST", json: { workspaceId: "default", kind: "profiles" } });
    expect(response.status).toBe(200);
    const today = dayOf(Date.now());
    const body = (await response.json()) as { status: string; period: string; rows: number; files: { key: string; rows: number; bytes: number }[] };
    expect(body).toMatchObject({ status: "done", period: today, rows: await liveCount("default") });
    expect(body.files.map((f) => f.key)).toEqual([`warehouse/profiles/workspace_id=default/date=${today}/part-00000.parquet`]);

    const file = await readParquet(body.files[0]!.key);
    expect(file.bytes).toBe(body.files[0]!.bytes);
    expect(Object.keys(file.columns)).toEqual([
      "profile_id", "user_id", "email", "phone", "first_name", "last_name",
      "created_at", "first_seen_at", "last_seen_at", "updated_at", "traits", "computed_traits", "segments",
    ]);
    for (const name of ["created_at", "first_seen_at", "last_seen_at", "updated_at"]) {
      expect(file.columns[name]).toMatchObject({ type: "INT64", converted_type: "TIMESTAMP_MILLIS", logical_type: { type: "TIMESTAMP", isAdjustedToUTC: true, unit: "MILLIS" } });
    }
    for (const name of ["traits", "computed_traits", "segments"]) expect(file.columns[name]).toMatchObject({ type: "BYTE_ARRAY", converted_type: "JSON" });

    const ids = file.rows.map((r) => r.profile_id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toContain(survivor);
    expect(ids).not.toContain(absorbed);

    const row = file.rows.find((r) => r.profile_id === ada)!;
    const stored = (await d1Profile("default", ada))!;
    expect(row).toMatchObject({
      user_id: userId,
      email: stored.email,
      phone: stored.phone,
      first_name: "Ada",
      last_name: "Lovelace",
      created_at: new Date(stored.created_at),
      updated_at: new Date(stored.updated_at),
      first_seen_at: new Date(stored.first_seen_at!),
      last_seen_at: new Date(stored.last_seen_at!),
    });
    expect(row.created_at).toBeInstanceOf(Date);
    expect(row.traits).toEqual(JSON.parse(stored.traits));
    const traits = row.traits as Record<string, unknown>;
    expect(traits).toMatchObject({ plan: "pro", seats: 3, ltv: 12.5, beta: true });
    expect(typeof traits.seats).toBe("number");
    expect(typeof traits.ltv).toBe("number");
    expect(row.computed_traits).toEqual(JSON.parse(stored.computed_traits));
    expect(row.segments).toEqual(JSON.parse(stored.segments));
    expect(Array.isArray(row.segments)).toBe(true);
    expect((file.rows.find((r) => r.profile_id === survivor)!.traits as Record<string, unknown>).plan).toBe("team");

    // Again: the same key, the same rows.
    const again = (await (await admin("/admin/v1/exports", { method: "POST", json: { workspaceId: "default", kind: "profiles", date: today } })).json()) as typeof body;
    expect(again.files.map((f) => f.key)).toEqual(body.files.map((f) => f.key));
    expect((await readParquet(again.files[0]!.key)).rows).toEqual(file.rows);
  });
});

describe("large snapshots", () => {
  const WS = "ws-warehouse-bulk";
  const DAY = "2026-01-15";
  const TOTAL = 1_050;

  it("reads D1 in keyset pages and splits files at the row limit", async () => {
    // 1,050 live profiles and 20 absorbed ones, inserted in one statement each (json_each keeps the bound parameters at three).
    const ids = Array.from({ length: TOTAL }, (_, i) => `p-${String(i).padStart(5, "0")}`);
    const insert = `INSERT INTO profiles (workspace_id, profile_id, canonical_id, user_id, traits, created_at, updated_at, version)
      SELECT ?1, value, ?3, 'u-' || value, json_object('n', key, 'score', key * 1.5), 1700000000000 + key, 1700000000000 + key, 1 FROM json_each(?2)`;
    await env.DB.prepare(insert).bind(WS, JSON.stringify(ids), null).run();
    await env.DB.prepare(insert).bind(WS, JSON.stringify(Array.from({ length: 20 }, (_, i) => `q-${i}`)), "p-00000").run();

    const whole = await exportProfilesSnapshot(env, WS, DAY);
    expect(whole).toMatchObject({ status: "done", rowCount: TOTAL });
    expect(whole.files).toHaveLength(1);
    const rows = await readAll(profilesPrefix(WS, DAY));
    expect(rows.map((r) => r.profile_id)).toEqual(ids);
    expect(rows[7]).toMatchObject({ user_id: "u-p-00007", traits: { n: 7, score: 10.5 }, computed_traits: {}, segments: [], created_at: new Date(1700000000007), first_seen_at: null });

    const split = await exportProfilesSnapshot(env, WS, DAY, { rowsPerFile: 400, restart: true });
    expect(split.files.map((f) => f.rows)).toEqual([400, 400, 250]);
    expect(await listKeys(profilesPrefix(WS, DAY))).toEqual(split.files.map((f) => f.key));
    expect((await readAll(profilesPrefix(WS, DAY))).map((r) => r.profile_id)).toEqual(ids);
  });

  it("resumes a snapshot across runs when one run may write only some of its files, then removes parts left over", async () => {
    await exportProfilesSnapshot(env, WS, DAY, { rowsPerFile: 200, restart: true });
    expect(await listKeys(profilesPrefix(WS, DAY))).toHaveLength(6);

    let state = await exportProfilesSnapshot(env, WS, DAY, { rowsPerFile: 500, maxFiles: 1, restart: true });
    expect(state).toMatchObject({ status: "running", rowCount: 500, cursor: "p-00499" });
    expect(await getExport(env.DB, WS, "profiles", DAY)).toMatchObject({ status: "running", cursor: "p-00499" });
    // A done or running snapshot is not started over unless asked.
    state = await exportProfilesSnapshot(env, WS, DAY, { rowsPerFile: 500, maxFiles: 1 });
    expect(state).toMatchObject({ status: "running", rowCount: 1_000 });
    state = await exportProfilesSnapshot(env, WS, DAY, { rowsPerFile: 500, maxFiles: 1 });
    expect(state).toMatchObject({ status: "done", rowCount: TOTAL, cursor: null });
    expect(state.files.map((f) => f.rows)).toEqual([500, 500, 50]);
    // The 200-row snapshot's parts 3 to 5 are gone.
    expect(await listKeys(profilesPrefix(WS, DAY))).toEqual(state.files.map((f) => f.key));
    const rows = await readAll(profilesPrefix(WS, DAY));
    expect(rows).toHaveLength(TOTAL);
    expect(new Set(rows.map((r) => r.profile_id)).size).toBe(TOTAL);
    expect(await exportProfilesSnapshot(env, WS, DAY, { rowsPerFile: 1 })).toEqual(await getExport(env.DB, WS, "profiles", DAY));
  });
});
