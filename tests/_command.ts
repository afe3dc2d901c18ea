/**
 * The shipped forms of the command, run black-box: main.ts through `deno run`, the bundle
 * through its own shebang, and the compiled binary when one has been built.
 */
import { BINARY, BUNDLE, MAIN, RUN_PERMISSIONS } from "../scripts/build/build.ts";

export interface CommandTarget {
  name: string;
  /** Null when the artifact has not been built: its tests are then reported as ignored. */
  argv: string[] | null;
}

export function builtArtifact(path: string): string[] | null {
  try {
    return Deno.statSync(path).isFile ? [path] : null;
  } catch {
    return null;
  }
}

export const TARGETS: CommandTarget[] = [
  { name: "main.ts", argv: [Deno.execPath(), "run", "--no-config", ...RUN_PERMISSIONS, MAIN] },
  { name: "bundle", argv: builtArtifact(BUNDLE) },
  { name: "compiled", argv: builtArtifact(BINARY) },
];

export interface RunOptions {
  stdin?: string;
  env?: Record<string, string>;
  /** Run it under /usr/bin/time and report its peak resident memory. */
  measurePeakRss?: boolean;
  /** Called once the process has started, e.g. to send it a signal. */
  whileRunning?: (child: Deno.ChildProcess) => Promise<void>;
}

export interface RunOutput {
  code: number;
  stdout: string;
  stderr: string;
  /** With measurePeakRss: the peak resident set size, in bytes. */
  peakRssBytes?: number;
}

export const TIME_COMMAND = "/usr/bin/time";
export const HAS_TIME_COMMAND = (() => {
  try {
    return Deno.statSync(TIME_COMMAND).isFile;
  } catch {
    return false;
  }
})();

/** Runs a target with `args`, with Deno itself on PATH so that the bundle's shebang finds it. */
export async function runTarget(
  target: CommandTarget,
  args: string[],
  options: RunOptions = {},
): Promise<RunOutput> {
  const rssFile = options.measurePeakRss ? await Deno.makeTempFile() : null;
  const argv = rssFile === null
    ? target.argv!
    : [TIME_COMMAND, "-f", "%M", "-o", rssFile, ...target.argv!];
  const [command, ...leading] = argv;
  const deno = Deno.execPath();
  const child = new Deno.Command(command!, {
    args: [...leading, ...args],
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    // A clean environment, so that a proxy set on the machine cannot reroute the tests.
    clearEnv: true,
    env: {
      ...inherited(["HOME", "DENO_DIR", "TMPDIR", "LANG"]),
      PATH: `${deno.slice(0, deno.lastIndexOf("/"))}:${Deno.env.get("PATH") ?? ""}`,
      ...options.env,
    },
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  await options.whileRunning?.(child);
  const { code, stdout, stderr } = await child.output();
  const decoder = new TextDecoder();
  const output: RunOutput = {
    code,
    stdout: decoder.decode(stdout),
    stderr: decoder.decode(stderr),
  };
  if (rssFile !== null) {
    const kibibytes = Number((await Deno.readTextFile(rssFile)).trim().split("\n").at(-1));
    await Deno.remove(rssFile);
    output.peakRssBytes = kibibytes * 1024;
  }
  return output;
}

function inherited(names: string[]): Record<string, string> {
  return Object.fromEntries(
    names.flatMap((name) => {
      const value = Deno.env.get(name);
      return value === undefined ? [] : [[name, value]];
    }),
  );
}

/** Declares one test per target; a target not built is ignored, and shows as such. */
export function testEachTarget(
  name: string,
  fn: (target: CommandTarget) => Promise<void>,
  options: { ignore?: boolean } = {},
): void {
  for (const target of TARGETS) {
    Deno.test({
      name: `[${target.name}] ${name}`,
      ignore: target.argv === null || options.ignore === true,
      fn: () => fn(target),
    });
  }
}

/** A FIFO whose reader never reads, already full: a write to it waits for ever. */
export async function fullPipe(path: string): Promise<AsyncDisposable> {
  await new Deno.Command("mkfifo", { args: [path] }).output();
  // The filler opens the writing end; opening the reading end waits for it, then it fills the
  // pipe's 64 KiB and blocks there.
  const filler = new Deno.Command("sh", {
    args: ["-c", 'exec head -c 1048576 /dev/zero > "$0"', path],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const reader = await Deno.open(path, { read: true });
  return {
    async [Symbol.asyncDispose]() {
      filler.kill("SIGKILL");
      await filler.status;
      reader.close();
    },
  };
}

/**
 * Runs a target whose standard output (or `blocked` stream) is a full pipe that is never read (a
 * FIFO in `dir`), sends it `signal` once `when` resolves, and tells how long it took to end after
 * that. A process still running 5 s after the signal fails the test.
 */
export async function signalWhileStdoutBlocked(
  target: CommandTarget,
  args: string[],
  dir: string,
  { signal, when, blocked = "stdout" }: {
    signal: Deno.Signal;
    when: () => Promise<unknown>;
    blocked?: "stdout" | "stderr";
  },
): Promise<{ code: number; afterSignalMs: number }> {
  const fifo = `${dir}/${blocked}`;
  await using _pipe = await fullPipe(fifo);
  const deno = Deno.execPath();
  const child = new Deno.Command("sh", {
    args: [
      "-c",
      `exec "$@" ${blocked === "stderr" ? "2>" : ">"} "$0"`,
      fifo,
      ...target.argv!,
      ...args,
    ],
    stdout: "null",
    stderr: "null",
    env: { PATH: `${deno.slice(0, deno.lastIndexOf("/"))}:${Deno.env.get("PATH") ?? ""}` },
  }).spawn();
  let exited = false;
  const status = child.status.finally(() => exited = true);
  try {
    await when();
    child.kill(signal);
    const signalled = performance.now();
    const timer = Promise.withResolvers<void>();
    const id = setTimeout(timer.resolve, 5000);
    await Promise.race([status, timer.promise]);
    clearTimeout(id);
    if (!exited) throw new Error(`Still running 5 s after ${signal}`);
    return { code: (await status).code, afterSignalMs: performance.now() - signalled };
  } finally {
    if (!exited) child.kill("SIGKILL");
    await status;
  }
}
