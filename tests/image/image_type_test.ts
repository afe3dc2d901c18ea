import assert from "node:assert/strict";
import { type ImageInfo, SNIFF_BYTES, sniffImage } from "../../lib/image/image_type.ts";

const ascii = (text: string) => [...text].map((char) => char.charCodeAt(0));
const u16be = (value: number) => [(value >> 8) & 0xff, value & 0xff];
const u16le = (value: number) => [value & 0xff, (value >> 8) & 0xff];
const u24le = (value: number) => [value & 0xff, (value >> 8) & 0xff, (value >> 16) & 0xff];
const u32be = (value: number) => [
  (value >>> 24) & 0xff,
  (value >> 16) & 0xff,
  (value >> 8) & 0xff,
  value & 0xff,
];
const u32le = (value: number) => [...u32be(value)].reverse();

/** The PNG signature and an IHDR chunk for an 8-bit truecolour image. */
function png(width: number, height: number): Uint8Array {
  return new Uint8Array([
    0x89,
    0x50,
    0x4e,
    0x47,
    0x0d,
    0x0a,
    0x1a,
    0x0a,
    ...u32be(13),
    ...ascii("IHDR"),
    ...u32be(width),
    ...u32be(height),
    8,
    2,
    0,
    0,
    0,
    ...[0x90, 0x77, 0x53, 0xde],
  ]);
}

/** A JPEG segment: marker, then a length that counts itself, then the payload. */
function segment(marker: number, payload: number[]): number[] {
  return [0xff, marker, ...u16be(payload.length + 2), ...payload];
}

function jfif(): number[] {
  return segment(0xe0, [...ascii("JFIF"), 0, 1, 1, 0, 0, 1, 0, 1, 0, 0]);
}

/** A frame header: precision, height, width, three components. */
function frame(marker: number, width: number, height: number): number[] {
  return segment(marker, [
    8,
    ...u16be(height),
    ...u16be(width),
    3,
    1,
    0x22,
    0,
    2,
    0x11,
    1,
    3,
    0x11,
    1,
  ]);
}

function jpeg(parts: number[][]): Uint8Array {
  return new Uint8Array([0xff, 0xd8, ...parts.flat(), 0xff, 0xd9]);
}

function riff(chunk: number[]): Uint8Array {
  return new Uint8Array([...ascii("RIFF"), ...u32le(chunk.length + 4), ...ascii("WEBP"), ...chunk]);
}

/** A lossy WebP: its key frame header holds 14-bit sizes with 2 scale bits on top. */
function webpVp8(width: number, height: number, scaleBits = 0): Uint8Array {
  const frameData = [
    0x9d,
    0x01,
    0x2a,
    ...u16le(width | (scaleBits << 14)),
    ...u16le(height | (scaleBits << 14)),
    0,
    0,
  ];
  const payload = [0x50, 0x2a, 0x00, ...frameData];
  return riff([...ascii("VP8 "), ...u32le(payload.length), ...payload]);
}

/** A lossless WebP: after the 0x2f signature, width-1 and height-1 in 14 bits each. */
function webpVp8l(width: number, height: number): Uint8Array {
  const bits = ((width - 1) | ((height - 1) << 14) | (1 << 28)) >>> 0;
  const payload = [0x2f, ...u32le(bits), 0, 0, 0];
  return riff([...ascii("VP8L"), ...u32le(payload.length), ...payload]);
}

/** An extended WebP: flags, reserved bytes, then canvas width-1 and height-1 in 24 bits. */
function webpVp8x(width: number, height: number): Uint8Array {
  const payload = [0x10, 0, 0, 0, ...u24le(width - 1), ...u24le(height - 1)];
  return riff([...ascii("VP8X"), ...u32le(payload.length), ...payload]);
}

function gif(version: "GIF87a" | "GIF89a", width: number, height: number): Uint8Array {
  return new Uint8Array([...ascii(version), ...u16le(width), ...u16le(height), 0xf7, 0, 0]);
}

const PNG = (width: number | null, height: number | null): ImageInfo => ({
  mimeType: "image/png",
  extension: "png",
  width,
  height,
});
const JPEG = (width: number | null, height: number | null): ImageInfo => ({
  mimeType: "image/jpeg",
  extension: "jpg",
  width,
  height,
});
const WEBP = (width: number | null, height: number | null): ImageInfo => ({
  mimeType: "image/webp",
  extension: "webp",
  width,
  height,
});
const GIF = (width: number | null, height: number | null): ImageInfo => ({
  mimeType: "image/gif",
  extension: "gif",
  width,
  height,
});

Deno.test("sniffImage() reads a PNG's size from IHDR", () => {
  assert.deepEqual(sniffImage(png(1024, 1536)), PNG(1024, 1536));
  assert.deepEqual(sniffImage(png(3840, 2160)), PNG(3840, 2160));
  assert.deepEqual(sniffImage(png(1, 1)), PNG(1, 1));
});

