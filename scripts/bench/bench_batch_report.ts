/**
 * The batch benchmark's verdict: one markdown table of the runs, and the targets for
 * img2-batch checked against them.
 */
import type { BatchCaseName, BatchContenderId, BatchMeasurement } from "./bench_batch.ts";
import { fmt, round, skipped, type TargetCheck } from "./bench_report.ts";

/** Per-job cost at 10 000 jobs may exceed that at 1 000 by this factor and still be "not growing". */
export const PER_JOB_GROWTH = 1.2;

export function renderBatchTable(measurements: readonly BatchMeasurement[]): string {
  const lines = [
    "| Case | Contender | Jobs | Saved | Wall s | Jobs/s | Peak RSS MiB | CPU s | Requests | 429s |",
    "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
  ];
  for (const m of measurements) {
    const cells = [
      `${m.case} (${m.case_summary})`,
      m.label,
      String(m.jobs),
      String(m.saved),
      (m.wall_ms / 1000).toFixed(2),
      m.jobs_per_s.toFixed(1),
      m.max_rss_mib.toFixed(1),
      m.cpu_s.toFixed(2),
      m.requests === null ? "–" : String(m.requests),
      m.rate_limited === null ? "–" : String(m.rate_limited),
    ];
    lines.push(`| ${cells.join(" | ")} |`);
  }
  return lines.join("\n");
}

function find(
  measurements: readonly BatchMeasurement[],
  caseName: BatchCaseName,
  contender: BatchContenderId,
  jobs: number,
): BatchMeasurement | undefined {
  return measurements.find((m) =>
    m.case === caseName && m.contender === contender && m.jobs === jobs
  );
}

/** A measured value against a bound; `at most` or `at least`. */
function bound(
  target: string,
  measured: number,
  limit: number,
  unit: string,
  direction: "at most" | "at least",
  note = "",
): TargetCheck {
  const pass = direction === "at most" ? measured <= limit : measured >= limit;
  const gap = Math.abs(limit - measured);
  const verdict = pass ? `${fmt(gap)} ${unit} to spare` : `${fmt(gap)} ${unit} short`;
  return {
    target,
    pass,
    measured: round(measured, 2),
    limit: round(limit, 2),
    unit,
    detail: `${fmt(measured)} ${unit} vs ${direction} ${fmt(limit)} ${unit} (${verdict})` +
      (note === "" ? "" : `; ${note}`),
  };
}

/** The makespan is the whole process's; img2-batch's own elapsed_ms leaves out its start-up. */
function ownElapsed(m: BatchMeasurement): string {
  return m.batch_elapsed_ms === null ? "" : `img2-batch's own elapsed_ms ${m.batch_elapsed_ms}`;
}

/** A target that also needs every job's image saved. */
function withAllSaved(check: TargetCheck, m: BatchMeasurement): TargetCheck {
  if (m.saved === m.jobs) return check;
  return { ...check, pass: false, detail: `${check.detail}; only ${m.saved} of ${m.jobs} saved` };
}

export function checkBatchTargets(measurements: readonly BatchMeasurement[]): TargetCheck[] {
  const checks: TargetCheck[] = [];

  const latency = find(measurements, "latency", "batch", 200);
  const latencyTarget = "200 jobs at 1 s, --concurrency 20: makespan ≤ 1.05 × the ideal 10 s";
  checks.push(
    latency === undefined ? skipped(latencyTarget, "ms") : withAllSaved(
      bound(latencyTarget, latency.wall_ms, 10_500, "ms", "at most", ownElapsed(latency)),
      latency,
    ),
  );

  const rate = find(measurements, "rate", "batch", 300);
  const rateTarget = "300 jobs at 600/min, --concurrency 32: makespan ≤ 1.15 × the ideal 30 s";
  const shareTarget = "300 jobs at 600/min, --concurrency 32: ≤ 5 % of requests answered 429";
  if (rate === undefined || rate.requests === null) {
    checks.push(skipped(rateTarget, "ms"), skipped(shareTarget, "%"));
  } else {
    checks.push(
      withAllSaved(
        bound(rateTarget, rate.wall_ms, 34_500, "ms", "at most", ownElapsed(rate)),
        rate,
      ),
    );
    const share = 100 * (rate.rate_limited ?? 0) / rate.requests;
    checks.push(
      bound(
        shareTarget,
        share,
        5,
        "%",
        "at most",
        `${rate.rate_limited} of ${rate.requests} requests`,
      ),
    );
  }

  const paced = find(measurements, "rate", "batch_rpm", 300);
  const pacedTarget = "300 jobs at 600/min with --rpm 600: no 429 at all";
  checks.push(
    paced === undefined || paced.rate_limited === null
      ? skipped(pacedTarget, "429s")
      : withAllSaved(
        bound(
          pacedTarget,
          paced.rate_limited,
          0,
          "429s",
          "at most",
          `makespan ${fmt(paced.wall_ms / 1000)} s`,
        ),
        paced,
      ),
  );

  const many = find(measurements, "throughput", "batch", 10_000);
  const few = find(measurements, "throughput", "batch", 1_000);
  const speedTarget = "10 000 jobs, zero latency, --concurrency 64: ≥ 300 jobs/s";
  const memoryTarget = "10 000 jobs, zero latency, --concurrency 64: peak RSS ≤ 250 MiB";
  if (many === undefined) {
    checks.push(skipped(speedTarget, "jobs/s"), skipped(memoryTarget, "MiB"));
  } else {
    checks.push(withAllSaved(bound(speedTarget, many.jobs_per_s, 300, "jobs/s", "at least"), many));
    checks.push(bound(memoryTarget, many.max_rss_mib, 250, "MiB", "at most"));
  }
  for (
    const [what, unit, perJob] of [
      ["wall time", "ms", (m: BatchMeasurement) => m.wall_ms / m.jobs],
      ["CPU time", "ms", (m: BatchMeasurement) => m.cpu_s * 1000 / m.jobs],
    ] as const
  ) {
    const target = `${what} per job at 10 000 jobs ≤ ${PER_JOB_GROWTH} × at 1 000 (does not grow)`;
    if (many === undefined || few === undefined) {
      checks.push(skipped(target, unit));
      continue;
    }
    checks.push(
      bound(
        target,
        perJob(many),
        PER_JOB_GROWTH * perJob(few),
        unit,
        "at most",
        `${perJob(few).toFixed(3)} ${unit} per job at 1 000, ${perJob(many).toFixed(3)} at 10 000`,
      ),
    );
  }
  return checks;
}
