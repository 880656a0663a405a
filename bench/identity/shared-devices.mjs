/**
 * What attributing a shared device's anonymous events costs, and what not attributing them would
 * buy: the resolver's clustering (resolver.mjs) scored as it is and with other treatments of
 * anonymous events applied to it afterwards, beside the owner oracle (oracle.mjs).
 *
 *   node bench/identity/shared-devices.mjs [people] [seed]   (defaults: 10,000; 42)
 *
 * - "latest user" is the resolver as it runs: after a logout without reset, a device's anonymous
 *   events go to its most recent user (docs/identity.md, "Logout").
 * - "session only" is a rule a resolver could follow from what it sees: once a device has been seen
 *   with two or more user ids, its anonymous events go to the latest user only within 30 minutes of
 *   that user's last event on it, and to no one after that.
 * - "main user" is another such rule: on a device seen with two or more user ids, anonymous events
 *   the resolver attributed go to the user id with the most events on it so far instead.
 * - "no stitching on tablets" uses ground truth no resolver has: every anonymous event on a
 *   household tablet is left with no one. It bounds what any treatment of shared devices can give.
 * - The owner oracle uses ground truth too: an event links through an identifier only when its
 *   person is the identifier's main owner. Precision 1 by construction; its recall approximates
 *   what deterministic resolution with perfect guards can reach (oracle.mjs says why it is not a
 *   strict bound).
 *
 * The last line says whether any row meets both targets. An event left with no one counts as a
 * cluster of its own. An anonymous event carries only device identifiers the resolver has already
 * linked, so leaving it out or moving it changes no other decision and the clustering need not be
 * run again.
 */
import { fileURLToPath } from "node:url";
import { evaluate } from "./metrics.mjs";
import { ownerOracle } from "./oracle.mjs";
import { generatePopulation, PLACEHOLDERS } from "./population.mjs";
import { loadResolver, runResolver } from "./resolver.mjs";
import { IDENTITY_TARGETS } from "./run.mjs";

const SESSION_MS = 30 * 60_000;

/** The resolver's clustering with each treatment; `{ name: Map<messageId, clusterId> }`. */
export function sharedDeviceTreatments(events, predicted) {
  const kiosks = new Set(events.filter((e) => e.type === "page" && e.name === "Welcome").map((e) => e.anonymousId));
  const isTablet = (e) => (e.context?.userAgent ?? "").includes("iPad") && !kiosks.has(e.anonymousId);
  const isUser = (userId) => userId && !PLACEHOLDERS.includes(userId);
  const clusterOfUser = new Map();
  for (const e of events) if (isUser(e.userId) && predicted.has(e.messageId)) clusterOfUser.set(e.userId, predicted.get(e.messageId));
  const sessionOnly = new Map(predicted);
  const mainUser = new Map(predicted);
  const noTablets = new Map(predicted);
  const users = new Map(); // anonymousId -> Map(user id -> events with it)
  const lastIdentified = new Map(); // anonymousId -> time of its latest event with a user id
  for (const e of events) {
    const device = e.anonymousId;
    if (!device) continue;
    const at = Date.parse(e.timestamp);
    if (isUser(e.userId)) {
      if (!users.has(device)) users.set(device, new Map());
      users.get(device).set(e.userId, (users.get(device).get(e.userId) ?? 0) + 1);
      lastIdentified.set(device, at);
      continue;
    }
    const seen = users.get(device);
    if ((seen?.size ?? 0) >= 2) {
      if (at - lastIdentified.get(device) > SESSION_MS) sessionOnly.delete(e.messageId);
      // Only an event the resolver gave to someone moves: a placeholder id is no device, and an event left with no one stays so.
      const [main] = [...seen].reduce((best, entry) => (entry[1] > best[1] ? entry : best));
      if (predicted.has(e.messageId) && !PLACEHOLDERS.includes(device) && clusterOfUser.has(main)) mainUser.set(e.messageId, clusterOfUser.get(main));
    }
    if (isTablet(e)) noTablets.delete(e.messageId);
  }
  return {
    "latest user (as run)": predicted,
    "session only": sessionOnly,
    "main user": mainUser,
    "no stitching on tablets (ground truth)": noTablets,
  };
}

async function main() {
  const people = Number(process.argv[2] ?? 10_000);
  const seed = Number(process.argv[3] ?? 42);
  const { events, truth } = generatePopulation({ people, seed });
  const run = runResolver(await loadResolver(), events);
  const rows = {};
  const met = [];
  const oracle = ownerOracle(events, truth);
  const clusterings = { ...sharedDeviceTreatments(events, run.predicted), "owner oracle (ground truth)": oracle.predicted };
  for (const [name, predicted] of Object.entries(clusterings)) {
    const m = evaluate(truth, predicted);
    if (m.pairwise.precision >= IDENTITY_TARGETS.precision && m.pairwise.recall >= IDENTITY_TARGETS.recall) met.push(name);
    rows[name] = {
      "pairwise precision": m.pairwise.precision.toFixed(4),
      "pairwise recall": m.pairwise.recall.toFixed(4),
      "B-cubed precision": m.bcubed.precision.toFixed(4),
      "B-cubed recall": m.bcubed.recall.toFixed(4),
      // The oracle leaves each event with no identifier its person owns in a cluster of its own.
      "events with no one": (predicted === oracle.predicted ? oracle.unattributable.size : m.unassigned).toLocaleString("en-US"),
    };
  }
  console.log(`Shared devices: ${people.toLocaleString("en-US")} people (seed ${seed}), ${events.length.toLocaleString("en-US")} events`);
  console.table(rows);
  console.log(`targets: pairwise precision >= ${IDENTITY_TARGETS.precision}, recall >= ${IDENTITY_TARGETS.recall}: met by ${met.length ? met.join(", ") : "no row"}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
