/**
 * Times one whole process under GNU `/usr/bin/time -v`: its wall time, its peak resident memory
 * and its CPU time, with what it printed.
 *
 * The wall time is taken here, around the `time` process, with `performance.now()`: `time -v`
 * prints elapsed time in hundredths of a second, too coarse for a 40 ms start-up. What this adds
 * (one fork and exec of `time`, reading the pipes) is the same for every contender.
 *
 * The peak memory is `time`'s "Maximum resident set size": for a pipeline run by `bash -c`, that
 * is the largest single process in it (the kernel reports the biggest waited-for descendant),
 * not the sum of its processes.
 */

export const TIME_BINARY = "/usr/bin/time";

export interface TimedRun {
  wallMs: number;
  /** Peak resident set size in KiB. */
  maxRssKiB: number;
  userS: number;
  systemS: number;
  /** The exit code `time` reports for the command. */
  exitCode: number;
  stdout: Uint8Array;
  stderr: Uint8Array;
}

export interface TimeOptions {
  env: Record<string, string>;
  cwd?: string;
  /** Where `time -v` writes its report; overwritten on every run. */
  reportPath: string;
}

export async function timeProcess(
  argv: readonly string[],
  options: TimeOptions,
): Promise<TimedRun> {
  const started = performance.now();
  const output = await new Deno.Command(TIME_BINARY, {
    args: ["-v", "-o", options.reportPath, ...argv],
    clearEnv: true,
    env: options.env,
    cwd: options.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const wallMs = performance.now() - started;
  const report = parseTimeReport(await Deno.readTextFile(options.reportPath));
  return { wallMs, ...report, stdout: output.stdout, stderr: output.stderr };
}

/** The fields of a `time -v` report the benchmark uses. */
export function parseTimeReport(text: string): Omit<TimedRun, "wallMs" | "stdout" | "stderr"> {
  const field = (label: string): number => {
    const line = text.split("\n").find((candidate) => candidate.trim().startsWith(label + ":"));
    if (line === undefined) throw new Error(`Cannot read "${label}" in the time -v report`);
    return Number(line.slice(line.lastIndexOf(":") + 1).trim());
  };
  return {
    maxRssKiB: field("Maximum resident set size (kbytes)"),
    userS: field("User time (seconds)"),
    systemS: field("System time (seconds)"),
    exitCode: field("Exit status"),
  };
}

/** The median of a non-empty list: the mean of the middle two for an even count. */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError("Cannot take the median of no values");
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
