/**
 * Pulls a secret from `Authorization`: Basic with the secret as username and an
 * empty password (Segment's style), or Bearer.
 */
export function credentialFromHeader(header: string | null | undefined): string | undefined {
  if (!header) return undefined;
  const [scheme, value] = header.split(" ", 2);
  if (!scheme || !value) return undefined;
  if (scheme.toLowerCase() === "bearer") return value.trim() || undefined;
  if (scheme.toLowerCase() === "basic") {
    let decoded: string;
    try {
      decoded = atob(value.trim());
    } catch {
      return undefined;
    }
    const colon = decoded.indexOf(":");
    const username = colon === -1 ? decoded : decoded.slice(0, colon);
    return username || undefined;
  }
  return undefined;
}
