import { z } from "zod";
import { computedTraitSchema, type ComputedTraitDefinition, type Condition, type EventFilter, segmentDefinitionSchema } from "./definition";
import { type AggregateSpec, aggregateSpecs, computedTraitSpec, referencedSegments, specKey } from "./specs";
import type { PersonEvent } from "./values";

/**
 * A workspace's segments and computed traits as one catalog: the aggregate
 * specs they need (shared when two ask the same thing), and the order to
 * evaluate them in (computed traits first, then segments after the segments
 * they refer to).
 */

export const audienceKeySchema = z
  .string()
  .regex(/^[a-z][a-z0-9_]{0,62}$/, "lowercase letters, digits and _, starting with a letter, at most 63 characters")
  .describe("The trait name the audience or computed trait appears under on profiles and in activations.");

export const audienceSchema = z.discriminatedUnion("kind", [
  z.strictObject({ id: z.string(), kind: z.literal("segment"), key: audienceKeySchema, name: z.string(), definition: segmentDefinitionSchema, version: z.number().int() }),
  z.strictObject({ id: z.string(), kind: z.literal("computed_trait"), key: audienceKeySchema, name: z.string(), definition: computedTraitSchema, version: z.number().int() }),
]);
export type Audience = z.infer<typeof audienceSchema>;
export type SegmentAudience = Extract<Audience, { kind: "segment" }>;
export type ComputedAudience = Extract<Audience, { kind: "computed_trait" }>;

export class Catalog {
  readonly specs = new Map<string, AggregateSpec>();
  readonly specsOf = new Map<string, Map<string, AggregateSpec>>();
  /** Computed traits, then segments in dependency order. */
  readonly ordered: Audience[];

  constructor(readonly audiences: Audience[]) {
    for (const audience of audiences) {
      const specs =
        audience.kind === "segment"
          ? aggregateSpecs(audience.definition as Condition)
          : new Map([[specKey(computedTraitSpec(audience.definition as ComputedTraitDefinition)), computedTraitSpec(audience.definition as ComputedTraitDefinition)]]);
      this.specsOf.set(audience.id, specs);
      for (const [key, spec] of specs) this.specs.set(key, spec);
    }
    this.ordered = [...audiences.filter((a) => a.kind === "computed_trait"), ...segmentsInDependencyOrder(audiences.filter((a): a is SegmentAudience => a.kind === "segment"))];
  }

  /** The specs an event could change: a spec naming other events is skipped without reading its state. */
  specsTouchedBy(event: PersonEvent): [string, AggregateSpec][] {
    const name = event.event ?? event.name ?? null;
    return [...this.specs].filter(([, spec]) => mayMatch(spec, name));
  }
}

function mayMatch(spec: AggregateSpec, name: string | null): boolean {
  const names = (filter: EventFilter) => filter.event === undefined || (name !== null && (typeof filter.event === "string" ? filter.event === name : filter.event.includes(name)));
  if (spec.function === "sequence") return [spec.first, ...spec.followedBy.map((s) => s.filter), ...spec.notFollowedBy.map((s) => s.filter)].some(names);
  return names(spec.filter);
}

/**
 * Segments after the segments they mention. A cycle (A in B, B in A) cannot be
 * ordered: whichever member is evaluated first sees the others as not members.
 */
function segmentsInDependencyOrder(segments: SegmentAudience[]): SegmentAudience[] {
  const byId = new Map(segments.map((s) => [s.id, s]));
  const done = new Set<string>();
  const visiting = new Set<string>();
  const out: SegmentAudience[] = [];
  const visit = (segment: SegmentAudience) => {
    if (done.has(segment.id) || visiting.has(segment.id)) return;
    visiting.add(segment.id);
    for (const ref of referencedSegments(segment.definition as Condition)) {
      const dependency = byId.get(ref);
      if (dependency) visit(dependency);
    }
    visiting.delete(segment.id);
    done.add(segment.id);
    out.push(segment);
  };
  for (const segment of segments) visit(segment);
  return out;
}
