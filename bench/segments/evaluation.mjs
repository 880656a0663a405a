/**
 * Evaluation cost per event with 100 segments and 50 computed traits (workload.mjs), for people
 * with 200 events of history over 90 days each, on one thread:
 *
 * - incremental, as the identity object runs it: `AudienceEngine.onEvent` from
 *   durable-objects/audience-engine.ts itself, over SQLite (`node:sqlite`, in memory). Per event it
 *   reads and JSON-parses the person's aggregate states, applies the event to the specs
 *   `Catalog.specsTouchedBy` returns and writes each back as JSON, evaluates all 150 definitions from
 *   the states (`computeTraitFromState`, then `evaluateAggregates` in dependency order), compares
 *   with the stored values and writes changes and the next wakeup. Twice, over two fillings of the
 *   states: as live traffic leaves them (every history event through `onEvent` at its own time,
 *   which is also timed, as "history replay"), and as `rebuild` leaves them after a backfill or
 *   merge (every spec rebuilt from the history and pruned at NOW).
 * - incremental, evaluation only: the same steps on states kept as objects in memory (no SQL, no
 *   JSON), to show what storage costs on top.
 * - the naive baseline, in the same run: on each event, the person's full history read from SQLite
 *   as the object's `ProfileStore.personEvents` reads it (event records as JSON, `personEventOf`),
 *   then all 150 definitions evaluated from it (`computeTrait`, then `evaluate` in the same order).
 *   The read and the evaluation are timed apart, so the baseline's evaluation alone can be set
 *   against the incremental evaluation alone.
 *
 * The measured events are each person's `newEvents` after the history, in time order across
 * people, `now` the event's time. After every event, the baseline's answers are compared with what
 * each engine stored (outside the timed part): they must agree, definition by definition; each
 * disagreement is returned with an example.
 */
import { percentile } from "../lib/stats.mjs";
import { loadSegments } from "./engine.mjs";
import { audiences, NOW, population, statisticsFor } from "./workload.mjs";

const round = (x, digits = 1) => (x === null ? null : Math.round(x * 10 ** digits) / 10 ** digits);


/** µs per event (mean and exact percentiles) and events/s, from per-event times in ms. */
function costOf(times) {
  const sorted = [...times].sort((a, b) => a - b);
  const totalMs = times.reduce((sum, t) => sum + t, 0);
  return {
    events: times.length,
    meanUs: round((totalMs / times.length) * 1000),
    p50Us: round(percentile(sorted, 50) * 1000),
    p95Us: round(percentile(sorted, 95) * 1000),
    p99Us: round(percentile(sorted, 99) * 1000),
    maxUs: round(sorted.at(-1) * 1000),
    eventsPerSecond: Math.round(times.length / (totalMs / 1000)),
  };
}

/**
 * @param {object} [options]
 * @param {number} [options.people=40]
 * @param {number} [options.newEvents=15] measured events per person
 * @param {number} [options.naiveEvents] how many of the measured events the baseline runs (default all)
 * @param {number} [options.seed=42]
 */
