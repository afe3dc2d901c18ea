/**
 * `deno task mock`'s script as a process of its own on a free loopback port, for the benchmark
 * (whose clients then never share a heap or an event loop with their upstream) and for the tests
 * of the command line. It tallies the generation requests it logs, by status.
 */
import { fileURLToPath } from "node:url";

const MOCK_SCRIPT = fileURLToPath(new URL("./mock.ts", import.meta.url));
const LISTENING = /^mock upstream listening on (\S+)(.*)$/m;
const GENERATION = /^POST \/v1\/images\/generations\b.* -> (\d{3}) /;

export interface MockTally {
  /** Generation requests answered, by HTTP status */
  byStatus: Record<string, number>;
  total: number;
}

export interface MockProcess {
  /** The base_url, `/v1` included */
  url: string;
  /** The line the mock printed once it listened */
  banner: string;
  /** What the generation requests so far were answered (none with `--quiet`) */
  tally(): MockTally;
  /** Stops the mock (SIGTERM) and waits until it has exited */
  stop(): Promise<void>;
}

/** Starts `scripts/mock/mock.ts --port 0 ARGS…`; resolves once it listens. */
export async function spawnMock(
  args: readonly string[],
  env?: Record<string, string>,
): Promise<MockProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-config", "--allow-net=127.0.0.1", MOCK_SCRIPT, "--port", "0", ...args],
    clearEnv: env !== undefined,
    env,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const lines = child.stderr.pipeThrough(new TextDecoderStream()).pipeThrough(splitLines())
    .getReader();
  const byStatus: Record<string, number> = {};
  let total = 0;
  let head = "";
  let banner: RegExpExecArray | null = null;
  while (banner === null) {
    const { value, done } = await lines.read();
    if (done) {
      await child.status;
      throw new Error(`The mock upstream exited before it listened: ${head.trim()}`);
    }
    head += `${value}\n`;
    banner = LISTENING.exec(value);
  }
  const drained = (async () => {
    for (;;) {
      const { value, done } = await lines.read();
      if (done) return;
      const status = GENERATION.exec(value)?.[1];
      if (status === undefined) continue;
      byStatus[status] = (byStatus[status] ?? 0) + 1;
      total++;
    }
  })();
  return {
    url: banner[1]!,
    banner: banner[0],
    tally: () => ({ byStatus: { ...byStatus }, total }),
    stop: async () => {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      await drained;
      await child.status;
    },
  };
}

function splitLines(): TransformStream<string, string> {
  let rest = "";
  return new TransformStream({
    transform(chunk, controller) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      for (const line of parts) controller.enqueue(line);
    },
    flush(controller) {
      if (rest !== "") controller.enqueue(rest);
    },
  });
}
