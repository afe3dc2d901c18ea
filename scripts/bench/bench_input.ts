/**
 * The input part of `deno task bench`, in process: how long validation takes on hostile input,
 * and whether decoding base64 costs the same per byte however long the text is, with the worst
 * text there is for the decoder (whitespace only, which decodes to nothing).
 */
import { Base64Error, Base64StreamDecoder } from "../../lib/image/base64_stream.ts";
import { validateParams } from "../../lib/params/params.ts";
import { median } from "./bench_time.ts";
import { fmt, round, type TargetCheck } from "./bench_report.ts";

/** The timeout_ms the hostile input carries: validation must be done well within it. */
const HOSTILE_TIMEOUT_MS = 500;
/** The whitespace-only texts, in MiB; the second is four times the first. */
const WHITESPACE_MIB = [64, 256] as const;
/** The pieces the decoder is given, as a response body would arrive. */
const PIECE_CHARS = 64 * 1024;
/** Time per byte on the long text may exceed that on the short one by this factor. */
export const PER_BYTE_GROWTH = 1.25;
const RUNS = 5;
/** A decoder that is not linear would take minutes on the long text: it is given up on after this. */
const DECODE_BUDGET_MS = 30_000;

export interface InputMeasurement {
  name: string;
  label: string;
  /** Medians over the runs */
  ms: number;
  runs_ms: number[];
  /** For the decoding rows: characters decoded */
  chars?: number;
  /** For the decoding rows: the decoder ran past its budget, after this many characters */
  gave_up_after_chars?: number;
}

/** Every parameter at its worst: a 1 MiB unknown name and 50 000-character values. */
function hostileInput(): Record<string, unknown> {
  const long = "猫".repeat(50_000);
  return {
    prompt: long,
    base_url: "https://api.example.com/v1",
    api_key: "sk-bench",
    model: "gpt-image-2",
    size: "1024x1024",
    task_name: long,
    timeout_ms: HOSTILE_TIMEOUT_MS,
    user: " ".repeat(50_000),
    ["timeout_ms".repeat(100_000)]: 1,
    [long]: long,
  };
}

function validateHostile(): void {
  try {
    validateParams(hostileInput());
  } catch {
    return;
  }
  throw new Error("validateParams() accepted the hostile input");
}

/** Decodes `mib` MiB of whitespace; the characters pushed when it ran past its budget, else null. */
async function decodeWhitespace(mib: number): Promise<number | null> {
  const piece = " \n\t\r".repeat(PIECE_CHARS / 4);
  const decoder = new Base64StreamDecoder(() => Promise.resolve());
  const pieces = mib * 1024 * 1024 / PIECE_CHARS;
  const started = performance.now();
  for (let i = 0; i < pieces; i++) {
    await decoder.push(piece);
    if (performance.now() - started > DECODE_BUDGET_MS) return (i + 1) * PIECE_CHARS;
  }
  try {
    await decoder.finish();
  } catch (error) {
    if (error instanceof Base64Error) return null;
    throw error;
  }
  throw new Error("The decoder found bytes in whitespace");
}

function mib2(chars: number): string {
  return (chars / 2 ** 20).toFixed(1);
}

async function timeRuns(fn: () => unknown): Promise<number[]> {
  const runs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const started = performance.now();
    await fn();
    runs.push(round(performance.now() - started, 2));
  }
  return runs;
}

export async function measureInput(
  progress: (message: string) => void,
): Promise<InputMeasurement[]> {
  progress("input: validateParams() on hostile input");
  await timeRuns(validateHostile);
  const hostile = await timeRuns(validateHostile);
  const measurements: InputMeasurement[] = [{
    name: "hostile",
    label: "validateParams(): 1 MiB unknown name, 50 000-character prompt, task_name, user",
    ms: round(median(hostile), 2),
    runs_ms: hostile,
  }];
  for (const mib of WHITESPACE_MIB) {
    progress(`input: decoding ${mib} MiB of whitespace-only base64`);
    const runs: number[] = [];
    let gaveUpAfter: number | null = null;
    for (let i = 0; i < RUNS && gaveUpAfter === null; i++) {
      const started = performance.now();
      gaveUpAfter = await decodeWhitespace(mib);
      runs.push(round(performance.now() - started, 1));
    }
    measurements.push({
      name: `whitespace_${mib}`,
      label: `base64 decoder: ${mib} MiB of whitespace only, in 64 KiB pieces`,
      ms: round(median(runs), 1),
      runs_ms: runs,
      chars: gaveUpAfter ?? mib * 1024 * 1024,
      ...gaveUpAfter === null ? {} : { gave_up_after_chars: gaveUpAfter },
    });
    if (gaveUpAfter !== null) {
      progress(`input: gave up after ${DECODE_BUDGET_MS} ms, ${mib2(gaveUpAfter)} MiB in`);
    }
  }
  return measurements;
}

export function renderInputTable(measurements: readonly InputMeasurement[]): string {
  const lines = ["| Input | ms (median) | ms (min–max) | ns per char |", "|---|--:|--:|--:|"];
  for (const m of measurements) {
    const perChar = m.chars === undefined ? "–" : (m.ms * 1e6 / m.chars).toFixed(2);
    const label = m.gave_up_after_chars === undefined
      ? m.label
      : `${m.label} (given up after ${DECODE_BUDGET_MS / 1000} s, ${
        mib2(m.gave_up_after_chars)
      } MiB in)`;
    lines.push(
      `| ${label} | ${fmt(m.ms)} | ${fmt(Math.min(...m.runs_ms))}–${
        fmt(Math.max(...m.runs_ms))
      } | ${perChar} |`,
    );
  }
  return lines.join("\n");
}

export function checkInputTargets(measurements: readonly InputMeasurement[]): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const hostile = measurements.find((m) => m.name === "hostile");
  if (hostile !== undefined) {
    const slowest = Math.max(...hostile.runs_ms);
    checks.push({
      target: `hostile input: every validation within its timeout_ms (${HOSTILE_TIMEOUT_MS} ms)`,
      pass: slowest <= HOSTILE_TIMEOUT_MS,
      measured: slowest,
      limit: HOSTILE_TIMEOUT_MS,
      unit: "ms",
      detail: `slowest of ${RUNS} runs ${fmt(slowest)} ms, median ${fmt(hostile.ms)} ms`,
    });
  }
  const [short, long] = WHITESPACE_MIB.map((mib) =>
    measurements.find((m) => m.name === `whitespace_${mib}`)
  );
  if (short?.chars !== undefined && long?.chars !== undefined) {
    const perShort = short.ms / short.chars;
    const perLong = long.ms / long.chars;
    const ratio = perLong / perShort;
    const unfinished = [short, long].filter((m) => m.gave_up_after_chars !== undefined)
      .map((m) => `${m.label} ran past ${DECODE_BUDGET_MS / 1000} s`);
    checks.push({
      target:
        `whitespace-only base64: time per char at ${
          WHITESPACE_MIB[1]
        } MiB ≤ ${PER_BYTE_GROWTH} × ` +
        `at ${WHITESPACE_MIB[0]} MiB (linear)`,
      pass: ratio <= PER_BYTE_GROWTH && unfinished.length === 0,
      measured: round(ratio, 2),
      limit: PER_BYTE_GROWTH,
      unit: "×",
      detail: `${(perLong * 1e6).toFixed(2)} vs ${(perShort * 1e6).toFixed(2)} ns per char ` +
        `(ratio ${ratio.toFixed(2)})${unfinished.map((text) => `; ${text}`).join("")}`,
    });
  }
  return checks;
}
