/**
 * Synthetic population with ground truth for the identity benchmark.
 *
 * `generatePopulation({ people, seed, rates })` returns `{ people, events, truth, rates, stats }`:
 * Segment messages in time order and, apart from them, `truth: Map<messageId, personId>` naming the
 * human (or, for "login as", the account) each event belongs to. Seeded (mulberry32): the same
 * arguments give the same output; Math.random is never used.
 *
 * Hazards and their rates (the numbers live in RATES below; "people" = all persons generated):
 * - Anonymous-only visitors: 8 % of people never identify (1–2 devices, 1–4 visits). All others are
 *   customers with a stable `cus_…` userId and log in at least once.
 * - Devices: 1–4 per person (40/30/20/10 %), each with a stable anonymousId. Kinds: app 35 %
 *   (always `context.device.id`; 60 % also send an advertisingId, and 25 % of those are the all-zero
 *   id of limited ad tracking), mobile web 25 %, desktop web 40 %. A customer's first device always
 *   sees a login; each further one does with p 0.97 (the rest are unlinkable by identifiers).
 * - Visits: 1 + exponential (about 7 per customer) over 90 days, 1–6 page/track events each. A
 *   linkable device's first login happens on a visit with p 0.6 (forced on its last visit); once
 *   logged in, a visit is logged in with p 0.75 (identify again at its start p 0.25). A login
 *   visit is 0–2 anonymous events, identify, events with the userId; 10 % of first logins
 *   on a device also send `alias(previousId = anonymousId)`. 15 % of logged-in events carry
 *   `context.traits.email`.
 * - Emails: 1 (65 %), 2 (27 %) or 3 (8 %) per customer, switching at random times (email change).
 *   On an identify the email is sent with p 0.85; 8 % of those are case variants, 5 % `+tag` variants.
 * - Names: on identify with p 0.6; 5 % of those have a typo (swap, drop or double a letter).
 * - Phones: 55 % of customers have one, sent on 40 % of identifies in one of four formats.
 * - Households: 30 % of people live in households of 2–5. Members share a phone (used instead of
 *   their own on 60 % of phone-bearing identifies) and a home IP; 50 % of households share a tablet
 *   (one anonymousId, app device id half the time). Each member uses it for 1–3 visits, logged in
 *   as themselves on 40 % of them (no reset between members), anonymously otherwise.
 * - Generic emails: companies (1.5 per 100 people) have a role address (`info@`, `sales@`, …);
 *   20 % of customers work at one, and 30 % of those send the role address as their email on half
 *   of their identifies. Employees' desktop visits come from the office NAT IP (p 0.6).
 * - Carrier NAT: mobile visits use one of 40 carrier-grade NAT IPs (p 0.8), else the home IP.
 * - Placeholders: 3 % of devices run a buggy client that sends a placeholder userId (`null`,
 *   `undefined`, `anonymous`, `0`, `[object Object]`, all-zero uuid) on anonymous events; 0.5 % of
 *   devices have a placeholder anonymousId; 1 % of identifies send a placeholder email.
 * - Kiosks: 1 per 1,000 people, each with 100–200 visits by random customers on one device (one
 *   anonymousId and device id): anonymous page, identify, 2–4 tracks, "Signed Out", no reset.
 * - Logouts without reset: 3 % of customers log in once on someone else's device (a household
 *   member's if any, else a random person's): the host's anonymousId carries the guest's userId.
 * - Support agents: 1 per 2,000 people (customers themselves), each "logs in as" 20–60 customers on
 *   the agent's own desktop: identify(customer) (with the customer's email half the time), 1–4
 *   events, then identify(agent). Truth for those events is the customer (the account acted on);
 *   the hazard is that the agent's anonymousId bridges all of them.
 * - Server-side: 30 % of customers have a CRM id; 1–3 "Order Completed" tracks from a server carry
 *   userId and `context.externalIds` (crm_id) and no anonymousId.
 * Every event has `context.ip` and `context.userAgent`. They are not identifiers (DESIGN.md), but
 * the shared NAT IPs and common user agents are what a probabilistic matcher has to get past.
 */

