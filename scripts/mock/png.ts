/**
 * A small truecolour PNG encoder and two deterministic pixel sources: a procedural landscape for
 * the offline upstream and incompressible noise for size benchmarks.
 *
 * Pixels are packed RGB, 3 bytes per pixel, rows top to bottom.
 */
import * as zlib from "node:zlib";

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** The largest side a PNG may declare (the format's own limit is 2^31 - 1). */
const MAX_SIDE = 0x7fffffff;

export interface EncodePngOptions {
  /** zlib compression level, 0 (stored) to 9; 6 when absent */
  level?: number;
}

/** Encodes packed RGB pixels as an 8-bit truecolour PNG. */
export function encodePng(
  width: number,
  height: number,
  pixels: Uint8Array,
  options: EncodePngOptions = {},
): Uint8Array<ArrayBuffer> {
  checkSize(width, height);
  const stride = width * 3;
  if (pixels.length !== stride * height) {
    throw new RangeError(
      `Cannot encode ${width}x${height} PNG: expected ${
        stride * height
      } RGB bytes, got ${pixels.length}`,
    );
  }
  const level = options.level ?? 6;
  if (!Number.isInteger(level) || level < 0 || level > 9) {
    throw new RangeError(`Cannot encode PNG at level ${level}: expected an integer from 0 to 9`);
  }

  // Each scanline starts with its filter byte. Stored data gains nothing from filtering, so
  // level 0 keeps filter 0 (None); otherwise filter 1 (Sub) turns smooth gradients into runs of
  // small numbers that deflate well.
  const filtered = new Uint8Array((stride + 1) * height);
  const useSub = level > 0;
  for (let y = 0; y < height; y++) {
    const src = y * stride;
    const dst = y * (stride + 1);
    if (!useSub) {
      filtered[dst] = 0;
      filtered.set(pixels.subarray(src, src + stride), dst + 1);
      continue;
    }
    filtered[dst] = 1;
    filtered[dst + 1] = pixels[src]!;
    filtered[dst + 2] = pixels[src + 1]!;
    filtered[dst + 3] = pixels[src + 2]!;
    for (let i = 3; i < stride; i++) {
      filtered[dst + 1 + i] = (pixels[src + i]! - pixels[src + i - 3]!) & 0xff;
    }
  }
  const compressed = zlib.deflateSync(filtered, { level });
  const idat = new Uint8Array(compressed.buffer, compressed.byteOffset, compressed.byteLength);

  const ihdr = new Uint8Array(13);
  const ihdrView = new DataView(ihdr.buffer);
  ihdrView.setUint32(0, width);
  ihdrView.setUint32(4, height);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: truecolour
  ihdr[10] = 0; // compression: deflate
  ihdr[11] = 0; // filter method: adaptive
  ihdr[12] = 0; // interlace: none

  const chunks = [chunk("IHDR", ihdr), chunk("IDAT", idat), chunk("IEND", new Uint8Array(0))];
  let total = PNG_SIGNATURE.length;
  for (const c of chunks) total += c.length;
  const out = new Uint8Array(total);
  out.set(PNG_SIGNATURE, 0);
  let offset = PNG_SIGNATURE.length;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}

function checkSize(width: number, height: number): void {
  for (const [name, value] of [["width", width], ["height", height]] as const) {
    if (!Number.isInteger(value) || value < 1 || value > MAX_SIDE) {
      throw new RangeError(`Cannot use PNG ${name} ${value}: expected a positive integer`);
    }
  }
}

/** One chunk: big-endian length, 4-byte type, data, CRC-32 of type and data. */
function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

let crcTable: Uint32Array | undefined;

/** CRC-32 (ISO 3309, as PNG uses it); node:zlib's native one when the runtime has it. */
export function crc32(bytes: Uint8Array): number {
  const native = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;
  if (typeof native === "function") return native(bytes) >>> 0;
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** FNV-1a over the UTF-16 code units, then an avalanche step, so near seeds differ widely. */
function hashSeed(seed: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < seed.length; i++) {
    h ^= seed.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return mix32(h);
}

function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** mulberry32: a tiny seeded generator of floats in [0, 1), the same sequence for the same seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rgb = [number, number, number];

function hsl(h: number, s: number, l: number): Rgb {
  h = ((h % 360) + 360) % 360;
  const c = (1 - Math.abs(2 * l - 1)) * s;
  const x = c * (1 - Math.abs(((h / 60) % 2) - 1));
  const m = l - c / 2;
  const [r, g, b] = h < 60
    ? [c, x, 0]
    : h < 120
    ? [x, c, 0]
    : h < 180
    ? [0, c, x]
    : h < 240
    ? [0, x, c]
    : h < 300
    ? [x, 0, c]
    : [c, 0, x];
  return [(r + m) * 255, (g + m) * 255, (b + m) * 255];
}

function lerp(a: Rgb, b: Rgb, t: number): Rgb {
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
}

/** Smooth 2-D value noise in [0, 1) on an integer lattice hashed with the seed. */
function valueNoise(x: number, y: number, seed: number): number {
  const xi = Math.floor(x);
  const yi = Math.floor(y);
  const xf = x - xi;
  const yf = y - yi;
  const u = xf * xf * (3 - 2 * xf);
  const v = yf * yf * (3 - 2 * yf);
  const a = lattice(xi, yi, seed);
  const b = lattice(xi + 1, yi, seed);
  const c = lattice(xi, yi + 1, seed);
  const d = lattice(xi + 1, yi + 1, seed);
  return a + (b - a) * u + (c - a) * v + (a - b - c + d) * u * v;
}

function lattice(x: number, y: number, seed: number): number {
  return mix32(Math.imul(x, 0x27d4eb2d) ^ Math.imul(y, 0x165667b1) ^ seed) / 4294967296;
}

/**
 * A landscape at dusk, dawn or noon, decided by the seed: a graded sky with soft clouds, a sun
 * with its glow, and four ranges of hills fading into the haze. Same seed, same pixels.
 */
export function renderPicture(
  width: number,
  height: number,
  seed: string,
): Uint8Array<ArrayBuffer> {
  checkSize(width, height);
  const rand = seededRandom(hashSeed(seed));
  const noiseSeed = (rand() * 4294967296) >>> 0;

  const skyHue = 190 + rand() * 80; // blue to violet overhead
  const warmHue = (330 + rand() * 75) % 360; // rose to amber at the horizon
  const dusk = rand(); // 0: bright day, 1: deep dusk
  const skyTop = hsl(skyHue, 0.55 + 0.2 * rand(), 0.18 + 0.3 * (1 - dusk));
  const skyHorizon = hsl(warmHue, 0.65 + 0.25 * rand(), 0.62 + 0.15 * (1 - dusk));
  const sunColor = hsl(warmHue + 15, 0.9, 0.78);
  const hillHue = (skyHue + 100 + rand() * 60) % 360; // green to teal ridges
  const horizon = 0.5 + 0.15 * rand(); // share of the height that is sky

  const unit = Math.min(width, height);
  const sunX = (0.2 + 0.6 * rand()) * width;
  const sunY = (0.45 + 0.4 * rand()) * horizon * height;
  const sunR = (0.05 + 0.04 * rand()) * unit;
  const cloudCover = 0.3 + 0.22 * rand();
  const cloudScale = 3 / unit;

  // Ridge lines: each layer is a sum of sines with its own phases, plus a rougher noise term.
  const layers = 4;
  const ridges: Float32Array[] = [];
  const layerColors: Rgb[] = [];
  for (let i = 0; i < layers; i++) {
    const depth = i / (layers - 1); // 0 far, 1 near
    const base = horizon + (0.08 + 0.3 * depth) * (1 - horizon) - 0.12 * (1 - depth);
    const amplitude = (0.05 + 0.07 * rand()) * (1 - 0.35 * depth);
    const f1 = 1 + rand() * 2;
    const f2 = 3 + rand() * 4;
    const p1 = rand() * Math.PI * 2;
    const p2 = rand() * Math.PI * 2;
    const ridge = new Float32Array(width);
    for (let x = 0; x < width; x++) {
      const t = x / width;
      const wave = 0.65 * Math.sin(t * f1 * Math.PI * 2 + p1) +
        0.25 * Math.sin(t * f2 * Math.PI * 2 + p2) +
        0.35 * (valueNoise(x * 12 / unit, i * 7.3, noiseSeed) - 0.5);
      ridge[x] = (base - amplitude * wave) * height;
    }
    ridges.push(ridge);
    const solid = hsl(hillHue + 12 * i, 0.3 + 0.2 * depth, 0.34 - 0.15 * depth);
    layerColors.push(lerp(skyHorizon, solid, 0.35 + 0.65 * depth));
  }

  const out = new Uint8Array(width * height * 3);
  let o = 0;
  for (let y = 0; y < height; y++) {
    const skyT = Math.min(1, y / (horizon * height));
    const sky = lerp(skyTop, skyHorizon, skyT * skyT * (3 - 2 * skyT));
    for (let x = 0; x < width; x++) {
      let layer = -1;
      for (let i = layers - 1; i >= 0; i--) {
        if (y >= ridges[i]![x]!) {
          layer = i;
          break;
        }
      }
      let r: number;
      let g: number;
      let b: number;
      if (layer >= 0) {
        const color = layerColors[layer]!;
        // Ridges darken a little with depth below their crest.
        const below = Math.min(1, (y - ridges[layer]![x]!) / (0.25 * height));
        const texture = valueNoise(x * 16 / unit, y * 40 / unit, noiseSeed ^ layer);
        const shade = (1 - 0.22 * below) * (0.95 + 0.08 * texture);
        r = color[0] * shade;
        g = color[1] * shade;
        b = color[2] * shade;
      } else {
        r = sky[0];
        g = sky[1];
        b = sky[2];
        const dx = x - sunX;
        const dy = y - sunY;
        const d = Math.sqrt(dx * dx + dy * dy) / sunR;
        // The glow peaks at the rim and the disc fades in over it, so the edge stays soft.
        const glow = d < 1 ? 0.55 : 0.55 / (1 + (d - 1) * (d - 1) * 0.6);
        const disc = d < 1 ? Math.min(1, (1 - d) * 8) : 0;
        const sun = glow + (1 - glow) * disc;
        r += (sunColor[0] - r) * sun;
        g += (sunColor[1] - g) * sun;
        b += (sunColor[2] - b) * sun;
        const cx = x * cloudScale;
        const cy = y * cloudScale * 2.5;
        const n = 0.55 * valueNoise(cx, cy, noiseSeed) +
          0.3 * valueNoise(cx * 2.1, cy * 2.1, noiseSeed ^ 0x9e3779b9) +
          0.15 * valueNoise(cx * 4.3, cy * 4.3, noiseSeed ^ 0x7f4a7c15);
        const cloud = Math.max(0, Math.min(1, (n - (1 - cloudCover)) * 3)) * (1 - 0.5 * skyT);
        if (cloud > 0) {
          const lit = 0.75 + 0.25 * skyT;
          r += (skyHorizon[0] * lit + 60 * (1 - dusk) - r) * cloud;
          g += (skyHorizon[1] * lit + 60 * (1 - dusk) - g) * cloud;
          b += (skyHorizon[2] * lit + 70 * (1 - dusk) - b) * cloud;
        }
      }
      // A faint grain keeps long gradients from banding.
      const grain = ((mix32((y * width + x) ^ noiseSeed) & 7) - 3.5) * 0.8;
      out[o++] = clampByte(r + grain);
      out[o++] = clampByte(g + grain);
      out[o++] = clampByte(b + grain);
    }
  }
  return out;
}

function clampByte(v: number): number {
  return v <= 0 ? 0 : v >= 255 ? 255 : v | 0;
}

/** Uniform xorshift32 noise: pixels that no compressor can shrink. Same seed, same bytes. */
export function renderNoise(
  width: number,
  height: number,
  seed: string,
): Uint8Array<ArrayBuffer> {
  checkSize(width, height);
  const length = width * height * 3;
  const words = new Uint32Array(Math.ceil(length / 4));
  let s = hashSeed(seed) || 0x9e3779b9;
  for (let i = 0; i < words.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    words[i] = s;
  }
  const bytes = new Uint8Array(words.buffer, 0, length);
  return length % 4 === 0 ? bytes : bytes.slice();
}
