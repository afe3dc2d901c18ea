export interface ImageInfo {
  mimeType: "image/png" | "image/jpeg" | "image/webp" | "image/gif";
  extension: "png" | "jpg" | "webp" | "gif";
  /** Null only for a JPEG whose frame header lies beyond the bytes looked at. */
  width: number | null;
  height: number | null;
}

/** How many leading bytes `sniffImage` wants: enough for a JPEG's metadata before its frame. */
export const SNIFF_BYTES = 256 * 1024;

/** Tells an image from its first bytes by signature, and reads its size from the header. */
export function sniffImage(head: Uint8Array): ImageInfo | null {
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (startsWith(head, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) {
    const size = head.length >= 24 && ascii(head, 12, 4) === "IHDR"
      ? { width: view.getUint32(16), height: view.getUint32(20) }
      : { width: null, height: null };
    return { mimeType: "image/png", extension: "png", ...size };
  }
  if (startsWith(head, [0xff, 0xd8, 0xff])) {
    return { mimeType: "image/jpeg", extension: "jpg", ...jpegSize(head, view) };
  }
  if (ascii(head, 0, 4) === "RIFF" && ascii(head, 8, 4) === "WEBP") {
    return { mimeType: "image/webp", extension: "webp", ...webpSize(head, view) };
  }
  const gif = ascii(head, 0, 6);
  if (gif === "GIF87a" || gif === "GIF89a") {
    const size = head.length >= 10
      ? { width: view.getUint16(6, true), height: view.getUint16(8, true) }
      : { width: null, height: null };
    return { mimeType: "image/gif", extension: "gif", ...size };
  }
  return null;
}

type Size = { width: number | null; height: number | null };
const UNKNOWN: Size = { width: null, height: null };

/** Walks the JPEG segments to the first start-of-frame marker. */
function jpegSize(head: Uint8Array, view: DataView): Size {
  let offset = 2;
  while (offset + 9 <= head.length) {
    if (head[offset] !== 0xff) return UNKNOWN;
    const marker = head[offset + 1]!;
    if (marker === 0xff) {
      offset++;
      continue;
    }
    const isFrame = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 &&
      marker !== 0xcc;
    if (isFrame) return { height: view.getUint16(offset + 5), width: view.getUint16(offset + 7) };
    if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
      offset += 2;
      continue;
    }
    offset += 2 + view.getUint16(offset + 2);
  }
  return UNKNOWN;
}

function webpSize(head: Uint8Array, view: DataView): Size {
  const chunk = ascii(head, 12, 4);
  if (chunk === "VP8 " && head.length >= 30) {
    return { width: view.getUint16(26, true) & 0x3fff, height: view.getUint16(28, true) & 0x3fff };
  }
  if (chunk === "VP8L" && head.length >= 25) {
    const bits = view.getUint32(21, true);
    return { width: (bits & 0x3fff) + 1, height: ((bits >> 14) & 0x3fff) + 1 };
  }
  if (chunk === "VP8X" && head.length >= 30) {
    return { width: uint24(head, 24) + 1, height: uint24(head, 27) + 1 };
  }
  return UNKNOWN;
}

function uint24(bytes: Uint8Array, offset: number): number {
  return bytes[offset]! | (bytes[offset + 1]! << 8) | (bytes[offset + 2]! << 16);
}

function startsWith(bytes: Uint8Array, signature: number[]): boolean {
  return bytes.length >= signature.length && signature.every((byte, i) => bytes[i] === byte);
}

function ascii(bytes: Uint8Array, offset: number, length: number): string {
  if (bytes.length < offset + length) return "";
  return String.fromCharCode(...bytes.subarray(offset, offset + length));
}
