import { UAParser } from "ua-parser-js";
import type { CdpEvent } from "./normalize";

/** The slice of `request.cf` (and headers) that enrichment reads. */
export interface RequestFacts {
  ip?: string;
  country?: string;
  region?: string;
  city?: string;
  timezone?: string;
  latitude?: string;
  longitude?: string;
}

export function requestFacts(request: Request): RequestFacts {
  const cf = (request as Request & { cf?: IncomingRequestCfProperties }).cf;
  const facts: RequestFacts = {};
  const ip = request.headers.get("cf-connecting-ip") ?? request.headers.get("x-real-ip") ?? undefined;
  if (ip) facts.ip = ip;
  if (cf?.country) facts.country = String(cf.country);
  if (cf?.region) facts.region = cf.region;
  if (cf?.city) facts.city = cf.city;
  if (cf?.timezone) facts.timezone = cf.timezone;
  if (cf?.latitude) facts.latitude = cf.latitude;
  if (cf?.longitude) facts.longitude = cf.longitude;
  return facts;
}

interface ParsedAgent {
  browser?: { name?: string; version?: string };
  os?: { name?: string; version?: string };
  device?: { type?: string; manufacturer?: string; model?: string };
}

/**
 * User agents repeat heavily, and parsing is the most expensive step on the
 * tracking path, so parses are memoised in a small per-isolate LRU.
 */
const UA_CACHE_SIZE = 512;
const uaCache = new Map<string, ParsedAgent>();

export function parseUserAgent(userAgent: string): ParsedAgent {
  const cached = uaCache.get(userAgent);
  if (cached) {
    uaCache.delete(userAgent);
    uaCache.set(userAgent, cached);
    return cached;
  }
  const result = new UAParser(userAgent).getResult();
  const parsed: ParsedAgent = {};
  const browser = compact({ name: result.browser.name, version: result.browser.version });
  if (browser) parsed.browser = browser;
  const os = compact({ name: result.os.name, version: result.os.version });
  if (os) parsed.os = os;
  // ua-parser-js leaves `type` empty for desktops; an agent with a known OS and no device type is one.
  const device = compact({
    type: result.device.type ?? (os ? "desktop" : undefined),
    manufacturer: result.device.vendor,
    model: result.device.model,
  });
  if (device) parsed.device = device;
  if (uaCache.size >= UA_CACHE_SIZE) uaCache.delete(uaCache.keys().next().value as string);
  uaCache.set(userAgent, parsed);
  return parsed;
}

function compact<T extends Record<string, string | undefined>>(value: T): Partial<T> | undefined {
  const entries = Object.entries(value).filter(([, v]) => v !== undefined && v !== "");
  return entries.length ? (Object.fromEntries(entries) as Partial<T>) : undefined;
}

type Bag = Record<string, unknown>;
const asBag = (value: unknown): Bag => (typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Bag) : {});

/** Fills what the client left out; a value the client sent always wins over one we derive. */
const fill = (derived: Bag | undefined, given: unknown): Bag => ({ ...derived, ...asBag(given) });

/** Server-side enrichment: IP, geo from `request.cf`, and the parsed user agent. Mutates and returns `event`. */
export function enrich(event: CdpEvent, facts: RequestFacts): CdpEvent {
  const context = event.context;
  if (context.ip === undefined && facts.ip) context.ip = facts.ip;

  const location: Bag = {};
  if (facts.country) location.country = facts.country;
  if (facts.region) location.region = facts.region;
  if (facts.city) location.city = facts.city;
  if (facts.timezone) location.timezone = facts.timezone;
  if (facts.latitude) location.latitude = Number(facts.latitude);
  if (facts.longitude) location.longitude = Number(facts.longitude);
  if (Object.keys(location).length > 0) context.location = fill(location, context.location);

  if (typeof context.userAgent === "string" && context.userAgent.length > 0) {
    const agent = parseUserAgent(context.userAgent);
    if (agent.browser) context.browser = fill(agent.browser, context.browser);
    if (agent.os) context.os = fill(agent.os, context.os);
    if (agent.device) context.device = fill(agent.device, context.device);
  }
  return event;
}
