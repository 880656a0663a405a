/**
 * The "owner oracle": the naive transitive closure, except that an event links through an
 * identifier only when ground truth says the event's person is that identifier's dominant owner
 * (the person with most events carrying it): a shared tablet's anonymousId links its main user's
 * events, not the other members'. It never over-merges (precision 1 by construction), so its recall
 * approximates the ceiling of deterministic resolution with perfect guards on a population. Events
 * with no identifier their person owns (other members' anonymous visits on a shared tablet or a
 * kiosk, a placeholder-only event) are "unattributable" and left as singletons.
 *
 * It is not a strict upper bound: a resolver that attaches an unattributable event to the device's
 * latest user is sometimes right by luck, which the oracle never is.
 */
import { identifiersOf, naiveBaseline } from "./naive-baseline.mjs";

/**
 * `ownerOracle(events, truth)` → `{ predicted, owns(key, event), unattributable: Set<messageId>,
 * identifiers: number of distinct keys, sharedKeys: keys carried by more than one person }`.
 */
export function ownerOracle(events, truth) {
  const counts = new Map(); // key -> Map(personId -> events)
  for (const e of events) {
    const who = truth.get(e.messageId);
    for (const key of identifiersOf(e)) {
      let c = counts.get(key);
      if (!c) counts.set(key, (c = new Map()));
      c.set(who, (c.get(who) ?? 0) + 1);
    }
  }
  const owner = new Map();
  let sharedKeys = 0;
  for (const [key, c] of counts) {
    let best = null, most = 0;
    for (const [who, n] of c) if (n > most) { best = who; most = n; }
    owner.set(key, best);
    if (c.size > 1) sharedKeys++;
  }
  const owns = (key, e) => owner.get(key) === truth.get(e.messageId);
  const predicted = naiveBaseline(events, { accept: owns });
  const unattributable = new Set();
  for (const e of events) if (!identifiersOf(e).some((key) => owns(key, e))) unattributable.add(e.messageId);
  return { predicted, owns, unattributable, identifiers: owner.size, sharedKeys };
}
