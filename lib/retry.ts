const FIRST_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 30_000;

/**
 * Exponential backoff with full jitter around the nominal delay: about 1 s, 2 s, 4 s … at most
 * 30 s, each between half and one and a half times its nominal value.
 */
export function backoffMs(attempt: number, random: () => number = Math.random): number {
  const nominal = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** attempt);
  return Math.round(nominal * (0.5 + random()));
}