export const RATES = Object.freeze({
  anonymousOnly: 0.08, devicesWeights: [0.4, 0.3, 0.2, 0.1], appDevice: 0.35, mobileWeb: 0.25,
  adIdOnApp: 0.6, adIdZero: 0.25, extraDeviceLinkable: 0.97, visitsMean: 7, visitsMax: 40,
  stayLoggedIn: 0.75, reIdentify: 0.25, aliasOnFirstLogin: 0.1, ctxEmailOnEvent: 0.15,
  emailCountWeights: [0.65, 0.27, 0.08], emailOnIdentify: 0.85, emailCaseVariant: 0.08, emailPlusTag: 0.05,
  nameOnIdentify: 0.6, nameTypo: 0.05, hasPhone: 0.55, phoneOnIdentify: 0.4,
  inHousehold: 0.3, householdPhoneUse: 0.6, householdTablet: 0.5, tabletLoggedIn: 0.4,
  companiesPerPerson: 0.015, employed: 0.2, usesGenericEmail: 0.3, genericEmailOnIdentify: 0.5, officeIp: 0.6,
  carrierNat: 0.8, carrierNatPool: 40, buggyClient: 0.03, placeholderAnonymousId: 0.005, placeholderEmail: 0.01,
  kiosksPerPerson: 0.001, logoutWithoutReset: 0.03, agentsPerPerson: 0.0005, crmId: 0.3,
});

export const PLACEHOLDERS = ["null", "undefined", "anonymous", "0", "[object Object]", "00000000-0000-0000-0000-000000000000"];
const ZERO_UUID = PLACEHOLDERS[5];
const FIRST = ["james", "mary", "john", "patricia", "robert", "jennifer", "michael", "linda", "david", "elizabeth", "william", "barbara", "richard", "susan", "joseph", "jessica", "thomas", "sarah", "charles", "karen", "daniel", "nancy", "matthew", "lisa", "anthony", "betty", "mark", "sandra", "steven", "ashley", "andrew", "emily", "kevin", "donna", "brian", "michelle", "lukas", "sofia", "mateo", "aiko"];
const LAST = ["smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "rodriguez", "martinez", "hernandez", "lopez", "gonzalez", "wilson", "anderson", "thomas", "taylor", "moore", "jackson", "martin", "lee", "perez", "thompson", "white", "harris", "sanchez", "clark", "ramirez", "lewis", "robinson", "walker", "young", "allen", "king", "wright", "scott", "muller", "schmidt", "tanaka", "rossi"];
const DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "proton.me", "aol.com", "gmx.de"];
const ROLES = ["info", "sales", "office", "contact", "admin"];
const PAGES = ["Home", "Category", "Product", "Cart", "Account", "Search"];
const TRACKS = ["Product Viewed", "Product Added", "Cart Viewed", "Checkout Started", "Order Completed", "Products Searched"];
const DAY = 86_400_000;
const START = Date.UTC(2025, 0, 1);
const SPAN = 90 * DAY;

