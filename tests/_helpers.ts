/** Small things several test files need. */
import assert from "node:assert/strict";
import type { FailureResult, GenerationResult, SuccessResult } from "../lib/mod.ts";
import { seededRandom } from "../scripts/mock/png.ts";
import { constants as osConstants } from "node:os";

/** The smallest input that passes validation: every required parameter, nothing else. */
export const VALID_INPUT = {
  prompt: "an orange cat by the window",
  base_url: "https://api.example.com/v1",
  api_key: "sk-test-0123456789",
  model: "gpt-image-2",
  size: "1024x1024",
  task_name: "orange-cat",
  timeout_ms: 300000,
} as const;

/** The result, which must be a success (the whole result shows when it is not). */
export function success(result: GenerationResult): SuccessResult {
  assert.equal(result.ok, true, JSON.stringify(result, null, 2));
  return result as SuccessResult;
}

/** The result, which must be a failure. */
export function failure(result: GenerationResult): FailureResult {
  assert.equal(result.ok, false, JSON.stringify(result, null, 2));
  return result as FailureResult;
}

/** Runs `fn` with a fresh temporary folder, removed afterwards whatever happens. */
export async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "img2-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A small deterministic generator, so that a failing case can be run again. */
export const randomSource = seededRandom;

export function randomBytes(length: number, seed: number): Uint8Array {
  const random = randomSource(seed);
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = Math.floor(random() * 256);
  return bytes;
}

export { concat } from "../lib/shared/bytes.ts";

/** A stream that hands out `bytes` cut at the given offsets, and records whether it was cancelled. */
export class ChunkedBody {
  cancelled = false;
  readonly stream: ReadableStream<Uint8Array>;

  constructor(bytes: Uint8Array, cuts: number[]) {
    const pieces: Uint8Array[] = [];
    let start = 0;
    for (const cut of [...cuts, bytes.length]) {
      pieces.push(bytes.slice(start, cut));
      start = cut;
    }
    let index = 0;
    this.stream = new ReadableStream<Uint8Array>({
      pull: (controller) => {
        const piece = pieces[index++];
        if (piece === undefined) controller.close();
        else controller.enqueue(piece);
      },
      cancel: () => {
        this.cancelled = true;
      },
    }, { highWaterMark: 0 });
  }
}

/** Every cut of `text` in two, and the cut into single bytes. */
export function everyCut(text: string): number[][] {
  const length = new TextEncoder().encode(text).length;
  const cuts: number[][] = [];
  for (let i = 0; i <= length; i++) cuts.push([i]);
  cuts.push(Array.from({ length: length - 1 }, (_, i) => i + 1));
  return cuts;
}

/** Offsets that cut `length` bytes into random pieces of 1 to `maxPiece` bytes. */
export function randomCuts(length: number, maxPiece: number, seed: number): number[] {
  const random = randomSource(seed);
  const cuts: number[] = [];
  for (let at = 1 + Math.floor(random() * maxPiece); at < length;) {
    cuts.push(at);
    at += 1 + Math.floor(random() * maxPiece);
  }
  return cuts;
}

export function sameBytes(actual: Uint8Array, expected: Uint8Array): boolean {
  return actual.length === expected.length && actual.every((byte, i) => byte === expected[i]);
}

/**
 * Resolves once process `pid` catches every one of `signals` (its SigCgt mask in /proc has their
 * bits), so that a signal sent next reaches the program's own listener. Deno itself catches
 * SIGTERM from its first instant; wait for a signal only the program listens to as well (SIGQUIT).
 */
export async function signalsCaught(
  pid: number,
  signals: (keyof typeof osConstants.signals)[],
): Promise<void> {
  const wanted = signals.reduce(
    (mask, name) => mask | 1n << BigInt(osConstants.signals[name] - 1),
    0n,
  );
  for (let attempt = 0; attempt < 2000; attempt++) {
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    const caught = BigInt(`0x${/^SigCgt:\s*([0-9a-f]+)$/m.exec(status)?.[1] ?? "0"}`);
    if ((caught & wanted) === wanted) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`Process ${pid} did not catch ${signals.join(", ")} within 20 s`);
}
