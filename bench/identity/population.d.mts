/** Types of population.mjs, for the tests that resolve its events inside the runtime. */
export interface PopulationEvent extends Record<string, unknown> {
  messageId: string;
  timestamp: string;
}

export function generatePopulation(options: { people: number; seed: number; rates?: Record<string, number> }): {
  people: unknown[];
  events: PopulationEvent[];
  truth: Map<string, string>;
  rates: Record<string, number>;
  stats: Record<string, unknown>;
};