/** mulberry32: a small, fast, seeded 32-bit PRNG returning floats in [0, 1). */
export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `rates` overrides entries of RATES (e.g. `{ kiosksPerPerson: 0 }` to switch kiosks off). */
export function generatePopulation({ people: count = 10_000, seed = 42, rates = {} } = {}) {
  const R = { ...RATES, ...rates };
  const rnd = mulberry32(seed);
  const int = (lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1));
  const pick = (xs) => xs[Math.floor(rnd() * xs.length)];
  const chance = (p) => rnd() < p;
  const weighted = (ws) => { let x = rnd(), i = 0; while (i < ws.length - 1 && (x -= ws[i]) >= 0) i++; return i; };
  const hex = (n) => { let s = ""; while (s.length < n) s += (Math.floor(rnd() * 2 ** 32) >>> 0).toString(16).padStart(8, "0"); return s.slice(0, n); };
  const uuid = () => { const h = hex(32); return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${"89ab"[int(0, 3)]}${h.slice(17, 20)}-${h.slice(20)}`; };
  const b36 = (n) => { let s = ""; while (s.length < n) s += Math.floor(rnd() * 36).toString(36); return s; };
  const ipv4 = (a = int(24, 223)) => `${a}.${int(0, 255)}.${int(0, 255)}.${int(1, 254)}`;
  const typo = (s, i = int(0, s.length - 2), k = int(0, 2)) => // swap, drop or double a letter
    k === 0 ? s.slice(0, i) + s[i + 1] + s[i] + s.slice(i + 2) : k === 1 ? s.slice(0, i) + s.slice(i + 1) : s.slice(0, i + 1) + s.slice(i);
  const cap = (s) => s[0].toUpperCase() + s.slice(1);
  const fmtPhone = (d) => { const [a, b, c] = [d.slice(2, 5), d.slice(5, 8), d.slice(8)]; return pick([d, `+1 (${a}) ${b}-${c}`, `+1 ${a} ${b} ${c}`, `+1-${a}-${b}-${c}`]); };
  const usedEmails = new Set(), usedPhones = new Set();
  const uniq = (set, make) => { let v; do v = make(); while (set.has(v)); set.add(v); return v; };
  const newPhone = () => uniq(usedPhones, () => `+1${int(201, 989)}${int(200, 999)}${String(int(0, 9999)).padStart(4, "0")}`);
  const carrierIps = Array.from({ length: R.carrierNatPool }, () => ipv4(100));
  const serverIps = [ipv4(34), ipv4(35), ipv4(52)];
  const uaFor = (kind) =>
    kind === "app" ? pick([`Shop/4.${int(0, 12)} (iPhone; iOS 17.${int(0, 6)})`, `Shop/4.${int(0, 12)} (Linux; Android 14; Pixel ${int(6, 9)})`])
      : kind === "mobile" ? `Mozilla/5.0 (iPhone; CPU iPhone OS 17_${int(0, 6)} like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1`
        : kind === "tablet" ? `Mozilla/5.0 (iPad; CPU OS 17_${int(0, 6)} like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1`
          : `Mozilla/5.0 (${pick(["Windows NT 10.0; Win64; x64", "Macintosh; Intel Mac OS X 14_5"])}) AppleWebKit/537.36 Chrome/${int(120, 131)}.0.0.0 Safari/537.36`;
  const newDevice = (kind, homeIp) => {
    const d = { kind, anonymousId: chance(R.placeholderAnonymousId) ? pick(PLACEHOLDERS) : uuid(), ua: uaFor(kind), homeIp, buggy: chance(R.buggyClient), seenLogin: false };
    if (kind === "app" || (kind === "tablet" && chance(0.5))) {
      d.deviceId = uuid().toUpperCase();
      if (kind === "app" && chance(R.adIdOnApp)) d.adId = chance(R.adIdZero) ? ZERO_UUID : uuid().toUpperCase();
    }
    return d;
  };

  const stats = { customers: 0, visitors: 0, households: 0, tablets: 0, companies: 0, genericEmailUsers: 0, kiosks: 0, kioskVisits: 0, agents: 0, loginAs: 0, guestLogins: 0, buggyDevices: 0, unlinkedDevices: 0 };
  const out = []; // [ms, event, personId]

  // People, households and companies.
  const nCompanies = Math.max(1, Math.round(count * R.companiesPerPerson));
  const companies = Array.from({ length: nCompanies }, (_, i) => {
    const domain = `${pick(LAST)}-${pick(["labs", "group", "trading", "studio", "partners"])}${i}.com`;
    return { domain, generic: `${pick(ROLES)}@${domain}`, ip: ipv4() };
  });
  stats.companies = nCompanies;
  const persons = [];
  for (let i = 0; i < count; i++) {
    const first = pick(FIRST), last = pick(LAST);
    const p = { id: `P${String(i).padStart(6, "0")}`, first, last, homeIp: ipv4(), household: null, company: null, crmId: null };
    p.customerId = chance(R.anonymousOnly) ? null : `cus_${b36(14)}`;
    if (p.customerId) {
      stats.customers++;
      const nEmails = 1 + weighted(R.emailCountWeights);
      p.emails = Array.from({ length: nEmails }, () => uniq(usedEmails, () => `${pick([`${first}.${last}`, `${first}${last[0]}`, `${first[0]}${last}`, `${last}.${first}`])}${chance(0.7) ? int(1, 999) : ""}@${pick(DOMAINS)}`));
      p.emailSince = [START, ...Array.from({ length: nEmails - 1 }, () => START + rnd() * SPAN).sort((a, b) => a - b)];
      p.phone = chance(R.hasPhone) ? newPhone() : null;
      if (chance(R.employed)) {
        p.company = pick(companies);
        p.genericEmail = chance(R.usesGenericEmail);
        if (p.genericEmail) stats.genericEmailUsers++;
      }
      if (chance(R.crmId)) p.crmId = `crm_${int(100000, 999999)}${i}`;
    } else stats.visitors++;
    persons.push(p);
  }
  const order = persons.map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) { const j = int(0, i); [order[i], order[j]] = [order[j], order[i]]; }
  const households = [];
  for (let k = 0, inHh = Math.round(count * R.inHousehold); k < inHh;) {
    const size = Math.min(int(2, 5), inHh - k);
    if (size < 2) break;
    const hh = { id: households.length, phone: newPhone(), homeIp: ipv4(), members: order.slice(k, k + size).map((i) => persons[i]) };
    hh.tablet = chance(R.householdTablet) ? newDevice("tablet", hh.homeIp) : null;
    for (const m of hh.members) { m.household = hh; m.homeIp = hh.homeIp; }
    households.push(hh);
    k += size;
  }
  stats.households = households.length;
  stats.tablets = households.filter((h) => h.tablet).length;

  // Event builders.
  const ipFor = (p, d) => {
    if (d.kind === "app" || d.kind === "mobile") return chance(R.carrierNat) ? pick(carrierIps) : d.homeIp;
    if (d.kind === "desktop" && p?.company && chance(R.officeIp)) return p.company.ip;
    return d.homeIp;
  };
  const emailAt = (p, t) => {
    let i = 0;
    while (i + 1 < p.emails.length && t >= p.emailSince[i + 1]) i++;
    let e = p.emails[i];
    if (chance(R.emailCaseVariant)) return chance(0.5) ? e.toUpperCase() : e.split(/([.@])/).map(cap).join("");
    return chance(R.emailPlusTag) ? e.replace("@", `+${pick(["news", "shop", "promo", "2025"])}@`) : e;
  };
  const traitsFor = (p, t) => {
    const tr = {};
    if (chance(R.emailOnIdentify)) tr.email = emailAt(p, t);
    if (p.genericEmail && chance(R.genericEmailOnIdentify)) tr.email = p.company.generic;
    if (chance(R.placeholderEmail)) tr.email = pick(PLACEHOLDERS);
    const phone = p.household && chance(R.householdPhoneUse) ? p.household.phone : p.phone;
    if (phone && chance(R.phoneOnIdentify)) tr.phone = fmtPhone(phone);
    if (chance(R.nameOnIdentify)) {
      let f = cap(p.first), l = cap(p.last);
      if (chance(R.nameTypo)) { if (chance(0.5)) f = typo(f); else l = typo(l); }
      Object.assign(tr, { firstName: f, lastName: l, name: `${f} ${l}` });
    }
    return tr;
  };
  // One event. `d` null means a server source (no anonymousId). `user` is whose userId it carries.
  const emit = (truthId, d, t, type, user, ip, extra) => {
    const context = { ip, userAgent: d ? d.ua : "analytics-node/3.1.0" };
    if (d?.deviceId) context.device = d.adId ? { id: d.deviceId, advertisingId: d.adId } : { id: d.deviceId };
    const e = { type };
    if (user) e.userId = user.customerId;
    else if (d?.buggy) e.userId = pick(PLACEHOLDERS);
    if (d) e.anonymousId = d.anonymousId;
    if (type === "track") e.event = pick(TRACKS);
    else if (type === "page") e.name = pick(PAGES);
    if (user && type !== "identify" && chance(R.ctxEmailOnEvent)) context.traits = { email: emailAt(user, t) };
    Object.assign(e, extra);
    e.context = context;
    out.push([t, e, truthId]);
    return t + int(5, 120) * 1000;
  };
  const browse = (truthId, d, t, n, user, ip) => { for (let i = 0; i < n; i++) t = emit(truthId, d, t, chance(0.5) ? "page" : "track", user, ip); return t; };
  const identify = (truthId, d, t, user, ip, traits = traitsFor(user, t)) => emit(truthId, d, t, "identify", user, ip, Object.keys(traits).length ? { traits } : undefined);

  // Ordinary visits by each person on their own devices.
  for (const p of persons) {
    const nDevices = p.customerId ? 1 + weighted(R.devicesWeights) : int(1, 2);
    p.devices = Array.from({ length: nDevices }, (_, k) => {
      const x = rnd();
      const d = newDevice(x < R.appDevice ? "app" : x < R.appDevice + R.mobileWeb ? "mobile" : "desktop", p.homeIp);
      d.linkable = !!p.customerId && (k === 0 || chance(R.extraDeviceLinkable));
      if (d.buggy) stats.buggyDevices++;
      if (p.customerId && !d.linkable) stats.unlinkedDevices++;
      return d;
    });
    const nVisits = p.customerId ? Math.min(R.visitsMax, 1 + Math.floor(-Math.log(1 - rnd()) * (R.visitsMean - 1))) : int(1, 4);
    const visits = Array.from({ length: nVisits }, () => ({ t: START + rnd() * SPAN, d: p.devices[Math.min(Math.floor(rnd() * rnd() * (nDevices + 1)), nDevices - 1)] }));
    for (const d of p.devices) if (d.linkable && !visits.some((v) => v.d === d)) visits.push({ t: START + rnd() * SPAN, d });
    visits.sort((a, b) => a.t - b.t);
    const left = new Map();
    for (const v of visits) left.set(v.d, (left.get(v.d) ?? 0) + 1);
    for (const { t: t0, d } of visits) {
      left.set(d, left.get(d) - 1);
      const ip = ipFor(p, d), n = int(1, 6);
      let t = Math.floor(t0);
      if (d.linkable && !d.seenLogin && (chance(0.6) || left.get(d) === 0)) {
        d.seenLogin = true;
        t = browse(p.id, d, t, int(0, 2), null, ip);
        t = identify(p.id, d, t, p, ip);
        if (chance(R.aliasOnFirstLogin)) t = emit(p.id, d, t, "alias", p, ip, { previousId: d.anonymousId });
        browse(p.id, d, t, n, p, ip);
      } else if (d.seenLogin && chance(R.stayLoggedIn)) {
        if (chance(R.reIdentify)) t = identify(p.id, d, t, p, ip);
        browse(p.id, d, t, n, p, ip);
      } else browse(p.id, d, t, n, null, ip);
    }
    // Server-side orders: userId and the CRM id as an external id, no anonymousId.
    if (p.crmId) for (let k = int(1, 3); k > 0; k--) {
      emit(p.id, null, Math.floor(START + rnd() * SPAN), "track", p, pick(serverIps), { event: "Order Completed" });
      out.at(-1)[1].context.externalIds = [{ id: p.crmId, type: "crm_id", collection: "users", encoding: "none" }];
    }
  }

  const customers = persons.filter((p) => p.customerId);
  // Household tablets: members take turns, logged in as themselves or anonymous.
  for (const hh of households) {
    if (!hh.tablet) continue;
    for (const m of hh.members) for (let k = int(1, 3); k > 0; k--) {
      let t = Math.floor(START + rnd() * SPAN), ip = hh.homeIp;
      if (m.customerId && chance(R.tabletLoggedIn)) { t = identify(m.id, hh.tablet, t, m, ip); browse(m.id, hh.tablet, t, int(1, 6), m, ip); }
      else browse(m.id, hh.tablet, t, int(1, 6), null, ip);
    }
  }
  // Kiosks: 100–200 customers log in and out on one device, never reset.
  stats.kiosks = Math.max(1, Math.round(count * R.kiosksPerPerson));
  for (let k = 0; k < stats.kiosks; k++) {
    const kiosk = newDevice("tablet", ipv4());
    kiosk.deviceId ??= uuid().toUpperCase();
    kiosk.buggy = false;
    const times = Array.from({ length: int(100, 200) }, () => Math.floor(START + rnd() * SPAN)).sort((a, b) => a - b);
    for (let t of times) {
      const u = pick(customers), ip = kiosk.homeIp;
      t = emit(u.id, kiosk, t, "page", null, ip, { name: "Welcome" });
      t = identify(u.id, kiosk, t, u, ip, chance(0.5) ? { email: emailAt(u, t) } : {});
      t = browse(u.id, kiosk, t, int(2, 4), u, ip);
      emit(u.id, kiosk, t, "track", u, ip, { event: "Signed Out" });
      stats.kioskVisits++;
    }
  }
  // Logouts without reset: a guest logs in on someone else's device.
  for (const g of customers) {
    if (!chance(R.logoutWithoutReset)) continue;
    const others = g.household ? g.household.members.filter((m) => m !== g) : [];
    const host = others.length ? pick(others) : pick(persons);
    if (host === g) continue;
    const d = host.devices[0], ip = ipFor(host, d);
    const t = identify(g.id, d, Math.floor(START + rnd() * SPAN), g, ip);
    browse(g.id, d, t, int(2, 5), g, ip);
    stats.guestLogins++;
  }
  // Support agents "log in as" customers on their own desktop, then return to themselves.
  const agents = customers.slice(0, Math.max(1, Math.round(count * R.agentsPerPerson)));
  stats.agents = agents.length;
  for (const a of agents) {
    const desk = a.devices.find((d) => d.kind === "desktop" && d.linkable) ?? a.devices[0];
    a.agent = true;
    for (let k = int(20, 60); k > 0; k--) {
      const c = pick(customers);
      if (c === a) continue;
      const ip = a.company?.ip ?? desk.homeIp;
      const t0 = Math.floor(START + rnd() * SPAN);
      let t = identify(c.id, desk, t0, c, ip, chance(0.5) ? { email: emailAt(c, t0) } : {});
      t = browse(c.id, desk, t, int(1, 4), c, ip);
      identify(a.id, desk, t, a, ip, {});
      stats.loginAs++;
    }
  }

  out.sort((x, y) => x[0] - y[0]);
  const events = new Array(out.length);
  const truth = new Map();
  for (let i = 0; i < out.length; i++) {
    const [t, e, who] = out[i];
    e.messageId = `msg_${i.toString(36).padStart(7, "0")}`;
    e.timestamp = new Date(t).toISOString();
    events[i] = e;
    truth.set(e.messageId, who);
  }
  const peopleOut = persons.map((p) => ({
    id: p.id, customerId: p.customerId, firstName: p.first, lastName: p.last, emails: p.emails ?? [], phone: p.phone ?? null,
    household: p.household?.id ?? null, company: p.company?.domain ?? null, crmId: p.crmId, agent: !!p.agent,
    devices: p.devices.map((d) => ({ kind: d.kind, anonymousId: d.anonymousId, deviceId: d.deviceId ?? null, linkable: d.linkable })),
  }));
  return { people: peopleOut, events, truth, rates: R, stats };
}
