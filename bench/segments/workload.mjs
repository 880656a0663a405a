/**
 * A seeded commerce workload for the segment benchmark: 100 segments and 50 computed traits of the
 * kinds a store defines, and people with realistic histories.
 *
 * Definitions (`audiences()`, validated by `audienceSchema` like the admin API does):
 * - 50 computed traits: counts, sums, averages, min / max, unique counts and lists, most frequent,
 *   first / last, over 7, 30 and 90 days or ever, some with property filters or on arrays
 *   (`products[].category`);
 * - 100 segments: event counts with property filters and windows (also "between 14 and 30 days
 *   ago"), not performed (`count equals 0`, `not`), cart and checkout abandonment and funnels
 *   (sequences with `notFollowedBy` / `followedBy`, one joined on product), repurchase cycles
 *   (`since_last` from the product's own cycle), trait conditions (equals, in, exists, relative
 *   dates), computed-trait conditions, compares against workspace statistics, set comparisons,
 *   segments of segments, and one filter on a list of event names.
 *
 * People (`population()`): each has traits and a history of HISTORY_EVENTS (200) events over the
 * 90 days before `NOW`, in sessions (home page, e-mail, search → list → product views → cart →
 * checkout → order), across 11 event names (9 tracks, 2 pages); then `newEvents` more in sessions
 * after `NOW`, the events the benchmark measures.
 */

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;
/** A round hour, so window edges fall on the hour. */
export const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);
export const HISTORY_DAYS = 90;
export const HISTORY_EVENTS = 200;

export const CATEGORIES = ["shoes", "socks", "shirts", "jackets", "bags", "hats", "watches", "sunglasses", "belts", "scarves"];
const RELATED = { shoes: ["socks", "belts"], socks: ["shoes"], shirts: ["jackets", "belts"], jackets: ["scarves", "hats"], bags: ["belts", "watches"], hats: ["scarves", "sunglasses"], watches: ["sunglasses"], sunglasses: ["hats", "watches"], belts: ["shoes", "bags"], scarves: ["jackets", "hats"] };
const REPLENISH_DAYS = { socks: 45, shirts: 90 };
const BRANDS = ["acme", "northwind", "globex", "initech", "umbrella"];
const CAMPAIGNS = ["spring_sale", "summer_sale", "black_friday", "newsletter_weekly", "winback", "new_arrivals"];
const COUPONS = ["WELCOME10", "SPRING20", "VIP30"];
const PLANS = ["free", "pro", "enterprise"];
const COUNTRIES = ["US", "DE", "FR", "GB", "ES", "IT", "NL", "SE"];
const TIERS = ["bronze", "silver", "gold"];
const QUERIES = ["running shoes", "wool socks", "rain jacket", "leather bag", "sun hat", "smart watch", "aviators", "belt", "silk scarf", "linen shirt"];

export const PRODUCTS = Array.from({ length: 200 }, (_, i) => {
  const category = CATEGORIES[i % CATEGORIES.length];
  return { product_id: `p-${i}`, category, price: 5 + ((i * 37) % 295), brand: BRANDS[i % BRANDS.length], ...(REPLENISH_DAYS[category] ? { replenish_days: REPLENISH_DAYS[category] } : {}) };
});

/** mulberry32: small, fast, seeded. */
export function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  next.int = (n) => Math.floor(next() * n);
  next.pick = (list) => list[next.int(list.length)];
  next.chance = (p) => next() < p;
  return next;
}

// ---------------------------------------------------------------- definitions

const within = (days) => ({ within: { days } });
const ev = (event, extra = {}) => ({ kind: "event", event, ...extra });
const where = (property, op, value) => [op === "in" || op === "not_in" ? { property, op, values: value } : op === "exists" || op === "not_exists" ? { property, op } : { property, op, value }];
const none = (condition) => ({ ...condition, count: { op: "equals", value: 0 } });
const and = (...conditions) => ({ kind: "and", conditions });
const or = (...conditions) => ({ kind: "or", conditions });
const not = (condition) => ({ kind: "not", condition });
const trait = (name, op, value) => ({ kind: "trait", trait: name, op, ...(op === "in" || op === "not_in" ? { values: value } : op === "exists" || op === "not_exists" ? {} : value && typeof value === "object" && "days" in value ? { duration: value } : { value }) });
const computed = (name, op, value) => ({ kind: "computed_trait", trait: name, op, ...(value === undefined ? {} : { value }) });

