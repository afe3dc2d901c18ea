/**
 * What several modules need of bytes: writing all of a buffer, joining buffers, and the ASCII
 * characters the byte-level readers look for.
 */

export const ASCII = {
  TAB: 0x09,
  LF: 0x0a,
  CR: 0x0d,
  SPACE: 0x20,
  QUOTE: 0x22,
  COLON: 0x3a,
  BACKSLASH: 0x5c,
} as const;

/** Anything written to in pieces: a file, standard output. */
export interface Writable {
  write(bytes: Uint8Array): Promise<number>;
}

/** Writes all of `bytes`, however few of them each call takes. */
export async function writeAll(target: Writable, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await target.write(bytes.subarray(offset));
}

/** The chunks one after another, as one array. */
export function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const all = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.length;
  }
  return all;
}
