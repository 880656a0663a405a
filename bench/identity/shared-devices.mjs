/**
 * What attributing a shared device's anonymous events costs, and what not attributing them would
 * buy: the resolver's clustering (resolver.mjs) scored as it is and with two other treatments of
 * anonymous events applied to it afterwards.
 *
 *   node bench/identity/shared-devices.mjs [people] [seed]   (defaults: 10,000; 42)
 *
 * - "latest user" is the resolver as it runs: after a logout without reset, a device's anonymous
 *   events go to its most recent user (docs/identity.md, "Logout").
 * - "session only" is a rule a resolver could follow from what it sees: once a device has been seen
 *   with two or more user ids, its anonymous events go to the latest user only within 30 minutes of
 *   that user's last event on it, and to no one after that.
 * - "no stitching on tablets" uses ground truth no resolver has: every anonymous event on a
 *   household tablet is left with no one. It bounds what any treatment of shared devices can give.
 *
 * An event left with no one counts as a cluster of its own. An anonymous event carries only device
 * identifiers the resolver has already linked, so leaving it out changes no other decision and the
 * clustering need not be run again.
 */
import { fileURLToPath } from "node:url";
import { evaluate } from "./metrics.mjs";
import { generatePopulation, PLACEHOLDERS } from "./population.mjs";
import { loadResolver, runResolver } from "./resolver.mjs";
import { IDENTITY_TARGETS } from "./run.mjs";

const SESSION_MS = 30 * 60_000;

/** The resolver's clustering with each treatment; `{ name: Map<messageId, clusterId> }`. */
export function sharedDeviceTreatments(events, predicted) {
  const kiosks = new Set(events.filter((e) => e.type === "page" && e.name === "Welcome").map((e) => e.anonymousId));
  const isTablet = (e) => (e.context?.userAgent ?? "").includes("iPad") && !kiosks.has(e.anonymousId);
  const sessionOnly = new Map(predicted);
  const noTablets = new Map(predicted);
  const users = new Map(); // anonymousId -> user ids seen with it
  const lastIdentified = new Map(); // anonymousId -> time of its latest event with a user id
  for (const e of events) {
    const device = e.anonymousId;
    if (!device) continue;
    const at = Date.parse(e.timestamp);
    if (e.userId && !PLACEHOLDERS.includes(e.userId)) {
      if (!users.has(device)) users.set(device, new Set());
      users.get(device).add(e.userId);
      lastIdentified.set(device, at);
      continue;
    }
    if ((users.get(device)?.size ?? 0) >= 2 && at - lastIdentified.get(device) > SESSION_MS) sessionOnly.delete(e.messageId);
    if (isTablet(e)) noTablets.delete(e.messageId);
  }
  return { "latest user (as run)": predicted, "session only": sessionOnly, "no stitching on tablets (ground truth)": noTablets };
}

async function main() {
  const people = Number(process.argv[2] ?? 10_000);
  const seed = Number(process.argv[3] ?? 42);
  const { events, truth } = generatePopulation({ people, seed });
  const run = runResolver(await loadResolver(), events);
  const rows = {};
  for (const [name, predicted] of Object.entries(sharedDeviceTreatments(events, run.predicted))) {
    const m = evaluate(truth, predicted);
    rows[name] = {
      "pairwise precision": m.pairwise.precision.toFixed(4),
      "pairwise recall": m.pairwise.recall.toFixed(4),
      "B-cubed precision": m.bcubed.precision.toFixed(4),
      "B-cubed recall": m.bcubed.recall.toFixed(4),
      "events with no one": m.unassigned.toLocaleString("en-US"),
    };
  }
  console.log(`Shared devices: ${people.toLocaleString("en-US")} people (seed ${seed}), ${events.length.toLocaleString("en-US")} events`);
  console.table(rows);
  console.log(`targets: pairwise precision >= ${IDENTITY_TARGETS.precision}, recall >= ${IDENTITY_TARGETS.recall}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