Deno.test("sniffImage() reads PNG sizes above 2^31 as unsigned", () => {
  assert.deepEqual(sniffImage(png(0x80000000, 0xffffffff)), PNG(2147483648, 4294967295));
});

Deno.test("sniffImage() knows a PNG cut before its size", () => {
  assert.deepEqual(sniffImage(png(640, 480).subarray(0, 8)), PNG(null, null));
  assert.deepEqual(sniffImage(png(640, 480).subarray(0, 23)), PNG(null, null));
  assert.deepEqual(sniffImage(png(640, 480).subarray(0, 24)), PNG(640, 480));
});

Deno.test("sniffImage() leaves a PNG size unknown when IHDR is not first", () => {
  const bytes = png(640, 480);
  bytes.set(ascii("tEXt"), 12);
  assert.deepEqual(sniffImage(bytes), PNG(null, null));
});

Deno.test("sniffImage() reads a baseline JPEG's size from SOF0", () => {
  assert.deepEqual(sniffImage(jpeg([jfif(), frame(0xc0, 1024, 768)])), JPEG(1024, 768));
});

Deno.test("sniffImage() reads a progressive JPEG's size from SOF2", () => {
  assert.deepEqual(sniffImage(jpeg([jfif(), frame(0xc2, 1536, 1024)])), JPEG(1536, 1024));
});

Deno.test("sniffImage() reads SOF1 and SOF3 frames too", () => {
  assert.deepEqual(sniffImage(jpeg([frame(0xc1, 300, 200)])), JPEG(300, 200));
  assert.deepEqual(sniffImage(jpeg([frame(0xc3, 17, 19)])), JPEG(17, 19));
});

Deno.test("sniffImage() walks past APP, DQT and DHT segments to the frame", () => {
  const exif = segment(0xe1, [...ascii("Exif"), 0, 0, ...new Array(3000).fill(0x41)]);
  const icc = segment(0xe2, new Array(600).fill(0x07));
  const dqt = segment(0xdb, new Array(65).fill(1));
  const dht = segment(0xc4, new Array(28).fill(0));
  assert.deepEqual(
    sniffImage(jpeg([jfif(), exif, icc, dqt, dht, frame(0xc0, 2048, 1152)])),
    JPEG(2048, 1152),
  );
});

Deno.test("sniffImage() is not fooled by frame-like bytes inside an APP segment", () => {
  const decoy = segment(0xe1, [0xff, 0xc0, 0x00, 0x11, 0x08, 0x00, 0x10, 0x00, 0x20, 0, 0, 0]);
  assert.deepEqual(sniffImage(jpeg([jfif(), decoy, frame(0xc0, 800, 600)])), JPEG(800, 600));
});

Deno.test("sniffImage() does not read DHT, JPG or DAC markers as frames", () => {
  const dht = segment(0xc4, [0, 0x10, 0x20, 0x30, 0x40, 0, 0, 0, 0, 0]);
  const jpg = segment(0xc8, [0, 0x10, 0x20, 0x30, 0x40, 0, 0, 0, 0, 0]);
  const dac = segment(0xcc, [0, 0x10, 0x20, 0x30, 0x40, 0, 0, 0, 0, 0]);
  assert.deepEqual(sniffImage(jpeg([dht, jpg, dac, frame(0xc0, 64, 48)])), JPEG(64, 48));
});

Deno.test("sniffImage() skips fill bytes before a JPEG marker", () => {
  const bytes = jpeg([jfif(), [0xff, 0xff, 0xff], frame(0xc0, 320, 240)]);
  assert.deepEqual(sniffImage(bytes), JPEG(320, 240));
});

Deno.test("sniffImage() knows a JPEG whose frame lies beyond the head", () => {
  const exif = segment(0xe1, new Array(5000).fill(0));
  const bytes = jpeg([jfif(), exif, frame(0xc0, 320, 240)]);
  assert.deepEqual(sniffImage(bytes.subarray(0, 3000)), JPEG(null, null));
  assert.deepEqual(sniffImage(new Uint8Array([0xff, 0xd8, 0xff])), JPEG(null, null));
});

Deno.test("sniffImage() reads a JPEG size when the head ends right after the width", () => {
  const bytes = jpeg([jfif(), frame(0xc0, 1280, 720)]);
  const sof = bytes.indexOf(0xc0) - 1;
  assert.deepEqual(sniffImage(bytes.subarray(0, sof + 9)), JPEG(1280, 720));
});

Deno.test("sniffImage() gives up on a JPEG whose segments lose their markers", () => {
  const bytes = jpeg([jfif(), [0x00, 0x00], frame(0xc0, 320, 240)]);
  assert.deepEqual(sniffImage(bytes), JPEG(null, null));
});