function computedTraitDefinitions() {
  const out = [];
  const add = (key, definition) => out.push({ key, definition });
  for (const [suffix, days] of [["7d", 7], ["30d", 30], ["90d", 90], ["ever", null]]) {
    const window = days ? { window: within(days) } : {};
    add(`orders_${suffix}`, { function: "count", event: "Order Completed", ...window });
    add(`revenue_${suffix}`, { function: "sum", event: "Order Completed", property: "revenue", ...window });
  }
  add("aov_30d", { function: "average", event: "Order Completed", property: "revenue", window: within(30) });
  add("aov_90d", { function: "average", event: "Order Completed", property: "revenue", window: within(90) });
  add("views_7d", { function: "count", event: "Product Viewed", window: within(7) });
  add("views_30d", { function: "count", event: "Product Viewed", window: within(30) });
  add("adds_7d", { function: "count", event: "Product Added", window: within(7) });
  add("adds_30d", { function: "count", event: "Product Added", window: within(30) });
  add("searches_7d", { function: "count", event: "Products Searched", window: within(7) });
  add("searches_30d", { function: "count", event: "Products Searched", window: within(30) });
  add("email_opens_30d", { function: "count", event: "Email Opened", window: within(30) });
  add("email_opens_90d", { function: "count", event: "Email Opened", window: within(90) });
  add("home_visits_30d", { function: "count", event: "Home", type: ["page"], window: within(30) });
  add("pricing_views_30d", { function: "count", event: "Pricing", type: ["page"], window: within(30) });
  add("unique_products_viewed_7d", { function: "unique_count", event: "Product Viewed", property: "product_id", window: within(7) });
  add("unique_products_viewed_30d", { function: "unique_count", event: "Product Viewed", property: "product_id", window: within(30) });
  add("unique_products_viewed_90d", { function: "unique_count", event: "Product Viewed", property: "product_id", window: within(90) });
  add("fav_category_30d", { function: "most_frequent", event: "Product Viewed", property: "category", window: within(30) });
  add("fav_category_90d", { function: "most_frequent", event: "Product Viewed", property: "category", window: within(90) });
  add("fav_category_ever", { function: "most_frequent", event: "Product Viewed", property: "category" });
  add("fav_ordered_category_90d", { function: "most_frequent", event: "Order Completed", property: "products[].category", window: within(90) });
  add("categories_viewed_30d", { function: "unique_list", event: "Product Viewed", property: "category", limit: 5, window: within(30) });
  add("recent_products_added", { function: "unique_list", event: "Product Added", property: "product_id", limit: 10, window: within(30) });
  add("unique_categories_ordered", { function: "unique_count", event: "Order Completed", property: "products[].category" });
  add("last_coupon", { function: "last", event: "Order Completed", property: "coupon" });
  add("first_category_bought", { function: "first", event: "Order Completed", property: "products[].category" });
  add("last_product_viewed", { function: "last", event: "Product Viewed", property: "product_id" });
  add("last_campaign", { function: "last", event: "Email Opened", property: "campaign" });
  add("unique_campaigns_90d", { function: "unique_count", event: "Email Opened", property: "campaign", window: within(90) });
  add("max_order_90d", { function: "max", event: "Order Completed", property: "revenue", window: within(90) });
  add("min_price_viewed_30d", { function: "min", event: "Product Viewed", property: "price", window: within(30) });
  add("max_price_added_30d", { function: "max", event: "Product Added", property: "price", window: within(30) });
  add("avg_price_viewed_30d", { function: "average", event: "Product Viewed", property: "price", window: within(30) });
  add("cart_value_7d", { function: "sum", event: "Cart Viewed", property: "value", window: within(7) });
  add("checkouts_30d", { function: "count", event: "Checkout Started", window: within(30) });
  add("coupon_uses_90d", { function: "count", event: "Coupon Applied", window: within(90) });
  add("quantity_added_30d", { function: "sum", event: "Product Added", property: "quantity", window: within(30) });
  add("items_spend_90d", { function: "sum", event: "Order Completed", property: "products[].price", window: within(90) });
  add("high_value_orders_90d", { function: "count", event: "Order Completed", where: where("revenue", "gte", 200), window: within(90) });
  for (const category of ["shoes", "socks", "jackets", "bags", "watches"]) {
    add(`${category}_views_30d`, { function: "count", event: "Product Viewed", where: where("category", "equals", category), window: within(30) });
  }
  return out;
}

