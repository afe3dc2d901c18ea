/**
 * The benchmark's verdict: medians of the runs, the one markdown table, and the targets
 * checked against them.
 */
import { median } from "./bench_time.ts";

export type CaseName = "small" | "large" | "startup";

export type ContenderId =
  | "bundle"
  | "main"
  | "python"
  | "pipeline"
  | "floor"
  | "bundle_b64"
  | "bundle_stream"
  | "empty"
  | "version";

export const CONTENDER_LABELS: Record<ContenderId, string> = {
  bundle: "dist/img2-generate.js (bundle)",
  main: "deno run main.ts",
  python: "Python script",
  pipeline: "curl | jq | base64 -d",
  floor: "curl -o /dev/null (floor)",
  bundle_b64: "bundle, return_base64: true",
  bundle_stream: "bundle, stream: true",
  empty: "empty deno run",
  version: "bundle --version",
};

export interface RunRecord {
  wall_ms: number;
  max_rss_kib: number;
  user_s: number;
  system_s: number;
}

export interface Measurement {
  case: CaseName;
  contender: ContenderId;
  label: string;
  command: string;
  runs: RunRecord[];
  /** Medians over the runs. */
  wall_ms: number;
  max_rss_mib: number;
  cpu_s: number;
}

export interface CaseInfo {
  name: Exclude<CaseName, "startup">;
  width: number;
  height: number;
  png_level: number;
  image_bytes: number;
  base64_chars: number;
  answer_bytes: number;
}

export interface TargetCheck {
  target: string;
  /** null when a contender it needs was not measured. */
  pass: boolean | null;
  measured: number | null;
  limit: number | null;
  unit: string;
  detail: string;
}

export function summarize(
  caseName: CaseName,
  contender: ContenderId,
  command: string,
  runs: RunRecord[],
): Measurement {
  return {
    case: caseName,
    contender,
    label: CONTENDER_LABELS[contender],
    command,
    runs,
    wall_ms: round(median(runs.map((run) => run.wall_ms)), 1),
    max_rss_mib: round(median(runs.map((run) => run.max_rss_kib)) / 1024, 1),
    cpu_s: round(median(runs.map((run) => run.user_s + run.system_s)), 2),
  };
}

function find(
  measurements: readonly Measurement[],
  caseName: CaseName,
  contender: ContenderId,
): Measurement | undefined {
  return measurements.find((m) => m.case === caseName && m.contender === contender);
}

/** One markdown table: median wall time, its range, median peak RSS, ratios of wall times. */
export function renderTable(
  measurements: readonly Measurement[],
  cases: readonly CaseInfo[],
): string {
  const lines = [
    "| Case | Contender | Wall ms (median) | Wall ms (min–max) | Peak RSS MiB | × Python | × curl\\|jq |",
    "|---|---|--:|--:|--:|--:|--:|",
  ];
  for (const m of measurements) {
    const info = cases.find((c) => c.name === m.case);
    const caseCell = info === undefined
      ? m.case
      : `${m.case} (${info.width}x${info.height}, ${mib(info.image_bytes)} MiB)`;
    const walls = m.runs.map((run) => run.wall_ms);
    const python = find(measurements, m.case, "python");
    const pipeline = find(measurements, m.case, "pipeline");
    lines.push(
      `| ${caseCell} | ${m.label.replaceAll("|", "\\|")} | ${m.wall_ms.toFixed(0)} | ` +
        `${Math.min(...walls).toFixed(0)}–${Math.max(...walls).toFixed(0)} | ` +
        `${m.max_rss_mib.toFixed(1)} | ${ratio(m, python)} | ${ratio(m, pipeline)} |`,
    );
  }
  return lines.join("\n");
}

function ratio(m: Measurement, reference: Measurement | undefined): string {
  return reference === undefined ? "–" : (m.wall_ms / reference.wall_ms).toFixed(2);
}

