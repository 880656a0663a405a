/**
 * The clustering the identity graph ended with, read back through the admin API: every live
 * profile (`GET /admin/v1/profiles`, page by page) and, from each profile's graph
 * (`GET /admin/v1/profiles/{id}/graph`), the events linked into it. Every event the graph
 * assigned leaves a link in its profile, and links move with merges, so this is the graph's own
 * event → profile assignment; an event whose identifiers were all refused is in no profile.
 * The open review queue (`GET /admin/v1/identity/reviews`) is read too: what a person would be
 * asked to look at.
 */
const PAGE = 200;
const CONCURRENCY = 8;

export async function clusteringThroughApi(baseUrl, adminToken, workspaceId = "default") {
  const headers = { authorization: `Bearer ${adminToken}` };
  const get = async (path) => {
    const response = await fetch(`${baseUrl}${path}`, { headers });
    if (!response.ok) throw new Error(`GET ${path}: ${response.status} ${await response.text()}`);
    return response.json();
  };
  const profileIds = [];
  for (let cursor = null; ; ) {
    const page = await get(`/admin/v1/profiles?workspaceId=${workspaceId}&limit=${PAGE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    profileIds.push(...page.data.map((p) => p.profileId));
    if (!page.next) break;
    cursor = page.next;
  }
  const predicted = new Map();
  let next = 0;
  const lane = async () => {
    while (next < profileIds.length) {
      const id = profileIds[next++];
      const graph = await get(`/admin/v1/profiles/${encodeURIComponent(id)}/graph?workspaceId=${workspaceId}`);
      for (const link of graph.links) predicted.set(link.messageId, graph.profileId);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  const reviews = [];
  for (let next = null; ; ) {
    const page = await get(`/admin/v1/identity/reviews?workspaceId=${workspaceId}&status=open&limit=${PAGE}${next ? `&next=${encodeURIComponent(next)}` : ""}`);
    reviews.push(...page.data.map((r) => ({ kind: r.kind, profiles: r.profiles })));
    if (!page.next) break;
    next = page.next;
  }
  return { profiles: profileIds.length, predicted, reviews };
}