Deno.test("sniffImage() reads a lossy WebP's size from its VP8 frame", () => {
  assert.deepEqual(sniffImage(webpVp8(1024, 768)), WEBP(1024, 768));
  assert.deepEqual(sniffImage(webpVp8(16383, 1)), WEBP(16383, 1));
});

Deno.test("sniffImage() ignores the scale bits of a VP8 size", () => {
  assert.deepEqual(sniffImage(webpVp8(640, 480, 3)), WEBP(640, 480));
});

Deno.test("sniffImage() reads a lossless WebP's size from its VP8L header", () => {
  assert.deepEqual(sniffImage(webpVp8l(1024, 1536)), WEBP(1024, 1536));
  assert.deepEqual(sniffImage(webpVp8l(1, 1)), WEBP(1, 1));
  assert.deepEqual(sniffImage(webpVp8l(16384, 16384)), WEBP(16384, 16384));
});

Deno.test("sniffImage() reads an extended WebP's canvas size from VP8X", () => {
  assert.deepEqual(sniffImage(webpVp8x(3840, 2160)), WEBP(3840, 2160));
  assert.deepEqual(sniffImage(webpVp8x(1 << 24, 1)), WEBP(16777216, 1));
});

Deno.test("sniffImage() knows a WebP with an unknown first chunk or cut short", () => {
  const bytes = webpVp8x(100, 100);
  bytes.set(ascii("ALPH"), 12);
  assert.deepEqual(sniffImage(bytes), WEBP(null, null));
  assert.deepEqual(sniffImage(webpVp8(100, 100).subarray(0, 29)), WEBP(null, null));
  assert.deepEqual(sniffImage(webpVp8l(100, 100).subarray(0, 24)), WEBP(null, null));
  assert.deepEqual(sniffImage(webpVp8x(100, 100).subarray(0, 16)), WEBP(null, null));
});

Deno.test("sniffImage() reads a GIF's logical screen size", () => {
  assert.deepEqual(sniffImage(gif("GIF89a", 500, 300)), GIF(500, 300));
  assert.deepEqual(sniffImage(gif("GIF87a", 65535, 1)), GIF(65535, 1));
  assert.deepEqual(sniffImage(gif("GIF89a", 500, 300).subarray(0, 9)), GIF(null, null));
});

Deno.test("sniffImage() reads an image that starts inside a larger buffer", () => {
  const buffer = new Uint8Array(100);
  const image = png(777, 555);
  buffer.set(image, 13);
  assert.deepEqual(sniffImage(buffer.subarray(13, 13 + image.length)), PNG(777, 555));
  const gifBuffer = new Uint8Array(50);
  gifBuffer.set(gif("GIF89a", 12, 34), 7);
  assert.deepEqual(sniffImage(gifBuffer.subarray(7)), GIF(12, 34));
});

Deno.test("sniffImage() returns null for bytes that are not an image", () => {
  const encoder = new TextEncoder();
  const cases: [string, Uint8Array][] = [
    ["empty", new Uint8Array()],
    ["text", encoder.encode("hello, world")],
    ["JSON", encoder.encode('{"error":{"message":"bad"}}')],
    ["HTML", encoder.encode("<!DOCTYPE html><html><title>502</title></html>")],
    ["SVG", encoder.encode('<svg xmlns="http://www.w3.org/2000/svg"/>')],
    ["PDF", encoder.encode("%PDF-1.7\n")],
    ["ZIP", new Uint8Array([0x50, 0x4b, 0x03, 0x04, 0, 0, 0, 0])],
    ["BMP", new Uint8Array([0x42, 0x4d, 0x36, 0, 0, 0, 0, 0, 0, 0, 0x36, 0, 0, 0])],
    ["WAV", new Uint8Array([...ascii("RIFF"), 0, 0, 0, 0, ...ascii("WAVEfmt ")])],
    ["GIF88a", encoder.encode("GIF88a\x01\x00\x01\x00")],
    ["PNG prefix", png(1, 1).subarray(0, 7)],
    ["PNG with one byte wrong", png(1, 1).map((byte, i) => i === 1 ? 0x51 : byte)],
    ["JPEG prefix", new Uint8Array([0xff, 0xd8])],
    ["RIFF alone", new Uint8Array(ascii("RIFF"))],
    ["zeros", new Uint8Array(64)],
    ["base64 text of a PNG", encoder.encode(png(1, 1).toBase64())],
  ];
  for (const [name, bytes] of cases) assert.equal(sniffImage(bytes), null, name);
});

Deno.test("sniffImage() asks for enough bytes to pass a JPEG's metadata", () => {
  assert.equal(SNIFF_BYTES, 256 * 1024);
  const exif = segment(0xe1, new Array(65000).fill(0));
  const parts = [jfif(), exif, exif, exif, frame(0xc2, 4096, 2304)];
  const bytes = jpeg(parts);
  assert.ok(bytes.length < SNIFF_BYTES);
  assert.deepEqual(sniffImage(bytes), JPEG(4096, 2304));
});