/** The targets, each checked against the medians of this run. */
export function checkTargets(
  measurements: readonly Measurement[],
  cases: readonly CaseInfo[],
): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const at = (c: CaseName, id: ContenderId) => find(measurements, c, id);

  const wallWithin = (
    caseName: "small" | "large",
    reference: ContenderId,
    factor: number,
  ): void => {
    const target = `${caseName}: bundle wall ≤ ${factor} × ${CONTENDER_LABELS[reference]}`;
    const bundle = at(caseName, "bundle");
    const ref = at(caseName, reference);
    if (bundle === undefined || ref === undefined) {
      if (cases.some((c) => c.name === caseName)) checks.push(skipped(target, "ms"));
      return;
    }
    const limit = factor * ref.wall_ms;
    checks.push({
      target,
      pass: bundle.wall_ms <= limit,
      measured: bundle.wall_ms,
      limit: round(limit, 1),
      unit: "ms",
      detail: `${fmt(bundle.wall_ms)} ms vs ${fmt(limit)} ms allowed ` +
        `(ratio ${(bundle.wall_ms / ref.wall_ms).toFixed(2)}, ${
          margin(limit, bundle.wall_ms, "ms")
        })`,
    });
  };
  wallWithin("small", "python", 0.4);
  wallWithin("large", "python", 0.5);
  wallWithin("large", "pipeline", 0.4);

  const large = cases.find((c) => c.name === "large");
  const empty = at("startup", "empty");
  if (large !== undefined && empty !== undefined) {
    const image = large.image_bytes / 2 ** 20;
    const base64 = large.base64_chars / 2 ** 20;
    const memory = (id: ContenderId, target: string, allowance: number, why: string) => {
      const m = at("large", id);
      if (m === undefined) return checks.push(skipped(target, "MiB"));
      const limit = empty.max_rss_mib + allowance;
      checks.push({
        target,
        pass: m.max_rss_mib <= limit,
        measured: m.max_rss_mib,
        limit: round(limit, 1),
        unit: "MiB",
        detail:
          `${fmt(m.max_rss_mib)} MiB vs ${fmt(limit)} MiB allowed (${fmt(empty.max_rss_mib)} ` +
          `empty deno run + ${why}; ${margin(limit, m.max_rss_mib, "MiB")})`,
      });
    };
    memory(
      "bundle",
      "large: bundle peak RSS ≤ empty deno run + 1.5 × image",
      1.5 * image,
      `1.5 × ${fmt(image)} MiB image`,
    );
    memory(
      "bundle_stream",
      "large: bundle, stream: true peak RSS ≤ empty deno run + 1.5 × image",
      1.5 * image,
      `1.5 × ${fmt(image)} MiB image`,
    );
    memory(
      "bundle_b64",
      "large: return_base64 peak RSS ≤ that + base64 size",
      1.5 * image + base64,
      `1.5 × ${fmt(image)} MiB image + ${fmt(base64)} MiB base64`,
    );
  }

  const version = at("startup", "version");
  if (version !== undefined && empty !== undefined) {
    const limit = 1.5 * empty.wall_ms;
    checks.push({
      target: "start-up: bundle --version wall ≤ 1.5 × empty deno run",
      pass: version.wall_ms <= limit,
      measured: version.wall_ms,
      limit: round(limit, 1),
      unit: "ms",
      detail: `${fmt(version.wall_ms)} ms vs ${fmt(limit)} ms allowed (ratio ` +
        `${(version.wall_ms / empty.wall_ms).toFixed(2)}, ${margin(limit, version.wall_ms, "ms")})`,
    });
  }
  return checks;
}

export function renderTargets(checks: readonly TargetCheck[]): string {
  return checks.map((check) => {
    const verdict = check.pass === null ? "SKIP" : check.pass ? "PASS" : "FAIL";
    return `- ${verdict} ${check.target}: ${check.detail}`;
  }).join("\n");
}

export function skipped(target: string, unit: string): TargetCheck {
  return {
    target,
    pass: null,
    measured: null,
    limit: null,
    unit,
    detail: "not measured (a contender it needs is missing)",
  };
}

export function margin(limit: number, measured: number, unit: string): string {
  const spare = limit - measured;
  return spare >= 0
    ? `${fmt(spare)} ${unit} to spare`
    : `${fmt(-spare)} ${unit} (${((-spare / limit) * 100).toFixed(0)}%) over`;
}

export function mib(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(2);
}

export function fmt(value: number): string {
  return value >= 100 ? value.toFixed(0) : value.toFixed(1);
}

export function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
