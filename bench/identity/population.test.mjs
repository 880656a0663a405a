// node --test bench/identity/population.test.mjs
import assert from "node:assert/strict";
import { test } from "node:test";
import { generatePopulation } from "./population.mjs";
import { ratesFromEnv } from "./run.mjs";

test("a changed rate changes that hazard: no household tablets, from the same people", () => {
  const base = generatePopulation({ people: 300, seed: 5 });
  const without = generatePopulation({ people: 300, seed: 5, rates: { householdTablet: 0 } });
  assert.ok(base.stats.tablets > 0);
  assert.equal(without.stats.tablets, 0);
  assert.ok(without.stats.households > 0);
  const who = (pop) => pop.people.map((p) => `${p.id} ${p.customerId} ${p.firstName} ${p.lastName}`);
  assert.deepEqual(who(without), who(base));
});

test("BENCH_IDENTITY_RATES is read as rates, and a name the population lacks is refused by name", () => {
  assert.deepEqual(ratesFromEnv(undefined), {});
  assert.deepEqual(ratesFromEnv('{"householdTablet":0.1}'), { householdTablet: 0.1 });
  assert.throws(() => ratesFromEnv('{"tablets":0}'), /unknown rate tablets; the rates are anonymousOnly, /);
  assert.throws(() => ratesFromEnv("null"), /must be a JSON object of rates/);
  assert.throws(() => ratesFromEnv('{"householdTablet":"0"}'), /householdTablet must be a number/);
});
