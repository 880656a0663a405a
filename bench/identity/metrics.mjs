/**
 * Clustering quality of an identity resolution against ground truth.
 *
 * `evaluate(truth, predicted)`:
 * - `truth: Map<messageId, personId>`, `predicted: Map<messageId, clusterId>` (any comparable ids).
 * - Scored over the events of `truth`. An event missing from `predicted` counts as a cluster of its
 *   own (and is counted in `unassigned`); predicted events absent from `truth` are ignored.
 * - Everything is computed from the contingency table n(person, cluster), in O(events): no pair
 *   enumeration. Pair counts stay exact in doubles up to ~1.3e8 events.
 *
 * Returns
 * - `pairwise`: over unordered pairs of events. precision = pairs together in both / pairs together
 *   in the prediction, recall = pairs together in both / pairs together in truth, f1 =
 *   2·correct / (predicted + true). With no predicted (true) pairs, precision (recall) is 1.
 * - `bcubed`: per event, precision = |its cluster ∩ its person| / |its cluster| and recall =
 *   |its cluster ∩ its person| / |its person|, averaged over events; f1 their harmonic mean.
 * - `overMergedClusters`: predicted clusters holding events of more than one true person.
 * - `largestCluster`: `{ people, events }`, the most distinct true people in one predicted cluster
 *   and the most events in one predicted cluster (the two maxima may come from different clusters).
 * - `fragmentsPerPerson`: mean number of predicted clusters a true person's events fall into (1 is
 *   ideal), and `fragmentedPeople`: how many true people are split into more than one cluster.
 */
export function evaluate(truth, predicted) {
  const pairs2 = (n) => (n * (n - 1)) / 2;
  /** cluster key -> Map(person -> count) */
  const table = new Map();
  const personSize = new Map();
  let unassigned = 0;
  for (const [messageId, person] of truth) {
    let cluster;
    if (predicted.has(messageId)) cluster = predicted.get(messageId);
    else { unassigned++; cluster = { unassigned: messageId }; }
    let row = table.get(cluster);
    if (!row) table.set(cluster, (row = new Map()));
    row.set(person, (row.get(person) ?? 0) + 1);
    personSize.set(person, (personSize.get(person) ?? 0) + 1);
  }

  const events = truth.size;
  let correctPairs = 0, predictedPairs = 0, bcP = 0, bcR = 0;
  let overMergedClusters = 0, largestPeople = 0, largestEvents = 0;
  const clustersOfPerson = new Map();
  for (const row of table.values()) {
    let size = 0;
    for (const n of row.values()) size += n;
    predictedPairs += pairs2(size);
    for (const [person, n] of row) {
      correctPairs += pairs2(n);
      bcP += (n * n) / size;
      bcR += (n * n) / personSize.get(person);
      clustersOfPerson.set(person, (clustersOfPerson.get(person) ?? 0) + 1);
    }
    if (row.size > 1) overMergedClusters++;
    if (row.size > largestPeople) largestPeople = row.size;
    if (size > largestEvents) largestEvents = size;
  }
  let truePairs = 0;
  for (const n of personSize.values()) truePairs += pairs2(n);
  let fragments = 0, fragmentedPeople = 0;
  for (const k of clustersOfPerson.values()) { fragments += k; if (k > 1) fragmentedPeople++; }

  const precision = predictedPairs === 0 ? 1 : correctPairs / predictedPairs;
  const recall = truePairs === 0 ? 1 : correctPairs / truePairs;
  const bcubedPrecision = events === 0 ? 1 : bcP / events;
  const bcubedRecall = events === 0 ? 1 : bcR / events;
  const harmonic = (p, r) => (p + r === 0 ? 0 : (2 * p * r) / (p + r));
  return {
    events,
    people: personSize.size,
    clusters: table.size,
    unassigned,
    pairwise: {
      precision,
      recall,
      f1: predictedPairs + truePairs === 0 ? 1 : (2 * correctPairs) / (predictedPairs + truePairs),
      correctPairs,
      predictedPairs,
      truePairs,
    },
    bcubed: { precision: bcubedPrecision, recall: bcubedRecall, f1: harmonic(bcubedPrecision, bcubedRecall) },
    overMergedClusters,
    largestCluster: { people: largestPeople, events: largestEvents },
    fragmentsPerPerson: personSize.size === 0 ? 0 : fragments / personSize.size,
    fragmentedPeople,
  };
}

/** The figures of `evaluate` as rows for console.table, one column per named result. */
export function metricsTable(results) {
  const rows = {};
  /** `digits` for ratios; counts are printed whole. */
  const put = (label, pickValue, digits) => {
    rows[label] = {};
    for (const [name, r] of Object.entries(results)) {
      const v = pickValue(r);
      rows[label][name] = digits === undefined ? v.toLocaleString("en-US") : v.toFixed(digits);
    }
  };
  put("events", (r) => r.events);
  put("true people", (r) => r.people);
  put("predicted clusters", (r) => r.clusters);
  put("pairwise precision", (r) => r.pairwise.precision, 4);
  put("pairwise recall", (r) => r.pairwise.recall, 4);
  put("pairwise F1", (r) => r.pairwise.f1, 4);
  put("B-cubed precision", (r) => r.bcubed.precision, 4);
  put("B-cubed recall", (r) => r.bcubed.recall, 4);
  put("B-cubed F1", (r) => r.bcubed.f1, 4);
  put("over-merged clusters", (r) => r.overMergedClusters);
  put("largest cluster (people)", (r) => r.largestCluster.people);
  put("largest cluster (events)", (r) => r.largestCluster.events);
  put("fragments per person", (r) => r.fragmentsPerPerson, 3);
  put("people split in >1 cluster", (r) => r.fragmentedPeople);
  return rows;
}