export async function benchEvaluation({ people = 40, newEvents = 15, naiveEvents, seed = 42 } = {}) {
  const m = await loadSegments();
  const list = audiences(m.audienceSchema);
  const catalog = new m.Catalog(list);
  const statistics = statisticsFor([...new Set(list.flatMap((a) => (a.kind === "segment" ? [...m.requiredStatistics(a.definition).keys()] : [])))]);
  const population_ = population(people, newEvents, seed);
  const traitsOf = new Map(population_.map((p) => [p.id, p.traits]));
  const measured = population_
    .flatMap((p) => p.newEvents.map((event) => ({ person: p, event })))
    .sort((a, b) => a.event.timestamp - b.event.timestamp || (a.person.id < b.person.id ? -1 : 1));
  const naiveCount = Math.min(measured.length, naiveEvents ?? measured.length);

  const workload = {
    segments: list.filter((a) => a.kind === "segment").length,
    computedTraits: list.filter((a) => a.kind === "computed_trait").length,
    aggregateSpecs: catalog.specs.size,
    statistics: Object.keys(statistics).length,
    people,
    historyEventsPerPerson: population_[0].history.length,
    eventNames: new Set(population_.flatMap((p) => p.history.map((e) => e.event ?? e.name))).size,
    measuredEvents: measured.length,
    specsTouchedPerEvent: round(measured.reduce((sum, { event }) => sum + catalog.specsTouchedBy(event).length, 0) / measured.length),
  };

  // ---- incremental, through the object's engine and SQLite, in two states of storage
  const live = fillLive(m, list, statistics, population_, traitsOf);
  const rebuilt = fillRebuilt(m, list, statistics, population_, traitsOf);
  const runs = {};
  for (const [name, { engine }] of Object.entries({ live, rebuilt })) {
    const times = [];
    const answers = [];
    for (const { person, event } of measured) {
      const t0 = performance.now();
      engine.onEvent(person.id, event, event.timestamp);
      times.push(performance.now() - t0);
      if (answers.length < naiveCount) answers.push(answerOf(engine.valuesOf(person.id)));
    }
    runs[name] = { times, answers };
  }
  const stored = Object.fromEntries(Object.entries({ live, rebuilt }).map(([name, { sql }]) => [name, storedSize(sql, people)]));
  const changesEmitted = live.emitted();
  live.sql.close();
  rebuilt.sql.close();

  // ---- incremental, states as objects in memory: the evaluation work alone
  const states = new Map(population_.map((p) => [p.id, {}]));
  const applyAll = (id, event) => {
    const own = states.get(id);
    // As onEvent does: apply, then prune what can no longer count at the event's time.
    for (const [key, spec] of catalog.specsTouchedBy(event)) own[key] = m.pruneState(spec, m.applyEvent(spec, own[key] ?? m.emptyState(spec), event), event.timestamp);
  };
  for (const p of population_) for (const event of p.history) applyAll(p.id, event);
  const memoryTimes = [];
  let memoryMembers = 0;
  for (const { person, event } of measured) {
    const t0 = performance.now();
    applyAll(person.id, event);
    const aggregates = states.get(person.id);
    const computedTraits = {};
    const segments = new Set();
    for (const audience of catalog.ordered) {
      if (audience.kind === "computed_trait") {
        const spec = m.computedTraitSpec(audience.definition);
        computedTraits[audience.key] = m.computeTraitFromState(audience.definition, aggregates[m.specKey(spec)], event.timestamp).value ?? null;
      } else if (m.evaluateAggregates(audience.definition, { traits: person.traits, computedTraits, segments, statistics, aggregates }, event.timestamp).member) segments.add(audience.id);
    }
    memoryTimes.push(performance.now() - t0);
    memoryMembers += segments.size;
  }

  // ---- the naive baseline: everything from the full history, on every event
  const eventStore = m.sqlStorage();
  eventStore.exec("CREATE TABLE profile_events (message_id TEXT PRIMARY KEY, profile_id TEXT, at INTEGER NOT NULL, record TEXT)");
  eventStore.exec("CREATE INDEX profile_events_profile ON profile_events (profile_id, at)");
  const storeEvent = (id, event) => eventStore.exec("INSERT INTO profile_events (message_id, profile_id, at, record) VALUES (?, ?, ?, ?)", event.messageId, id, event.timestamp, JSON.stringify(eventRecordOf(id, event)));
  for (const p of population_) for (const event of p.history) storeEvent(p.id, event);
  const readTimes = [];
  const naiveTimes = [];
  const disagreements = { live: new Map(), rebuilt: new Map() };
  let naiveMembers = 0;
  for (const [i, { person, event }] of measured.slice(0, naiveCount).entries()) {
    storeEvent(person.id, event); // the object records every event whatever it evaluates
    const now = event.timestamp;
    const tRead = performance.now();
    const events = eventStore
      .exec("SELECT record FROM profile_events WHERE profile_id = ? AND record IS NOT NULL ORDER BY at, message_id", person.id)
      .toArray()
      .map((row) => m.personEventOf(JSON.parse(row.record)));
    const t0 = performance.now();
    readTimes.push(t0 - tRead);
    const computedTraits = {};
    const segments = new Set();
    for (const audience of catalog.ordered) {
      if (audience.kind === "computed_trait") computedTraits[audience.key] = m.computeTrait(audience.definition, events, now).value ?? null;
      else if (m.evaluate(audience.definition, { traits: person.traits, computedTraits, segments, statistics, events }, now).member) segments.add(audience.id);
    }
    naiveTimes.push(performance.now() - t0);
    naiveMembers += segments.size;
    // Agreement, definition by definition, with what each engine stored after the same event.
    for (const name of ["live", "rebuilt"]) {
      const answer = runs[name].answers[i];
      for (const audience of catalog.ordered) {
        const expected = audience.kind === "segment" ? segments.has(audience.id) : m.canonical(computedTraits[audience.key] ?? null);
        const got = audience.kind === "segment" ? answer.segments.has(audience.id) : m.canonical(answer.computedTraits[audience.key] ?? null);
        if (expected === got) continue;
        const entry = disagreements[name].get(audience.id) ?? { id: audience.id, name: audience.name, definition: audience.definition, events: 0, example: { messageId: event.messageId, naive: expected, incremental: got } };
        entry.events++;
        disagreements[name].set(audience.id, entry);
      }
    }
  }

  eventStore.close();
  const incremental = costOf(runs.live.times);
  const naive = costOf(naiveTimes);
  return {
    workload,
    stored,
    historyReplay: costOf(live.times),
    incremental,
    incrementalRebuilt: costOf(runs.rebuilt.times),
    incrementalInMemory: costOf(memoryTimes),
    naive,
    naiveWithRead: costOf(naiveTimes.map((t, i) => t + readTimes[i])),
    speedup: {
      /** The engine's whole event path against the baseline's evaluation alone (history already in memory). */
      engineVsNaiveEvaluation: round(naive.meanUs / incremental.meanUs, 1),
      /** The engine's whole event path against the baseline with its history read. */
      engineVsNaiveWithRead: round((naive.meanUs + costOf(readTimes).meanUs) / incremental.meanUs, 1),
      /** Evaluation alone on both sides. */
      evaluationOnly: round(naive.meanUs / costOf(memoryTimes).meanUs, 1),
    },
    membershipsPerEvent: { incrementalInMemory: round(memoryMembers / memoryTimes.length), naive: round(naiveMembers / naiveTimes.length) },
    changesEmitted,
    agreement: {
      comparedEvents: naiveCount,
      definitions: list.length,
      disagreeing: { live: [...disagreements.live.values()], rebuilt: [...disagreements.rebuilt.values()] },
    },
  };
}