function segmentDefinitions() {
  const out = [];
  const add = (name, definition) => out.push({ id: `seg_${String(out.length).padStart(3, "0")}`, name, definition });
  const idOf = (name) => out.find((s) => s.name === name).id;

  // Viewed a category 3+ times in 7 days and added nothing to the cart.
  for (const category of ["shoes", "jackets", "bags", "watches", "hats"]) {
    add(`browsing ${category}, no cart`, and(ev("Product Viewed", { where: where("category", "equals", category), window: within(7), count: { op: "gte", value: 3 } }), none(ev("Product Added", { window: within(7) }))));
  }
  // Category enthusiasts: 5+ views and an add in 30 days.
  for (const category of CATEGORIES) {
    add(`${category} enthusiasts`, and(ev("Product Viewed", { where: where("category", "equals", category), window: within(30), count: { op: "gte", value: 5 } }), ev("Product Added", { where: where("category", "equals", category), window: within(30) })));
  }
  // Browsed a category in the last 3 days, bought nothing of it in 30.
  for (const category of CATEGORIES) {
    add(`recent ${category} browsers, no purchase`, and(ev("Product List Viewed", { where: where("category", "equals", category), window: within(3) }), none(ev("Order Completed", { where: where("products[].category", "equals", category), window: within(30) }))));
  }
  // Abandonment.
  add("cart abandoners (1 h)", { kind: "sequence", first: { event: "Product Added" }, window: within(7), notFollowedBy: [{ event: "Order Completed", within: { hours: 1 } }] });
  add("cart abandoners (24 h)", { kind: "sequence", first: { event: "Product Added" }, window: within(14), notFollowedBy: [{ event: "Order Completed", within: { hours: 24 } }] });
  add("abandoned and browsed related", {
    kind: "sequence",
    first: { event: "Product Added" },
    window: within(7),
    followedBy: [{ event: "Product List Viewed", within: { hours: 2 }, join: { first: "related_categories[]", step: "category" } }],
    notFollowedBy: [{ event: "Order Completed", within: { hours: 1 } }],
  });
  add("checkout abandoners", { kind: "sequence", first: { event: "Checkout Started" }, window: within(3), notFollowedBy: [{ event: "Order Completed", within: { hours: 2 } }] });
  // Funnels.
  add("viewed then added the same product", {
    kind: "sequence",
    first: { event: "Product Viewed" },
    window: within(30),
    followedBy: [{ event: "Product Added", within: { hours: 1 }, join: { first: "product_id", step: "product_id" } }, { event: "Checkout Started", within: { hours: 2 } }],
  });
  add("viewed then bought the same product", {
    kind: "sequence",
    first: { event: "Product Viewed" },
    window: within(30),
    followedBy: [{ event: "Order Completed", within: { days: 1 }, join: { first: "product_id", step: "products[].product_id" } }],
  });
  // Bought a category once, not in the last 30 days.
  for (const category of ["shoes", "shirts", "bags", "watches", "scarves"]) {
    add(`lapsed ${category} buyers`, and(ev("Order Completed", { where: where("products[].category", "equals", category) }), none(ev("Order Completed", { where: where("products[].category", "equals", category), window: within(30) }))));
  }
  // Repeat buyers.
  for (const [n, days] of [[2, 90], [3, 90], [5, 90], [2, null], [5, null], [10, null]]) {
    add(`${n}+ orders${days ? ` in ${days} d` : ""}`, ev("Order Completed", { ...(days ? { window: within(days) } : {}), count: { op: "gte", value: n } }));
  }
  // Lapsed loyal customers: bought 60–90 days ago, not since.
  const lapsed = and(ev("Order Completed", { count: { op: "gte", value: 3 } }), ev("Order Completed", { window: { within: { days: 90 }, notWithin: { days: 60 } } }), none(ev("Order Completed", { window: within(60) })));
  add("lapsed loyal", lapsed);
  add("lapsed loyal, above-average value", and(lapsed, { kind: "compare", left: { trait: "lifetime_value" }, op: "gt", right: { statistic: "average", of: { trait: "lifetime_value" } } }));
  // Spend.
  add("big spenders (90 d, above average)", { kind: "compare", left: { aggregate: { function: "sum", event: "Order Completed", property: "revenue", window: within(90) } }, op: "gt", right: { statistic: "average", of: { computedTrait: "revenue_90d" } } });
  add("spent 200+ in 30 d", computed("revenue_30d", "gt", 200));
  add("an order over 150 in 30 d", { kind: "compare", left: { aggregate: { function: "max", event: "Order Completed", property: "revenue", window: within(30) } }, op: "gt", right: { value: 150 } });
  add("orders at or above the median", { kind: "compare", left: { computedTrait: "orders_90d" }, op: "gte", right: { statistic: "median", of: { computedTrait: "orders_90d" } } });
  add("lifetime value near the top", { kind: "compare", left: { trait: "lifetime_value" }, op: "gte", right: { statistic: "max", of: { trait: "lifetime_value" } } });
  // Traits.
  add("pro in core markets", and(trait("plan", "equals", "pro"), trait("country", "in", ["US", "DE", "GB"])));
  add("signed up in the last 30 days", trait("created_at", "within_last", { days: 30 }));
  add("newsletter subscribers with e-mail", and(trait("newsletter", "equals", true), trait("email", "exists")));
  add("25 to 34", and(trait("age", "gte", 25), trait("age", "lt", 35)));
  add("gold or silver, paying", and(trait("loyalty_tier", "in", ["gold", "silver"]), trait("plan", "not_equals", "free")));
  // Computed traits.
  for (const category of ["shoes", "jackets", "bags", "watches", "socks"]) add(`favourite category ${category}`, computed("fav_category_30d", "equals", category));
  add("2+ orders in 90 d (computed)", computed("orders_90d", "gte", 2));
  add("broad browsers", computed("unique_products_viewed_30d", "gt", 10));
  add("looked at shoes lately", computed("categories_viewed_30d[]", "equals", "shoes"));
  // Repurchase cycles and recency.
  add("socks due for a refill", { kind: "since_last", event: "Order Completed", where: where("products[].category", "equals", "socks"), atLeast: { property: "products[].replenish_days", unit: "days", times: 0.8, otherwise: { days: 30 } } });
  add("opened an e-mail this week", { kind: "since_last", event: "Email Opened", lessThan: { days: 7 } });
  add("no order for 30 days", { kind: "since_last", event: "Order Completed", atLeast: { days: 30 } });
  // Engagement.
  add("engaged readers", and(ev("Email Opened", { window: within(30), count: { op: "gte", value: 3 } }), ev("Product Viewed", { window: within(7) })));
  add("frequent visitors", ev("Home", { type: ["page"], window: within(7), count: { op: "gte", value: 5 } }));
  add("searching, not adding", and(ev("Products Searched", { window: within(7), count: { op: "gte", value: 3 } }), not(ev("Product Added", { window: within(7) }))));
  // Coupons.
  add("coupon hunters", or(ev("Coupon Applied", { window: within(90), count: { op: "gte", value: 2 } }), ev("Order Completed", { where: where("coupon", "exists") })));
  add("VIP coupon users", ev("Order Completed", { where: where("coupon", "in", ["VIP30", "SPRING20"]), window: within(90) }));
  // Cross-sell: bought product A, viewed accessory B in 14 days, never bought B.
  for (const [a, b] of [[0, 11], [2, 23], [4, 35], [6, 47], [8, 59]]) {
    add(`cross-sell p-${b} to p-${a} buyers`, and(
      ev("Order Completed", { where: where("products[].product_id", "equals", `p-${a}`) }),
      ev("Product Viewed", { where: where("product_id", "equals", `p-${b}`), window: within(14) }),
      not(ev("Order Completed", { where: where("products[].product_id", "equals", `p-${b}`) })),
    ));
  }
  // Price and time windows.
  add("premium browsers, no order", and(ev("Product Viewed", { where: where("price", "gte", 200), window: within(30), count: { op: "gte", value: 2 } }), none(ev("Order Completed", { window: within(30) }))));
  for (const category of ["shoes", "bags"]) {
    add(`cooled on ${category}`, and(ev("Product Viewed", { where: where("category", "equals", category), window: { within: { days: 30 }, notWithin: { days: 14 } } }), none(ev("Product Viewed", { where: where("category", "equals", category), window: within(14) }))));
  }
  for (const threshold of [50, 100, 200]) add(`added items over ${threshold} twice this week`, ev("Product Added", { where: where("price", "gte", threshold), window: within(7), count: { op: "gte", value: 2 } }));
  // Sets.
  add("viewed shoes or bags lately", { kind: "compare", left: { aggregate: { function: "unique_list", event: "Product Viewed", property: "category", window: within(30) } }, op: "intersects", right: { value: ["shoes", "bags"] } });
  add("never bought accessories", { kind: "compare", left: { aggregate: { function: "unique_list", event: "Order Completed", property: "products[].category" } }, op: "disjoint", right: { value: ["belts", "hats", "scarves", "sunglasses"] } });
  add("favourite is what they buy", { kind: "compare", left: { computedTrait: "fav_category_90d" }, op: "equals", right: { computedTrait: "fav_ordered_category_90d" } });
  // Pages and campaigns.
  add("free plan on the pricing page", and(ev("Pricing", { type: ["page"], window: within(30), count: { op: "gte", value: 2 } }), trait("plan", "equals", "free")));
  for (const campaign of ["black_friday", "winback", "new_arrivals"]) add(`opened ${campaign}`, ev("Email Opened", { where: where("campaign", "equals", campaign), window: within(90) }));
  // Markets and plans.
  for (const country of ["US", "DE", "FR", "GB", "ES"]) add(`recent buyers in ${country}`, and(ev("Order Completed", { window: within(30) }), trait("country", "equals", country)));
  for (const plan of ["pro", "enterprise"]) add(`${plan} customers who bought`, and(trait("plan", "equals", plan), ev("Order Completed")));
  add("acme fans", ev("Product Viewed", { where: where("brand", "equals", "acme"), window: within(90), count: { op: "gte", value: 3 } }));
  // A list of event names.
  add("checked out or bought this week", ev(["Checkout Started", "Order Completed"], { window: within(7) }));
  // Segments of segments.
  add("VIP", and({ kind: "segment", segment: idOf("3+ orders in 90 d") }, { kind: "segment", segment: idOf("big spenders (90 d, above average)") }));
  add("at risk", or({ kind: "segment", segment: idOf("lapsed loyal") }, and({ kind: "segment", segment: idOf("2+ orders") }, not({ kind: "segment", segment: idOf("engaged readers") }))));
  add("VIP abandoners", and({ kind: "segment", segment: idOf("VIP") }, { kind: "segment", segment: idOf("cart abandoners (1 h)") }));
  return out;
}

