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

/** Searched directly, a short way: most searches end within it. */
const NEAR_BYTES = 1024;
/** Beyond, the bytes are searched as text a block at a time. */
const BLOCK_BYTES = 64 * 1024;
const utf8 = new TextDecoder();

/**
 * The index of the first byte at or after `from` that is `byte` or `orByte` (both ASCII), or
 * -1: `Uint8Array#indexOf` at several times its speed over long runs such as base64. A block
 * decoded from UTF-8 to as many characters as it has bytes has one character per byte, each
 * ASCII byte itself, so its text's indexes are the block's; a block that decodes shorter is
 * searched as bytes.
 */
export function indexOfAscii(bytes: Uint8Array, byte: number, from = 0, orByte = byte): number {
  const first = (a: number, b: number) => a === -1 ? b : b === -1 ? a : Math.min(a, b);
  const nearEnd = Math.min(bytes.length, from + NEAR_BYTES);
  const near = bytes.subarray(from, nearEnd);
  const inNear = first(near.indexOf(byte), orByte === byte ? -1 : near.indexOf(orByte));
  if (inNear !== -1) return from + inNear;
  const char = String.fromCharCode(byte);
  const orChar = String.fromCharCode(orByte);
  for (let start = nearEnd; start < bytes.length; start += BLOCK_BYTES) {
    const block = bytes.subarray(start, Math.min(bytes.length, start + BLOCK_BYTES));
    const text = utf8.decode(block);
    const found = text.length === block.length
      ? first(text.indexOf(char), orChar === char ? -1 : text.indexOf(orChar))
      : first(block.indexOf(byte), orByte === byte ? -1 : block.indexOf(orByte));
    if (found !== -1) return start + found;
  }
  return -1;
}
