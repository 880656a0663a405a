// node --test bench/identity/metrics.test.mjs
import assert from "node:assert/strict";
import { test } from "node:test";
import { evaluate } from "./metrics.mjs";
import { mulberry32 } from "./population.mjs";

// Three people: A has 3 events, B has 2, C has 1. True pairs: 3 + 1 + 0 = 4.
const truth = new Map([["a1", "A"], ["a2", "A"], ["a3", "A"], ["b1", "B"], ["b2", "B"], ["c1", "C"]]);
const assign = (groups) => new Map(groups.flatMap((ids, k) => ids.map((id) => [id, `k${k}`])));
/** Ratios that are sums of fractions (B-cubed) are compared to the exact rational within 1e-12. */
const near = (actual, expected) => assert.ok(Math.abs(actual - expected) < 1e-12, `${actual} != ${expected}`);

test("perfect clustering", () => {
  const m = evaluate(truth, assign([["a1", "a2", "a3"], ["b1", "b2"], ["c1"]]));
  assert.deepEqual(m.pairwise, { precision: 1, recall: 1, f1: 1, correctPairs: 4, predictedPairs: 4, truePairs: 4 });
  near(m.bcubed.precision, 1);
  near(m.bcubed.recall, 1);
  near(m.bcubed.f1, 1);
  assert.equal(m.overMergedClusters, 0);
  assert.deepEqual(m.largestCluster, { people: 1, events: 3 });
  assert.equal(m.fragmentsPerPerson, 1);
  assert.equal(m.fragmentedPeople, 0);
  assert.equal(m.clusters, 3);
  assert.equal(m.people, 3);
  assert.equal(m.events, 6);
});

test("all in one cluster", () => {
  const m = evaluate(truth, assign([["a1", "a2", "a3", "b1", "b2", "c1"]]));
  // 15 predicted pairs, 4 of them true.
  assert.deepEqual(m.pairwise, { precision: 4 / 15, recall: 1, f1: 8 / 19, correctPairs: 4, predictedPairs: 15, truePairs: 4 });
  // B-cubed precision: (3·3/6 + 2·2/6 + 1·1/6) / 6 = 14/36.
  near(m.bcubed.precision, 7 / 18);
  near(m.bcubed.recall, 1);
  near(m.bcubed.f1, 14 / 25);
  assert.equal(m.overMergedClusters, 1);
  assert.deepEqual(m.largestCluster, { people: 3, events: 6 });
  assert.equal(m.fragmentsPerPerson, 1);
});

test("split clustering", () => {
  const m = evaluate(truth, assign([["a1", "a2"], ["a3"], ["b1"], ["b2"], ["c1"]]));
  assert.deepEqual(m.pairwise, { precision: 1, recall: 1 / 4, f1: 2 / 5, correctPairs: 1, predictedPairs: 1, truePairs: 4 });
  near(m.bcubed.precision, 1);
  // B-cubed recall: (2/3 + 2/3 + 1/3 + 1/2 + 1/2 + 1) / 6 = 11/18.
  near(m.bcubed.recall, 11 / 18);
  near(m.bcubed.f1, 22 / 29);
  assert.equal(m.overMergedClusters, 0);
  assert.deepEqual(m.largestCluster, { people: 1, events: 2 });
  assert.equal(m.fragmentsPerPerson, 5 / 3);
  assert.equal(m.fragmentedPeople, 2);
});

test("mixed: merge and split at once; missing predictions are singletons", () => {
  // {a1,a2,b1} {a3} and c1, b2 missing from the prediction.
  const m = evaluate(truth, new Map([["a1", 1], ["a2", 1], ["b1", 1], ["a3", 2], ["zz", 1]]));
  assert.equal(m.unassigned, 2);
  assert.equal(m.clusters, 4);
  assert.deepEqual(m.pairwise, { precision: 1 / 3, recall: 1 / 4, f1: 2 / 7, correctPairs: 1, predictedPairs: 3, truePairs: 4 });
  assert.equal(m.overMergedClusters, 1);
  assert.deepEqual(m.largestCluster, { people: 2, events: 3 });
});

test("matches brute-force pair enumeration on a random case", () => {
  const rnd = mulberry32(7);
  const t = new Map(), p = new Map();
  for (let i = 0; i < 300; i++) { t.set(`m${i}`, `P${Math.floor(rnd() * 40)}`); p.set(`m${i}`, Math.floor(rnd() * 25)); }
  const ids = [...t.keys()];
  let both = 0, inPred = 0, inTruth = 0, bcP = 0, bcR = 0;
  for (const x of ids) {
    let sameCluster = 0, samePerson = 0, sameBoth = 0;
    for (const y of ids) {
      const sp = t.get(x) === t.get(y), sc = p.get(x) === p.get(y);
      samePerson += sp; sameCluster += sc; sameBoth += sp && sc;
    }
    bcP += sameBoth / sameCluster; bcR += sameBoth / samePerson;
    both += sameBoth - 1; inPred += sameCluster - 1; inTruth += samePerson - 1;
  }
  const m = evaluate(t, p);
  assert.deepEqual([m.pairwise.correctPairs, m.pairwise.predictedPairs, m.pairwise.truePairs], [both / 2, inPred / 2, inTruth / 2]);
  near(m.bcubed.precision, bcP / ids.length);
  near(m.bcubed.recall, bcR / ids.length);
});
