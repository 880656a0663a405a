/**
 * String similarity for record linkage: Jaro, Jaro–Winkler and Soundex.
 * Pure functions over code points (not UTF-16 units), so accented and
 * non-Latin names compare character by character.
 */

/** Lowercase letters only: accents, spaces, hyphens and apostrophes removed (O'Brien = OBrien, José = Jose). */
export function normalizeName(name?: string): string | undefined {
  const normalized = name?.normalize("NFKD").replace(/\p{M}/gu, "").toLowerCase().replace(/[^\p{L}]/gu, "");
  return normalized || undefined;
}

/**
 * Jaro similarity in [0, 1]: characters match when equal and no further apart
 * than half the longer string's length minus one; the score averages the share
 * of matched characters in each string and the share of matches in order.
 */
export function jaro(a: string, b: string): number {
  const s = Array.from(a);
  const t = Array.from(b);
  if (s.length === 0 && t.length === 0) return 1;
  if (s.length === 0 || t.length === 0) return 0;
  const window = Math.max(0, Math.floor(Math.max(s.length, t.length) / 2) - 1);
  const sMatched = new Array<boolean>(s.length).fill(false);
  const tMatched = new Array<boolean>(t.length).fill(false);
  let matches = 0;
  for (let i = 0; i < s.length; i++) {
    const from = Math.max(0, i - window);
    const to = Math.min(t.length - 1, i + window);
    for (let j = from; j <= to; j++) {
      if (tMatched[j] || s[i] !== t[j]) continue;
      sMatched[i] = tMatched[j] = true;
      matches++;
      break;
    }
  }
  if (matches === 0) return 0;
  // Transpositions: matched characters that are out of order, counted in pairs.
  let outOfOrder = 0;
  let k = 0;
  for (let i = 0; i < s.length; i++) {
    if (!sMatched[i]) continue;
    while (!tMatched[k]) k++;
    if (s[i] !== t[k]) outOfOrder++;
    k++;
  }
  const transpositions = outOfOrder / 2;
  return (matches / s.length + matches / t.length + (matches - transpositions) / matches) / 3;
}

/**
 * Jaro–Winkler: Jaro boosted for a shared prefix (up to 4 characters, scale
 * 0.1, Winkler's values), since typos are rarer at the start of names.
 */
export function jaroWinkler(a: string, b: string, prefixScale = 0.1): number {
  const similarity = jaro(a, b);
  const s = Array.from(a);
  const t = Array.from(b);
  let prefix = 0;
  while (prefix < 4 && prefix < s.length && prefix < t.length && s[prefix] === t[prefix]) prefix++;
  return similarity + prefix * prefixScale * (1 - similarity);
}

const SOUNDEX_CODES: Record<string, string> = {
  b: "1", f: "1", p: "1", v: "1",
  c: "2", g: "2", j: "2", k: "2", q: "2", s: "2", x: "2", z: "2",
  d: "3", t: "3",
  l: "4",
  m: "5", n: "5",
  r: "6",
};

/**
 * American Soundex (first letter + 3 digits, e.g. Robert → R163) for a name
 * of ASCII letters; `undefined` for anything else (the caller falls back to
 * a prefix). H and W do not separate letters with the same code; vowels do.
 */
export function soundex(name: string): string | undefined {
  const letters = name.toLowerCase();
  if (!/^[a-z]+$/.test(letters)) return undefined;
  let code = letters[0]!.toUpperCase();
  let previous = SOUNDEX_CODES[letters[0]!] ?? "";
  for (const letter of letters.slice(1)) {
    if (code.length === 4) break;
    const digit = SOUNDEX_CODES[letter];
    if (digit !== undefined && digit !== previous) code += digit;
    if (letter !== "h" && letter !== "w") previous = digit ?? "";
  }
  return code.padEnd(4, "0");
}
