import type { ActivationEnvelope } from "../segments/activation";
import { matchesEvent, type PersonEvent } from "../segments/values";
import { CATALOG_NAMES, type Destination } from "./destination";

/**
 * Which messages a destination receives, with Segment's rules in Segment's
 * order, so a delivery log can say why each message was or was not sent:
 *
 * 0. Subscriptions first, for the log only: a message the destination does not
 *    subscribe to is `not_subscribed`, never counted as filtered.
 * 1. Consent (`filtered_consent`). No `context.consent` object: delivered. A
 *    destination in no category: delivered. Otherwise every one of its
 *    categories must be `true` in `context.consent.categoryPreferences`; a
 *    category that is missing counts as not granted.
 * 2. `integrations` (`filtered_integrations`). The destination's own name is
 *    looked up, then its catalog name ("Braze"): `false` turns it off, `true`
 *    or an object of options turns it on. With no entry for it, `All: false`
 *    turns it off; anything else leaves it on.
 * 3. Subscriptions (`not_subscribed`): an event must match one of the event
 *    filters; an audience or computed-trait change must be for a subscribed
 *    id and of a call type the audience sync mode sends.
 *
 * Consent comes first because it is the person's choice and nothing in a
 * message may override it: `integrations: { Braze: true }` does not bring back
 * an event the person refused.
 */

export type DeliveryReason = "delivered" | "filtered_consent" | "filtered_integrations" | "not_subscribed";

export interface RoutingDecision {
  reason: DeliveryReason;
  deliver: boolean;
  /** Why, in words, for the delivery log. */
  detail: string;
}

/** A Segment-spec message: an event after intake, or an activation message. */
export type Message = Record<string, unknown>;

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

const delivered: RoutingDecision = { reason: "delivered", deliver: true, detail: "delivered" };
const refuse = (reason: Exclude<DeliveryReason, "delivered">, detail: string): RoutingDecision => ({ reason, deliver: false, detail });

/** The categories a message's consent does not grant, of those the destination needs; empty means allowed. */
export function missingConsent(categories: readonly string[], context: unknown): string[] {
  if (categories.length === 0) return [];
  const consent = isRecord(context) ? context.consent : undefined;
  if (!isRecord(consent)) return [];
  const preferences = isRecord(consent.categoryPreferences) ? consent.categoryPreferences : {};
  return categories.filter((category) => preferences[category] !== true);
}

const isSwitch = (value: unknown): value is boolean | Record<string, unknown> => typeof value === "boolean" || isRecord(value);

/**
 * Whether `integrations` lets a destination known by `names` (most specific
 * first) receive the message; `undefined` when it does, else the reason.
 */
export function integrationsBlock(names: readonly string[], integrations: unknown): string | undefined {
  if (!isRecord(integrations)) return undefined;
  for (const name of names) {
    const value = integrations[name];
    if (!isSwitch(value)) continue;
    return value === false ? `integrations.${name} is false` : undefined;
  }
  return integrations.All === false ? "integrations.All is false" : undefined;
}

/** Consent then integrations, for any message. */
function gate(destination: Destination, message: Message): RoutingDecision | undefined {
  if (!destination.enabled) return refuse("not_subscribed", "destination is disabled");
  const missing = missingConsent(destination.consentCategories, message.context);
  if (missing.length > 0) return refuse("filtered_consent", `consent not granted for ${missing.join(", ")}`);
  const blocked = integrationsBlock([destination.name, CATALOG_NAMES[destination.type]], message.integrations);
  if (blocked) return refuse("filtered_integrations", blocked);
  return undefined;
}

/** An event as the segment language's filters read it; identify and group expose their traits as the properties. */
function asPersonEvent(message: Message): PersonEvent {
  const fields = message.type === "identify" || message.type === "group" ? message.traits : message.properties;
  return {
    messageId: String(message.messageId ?? ""),
    type: String(message.type ?? ""),
    event: typeof message.event === "string" ? message.event : undefined,
    name: typeof message.name === "string" ? message.name : undefined,
    timestamp: 0,
    properties: isRecord(fields) ? fields : {},
  };
}

/** Routes one event from the event stream. */
export function routeEvent(destination: Destination, event: Message): RoutingDecision {
  // A message the destination does not subscribe to was never its to filter: it counts as not subscribed, whatever its consent says.
  const person = asPersonEvent(event);
  if (!destination.subscriptions.events.some((filter) => matchesEvent(filter, person))) return refuse("not_subscribed", "no event subscription matches");
  return gate(destination, event) ?? delivered;
}

export interface PersonasContext {
  computation_class: "audience" | "computed_trait";
  computation_id: string;
  computation_key: string;
}

/** The `context.personas` of an activation message, when it is well formed. */
export function personasOf(message: Message): PersonasContext | undefined {
  const personas = isRecord(message.context) ? message.context.personas : undefined;
  if (!isRecord(personas)) return undefined;
  const { computation_class, computation_id, computation_key } = personas;
  if ((computation_class !== "audience" && computation_class !== "computed_trait") || typeof computation_id !== "string" || typeof computation_key !== "string") return undefined;
  return { computation_class, computation_id, computation_key };
}

/**
 * An envelope's messages, plus the `Trait Computed` track that Segment sends
 * for a computed trait when the destination wants track calls (the envelope
 * only carries an identify for those): properties `{ trait_key, <key>: value }`.
 */
export function activationMessages(destination: Destination, envelope: ActivationEnvelope): Message[] {
  const messages = [...envelope.messages];
  const identify = messages.find((message) => message.type === "identify");
  const personas = identify && personasOf(identify);
  if (identify && personas?.computation_class === "computed_trait" && !messages.some((message) => message.type === "track")) {
    const key = personas.computation_key;
    const value = isRecord(identify.traits) ? identify.traits[key] : undefined;
    const { traits: _traits, ...rest } = identify;
    messages.push({
      ...rest,
      type: "track",
      messageId: String(identify.messageId).replace(/_identify$/, "") + "_track",
      event: destination.audienceSync.traitComputedEvent,
      properties: { trait_key: key, [key]: value },
    });
  }
  return messages;
}

export interface RoutedMessage {
  message: Message;
  decision: RoutingDecision;
}

/** Routes an audience or computed-trait change: every candidate message with its decision. */
export function routeActivation(destination: Destination, envelope: ActivationEnvelope): RoutedMessage[] {
  const { mode } = destination.audienceSync;
  return activationMessages(destination, envelope).map((message) => {
    const personas = personasOf(message);
    const ids = personas?.computation_class === "audience" ? destination.subscriptions.audiences : destination.subscriptions.computedTraits;
    if (!personas || personas.computation_id !== envelope.audienceId || !ids.includes(envelope.audienceId)) {
      return { message, decision: refuse("not_subscribed", `not subscribed to ${personas?.computation_class ?? "computation"} ${envelope.audienceId}`) };
    }
    if (mode !== "both" && message.type !== mode) return { message, decision: refuse("not_subscribed", `audience sync mode is ${mode}`) };
    return { message, decision: gate(destination, message) ?? delivered };
  });
}