/** 100 segments and 50 computed traits as the engine stores them (`Audience`), parsed with `audienceSchema`. */
export function audiences(audienceSchema) {
  const traits = computedTraitDefinitions().map(({ key, definition }, i) => ({ id: `ct_${String(i).padStart(3, "0")}`, kind: "computed_trait", key, name: key.replaceAll("_", " "), definition, version: 1 }));
  const segments = segmentDefinitions().map(({ id, name, definition }) => ({ id, kind: "segment", key: id, name, definition, version: 1 }));
  const all = [...traits, ...segments];
  if (traits.length !== 50 || segments.length !== 100) throw new Error(`workload: expected 50 computed traits and 100 segments, got ${traits.length} and ${segments.length}`);
  return all.map((audience) => {
    const parsed = audienceSchema.safeParse(audience);
    if (!parsed.success) throw new Error(`workload: ${audience.id} (${audience.name}) is not a valid definition: ${JSON.stringify(parsed.error.issues).slice(0, 500)}`);
    return parsed.data;
  });
}

/** Workspace statistics for every statistic a segment compares against. */
export function statisticsFor(requiredKeys) {
  const known = { "average(traits.lifetime_value)": 400, "max(traits.lifetime_value)": 1_950, "average(computed.revenue_90d)": 160, "median(computed.orders_90d)": 1 };
  return Object.fromEntries(requiredKeys.map((key) => {
    if (!(key in known)) throw new Error(`workload: no value for the statistic ${key}`);
    return [key, known[key]];
  }));
}

