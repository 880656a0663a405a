import type { QueuedEvent } from "../../workers/intake/envelope";

/**
 * A small seeded population for concurrency tests: 40 people with one user
 * id, one to three devices and one or two emails each, eight events apiece.
 * No guard ever refuses an identifier here, so every arrival order must end
 * in the same clusters.
 */
export function smallPopulationMessages(seed: number) {
  let state = seed;
  const random = () => ((state = (state * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
  const pick = <T>(items: T[]) => items[Math.floor(random() * items.length)]!;
  const events: Record<string, unknown>[] = [];
  for (let p = 0; p < 40; p++) {
    const devices = Array.from({ length: 1 + Math.floor(random() * 3) }, (_, d) => `anon-${p}-${d}`);
    const emails = Array.from({ length: 1 + Math.floor(random() * 2) }, (_, e) => `person${p}.${e}@acme-shop.com`);
    for (let k = 0; k < 8; k++) {
      const message: Record<string, unknown> = { type: "track", event: "Viewed", anonymousId: pick(devices), messageId: `c-${seed}-${p}-${k}` };
      const roll = random();
      if (roll < 0.3) message.userId = `user-${p}`;
      if (roll > 0.6) Object.assign(message, { type: "identify", traits: { email: pick(emails) } });
      events.push(message);
    }
  }
  return events;
}

/** The same population as queued events, a second apart in generation order. */
export function smallPopulation(seed: number): QueuedEvent[] {
  return smallPopulationMessages(seed).map(
    (message, n) => ({ ...message, receivedAt: "2026-11-22T10:00:00.000Z", timestamp: new Date(Date.UTC(2026, 10, 22, 10, 0, 0, n * 1000)).toISOString(), context: {}, integrations: {} }) as unknown as QueuedEvent,
  );
}

export function shuffle<T>(items: T[], seed: number): T[] {
  const out = [...items];
  let state = seed;
  for (let i = out.length - 1; i > 0; i--) {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    const j = state % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