/** An event as the object stores it (workers/profiles/event-record.ts), with a browser-like context. */
function eventRecordOf(userId, event) {
  const at = new Date(event.timestamp).toISOString();
  return {
    type: event.type,
    message_id: event.messageId,
    source_id: "src_web",
    timestamp: at,
    received_at: at,
    ...(event.event ? { event: event.event } : {}),
    ...(event.name ? { name: event.name } : {}),
    properties: event.properties,
    user_id: userId,
    anonymous_id: `anon-${userId}`,
    context: {
      library: { name: "analytics.js", version: "5.2.0" },
      ip: "203.0.113.7",
      locale: "en-US",
      userAgent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
      page: { path: "/", url: "https://shop.example/", referrer: "https://www.google.com/" },
    },
  };
}

const answerOf = (values) => ({ segments: new Set(values.segments.map((s) => s.id)), computedTraits: values.computedTraits });

/** An engine over a fresh in-memory SQLite, with every audience and the statistics put. */
function newEngine(m, list, statistics, traitsOf) {
  const sql = m.sqlStorage();
  let emitted = 0;
  const engine = new m.AudienceEngine(sql, (id) => traitsOf.get(id), () => emitted++);
  for (const audience of list) engine.put(audience);
  engine.putStatistics(statistics);
  return { sql, engine, emitted: () => emitted };
}

/**
 * States as live traffic leaves them: every history event through `onEvent` at its own time, in
 * time order across people as the object sees them. Timed: the per-event cost while the states
 * fill up from empty.
 */
function fillLive(m, list, statistics, people, traitsOf) {
  const store = newEngine(m, list, statistics, traitsOf);
  const history = people.flatMap((p) => p.history.map((event) => ({ id: p.id, event }))).sort((a, b) => a.event.timestamp - b.event.timestamp);
  const times = [];
  for (const { id, event } of history) {
    const t0 = performance.now();
    store.engine.onEvent(id, event, event.timestamp);
    times.push(performance.now() - t0);
  }
  return { ...store, times };
}

/** States as a backfill, merge or unmerge leaves them: `rebuild` from the history, pruned at NOW. */
function fillRebuilt(m, list, statistics, people, traitsOf) {
  const store = newEngine(m, list, statistics, traitsOf);
  for (const p of people) store.engine.rebuild(p.id, p.history, NOW);
  return store;
}

function storedSize(sql, people) {
  const { n, bytes } = sql.exec("SELECT count(*) AS n, sum(length(state)) AS bytes FROM person_state").one();
  const biggest = sql.exec("SELECT spec, length(state) AS bytes FROM person_state ORDER BY bytes DESC LIMIT 1").one();
  return { rowsPerPerson: round(n / people), bytesPerPerson: Math.round(bytes / people), largestState: { bytes: biggest.bytes, spec: JSON.parse(biggest.spec) } };
}