// ---------------------------------------------------------------- people

/** One visit: entry, browsing, maybe a cart, a checkout and an order. Times are offsets from the start, in ms. */
function session(r, person) {
  const out = [];
  let at = 0;
  const push = (type, name, properties) => {
    out.push({ type, name, properties, offset: at });
    at += (20 + r.int(280)) * 1000;
  };
  const entry = r();
  if (entry < 0.2) push("track", "Email Opened", { campaign: r.pick(CAMPAIGNS), email_id: `e-${r.int(1e6)}` });
  if (entry < 0.75) push("page", "Home", { path: "/", referrer: r.pick(["google", "direct", "email", "instagram"]) });
  if (r.chance(0.3)) push("track", "Products Searched", { query: r.pick(QUERIES) });
  const category = r.chance(0.7) ? r.pick(person.favourites) : r.pick(CATEGORIES);
  push("track", "Product List Viewed", { category, list_id: `list-${category}` });
  const viewed = [];
  for (let i = 0, n = 1 + r.int(4); i < n; i++) {
    const product = PRODUCTS[CATEGORIES.indexOf(category) + CATEGORIES.length * r.int(PRODUCTS.length / CATEGORIES.length)];
    viewed.push(product);
    push("track", "Product Viewed", { product_id: product.product_id, category: product.category, price: product.price, brand: product.brand, currency: "EUR" });
  }
  if (r.chance(0.12)) push("page", "Pricing", { path: "/pricing" });
  if (!r.chance(0.35)) return out;
  const cart = [];
  for (const product of viewed) {
    if (cart.length && !r.chance(0.3)) continue;
    cart.push(product);
    push("track", "Product Added", { product_id: product.product_id, category: product.category, price: product.price, quantity: 1 + r.int(2), related_categories: RELATED[product.category] });
  }
  if (r.chance(0.25)) push("track", "Product List Viewed", { category: r.pick(RELATED[category]), list_id: `list-related` });
  const value = cart.reduce((sum, p) => sum + p.price, 0);
  if (r.chance(0.6)) push("track", "Cart Viewed", { cart_id: `c-${r.int(1e6)}`, value });
  if (!r.chance(0.55)) return out;
  push("track", "Checkout Started", { value, currency: "EUR" });
  const coupon = r.chance(0.25) ? r.pick(COUPONS) : null;
  if (coupon) push("track", "Coupon Applied", { coupon });
  if (!r.chance(0.75)) return out;
  push("track", "Order Completed", {
    order_id: `o-${r.int(1e9)}`,
    revenue: value,
    currency: "EUR",
    ...(coupon ? { coupon } : {}),
    products: cart.map((p) => ({ product_id: p.product_id, category: p.category, price: p.price, ...(p.replenish_days ? { replenish_days: p.replenish_days } : {}) })),
  });
  return out;
}

/** Sessions until `count` events, each session starting at a time from `startAt(i)`; sorted by time. */
function eventsOf(r, person, count, startAt, prefix) {
  const out = [];
  for (let s = 0; out.length < count; s++) {
    const start = startAt(s);
    for (const e of session(r, person)) out.push({ ...e, timestamp: start + e.offset });
  }
  return out
    .slice(0, count)
    .sort((a, b) => a.timestamp - b.timestamp)
    .map((e, i) => ({ messageId: `${prefix}-${String(i).padStart(4, "0")}`, type: e.type, ...(e.type === "track" ? { event: e.name } : { name: e.name }), timestamp: e.timestamp, properties: e.properties }));
}

/**
 * `people` people, seeded: each `{ id, traits, history, newEvents }`; history is HISTORY_EVENTS
 * events over the HISTORY_DAYS before NOW, newEvents `newEvents` events in sessions from NOW on
 * (each person's start staggered by a few minutes).
 */
export function population(people, newEvents, seed = 42) {
  const r = rng(seed);
  return Array.from({ length: people }, (_, i) => {
    const id = `person-${String(i).padStart(5, "0")}`;
    const favourites = [r.pick(CATEGORIES), r.pick(CATEGORIES)];
    const person = { favourites };
    const traits = {
      email: r.chance(0.9) ? `user${i}@bench-mail.dev` : null,
      plan: r.pick(PLANS),
      country: r.pick(COUNTRIES),
      lifetime_value: Math.round(r() * 2_000),
      created_at: new Date(NOW - r.int(730) * DAY - r.int(DAY)).toISOString(),
      newsletter: r.chance(0.4),
      age: 18 + r.int(50),
      loyalty_tier: r.pick(TIERS),
    };
    const history = eventsOf(r, person, HISTORY_EVENTS, () => NOW - HISTORY_DAYS * DAY + r.int((HISTORY_DAYS * DAY) - 2 * HOUR), `${id}-h`);
    const start = NOW + r.int(10 * MINUTE);
    const fresh = eventsOf(r, person, newEvents, (s) => start + s * 3 * HOUR, `${id}-n`);
    return { id, traits, history, newEvents: fresh };
  });
}
