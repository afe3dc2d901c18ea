// deno-lint-ignore-file no-console
/**
 * The benchmark's upstream: the offline upstream (scripts/mock/mock.ts) with one route, `/bench`,
 * that answers every request (`POST /bench/v1/images/generations`, `GET /bench/v1/answer.json`)
 * with one answer read from a file once and kept as bytes, after reading the request's body as
 * a real upstream would; a request with `"stream": true` gets the same image as server-sent
 * events, read from a second file.
 *
 * It runs as a process of its own: on two cores it then gets a core of its own scheduling, and
 * its event loop, its garbage collector and its copy of the answer never share a heap with the
 * benchmark that is waiting for, and checking, the processes it times. Serving prebuilt bytes
 * costs the same for every contender, whatever the client.
 *
 *   deno run --no-config --allow-net=127.0.0.1 --allow-read scripts/bench/bench_upstream.ts ANSWER EVENTS
 *
 * prints `{"port":N}` once it listens and stops when its standard input closes or on SIGTERM.
 */

import { fileURLToPath } from "node:url";
import { MockUpstream } from "../mock/mock.ts";

const ROUTE = "bench";
export const ANSWER_PATH = `/${ROUTE}/v1/answer.json`;

/** Serves `answer`, or `events` to a streamed request, on a free loopback port until `signal` aborts. */
export function serveAnswer(
  answer: Uint8Array<ArrayBuffer>,
  events: Uint8Array<ArrayBuffer>,
  signal: AbortSignal,
): MockUpstream {
  const headers = { "content-type": "application/json" };
  const eventHeaders = { "content-type": "text/event-stream" };
  return new MockUpstream({ port: 0, signal })
    .route(
      ROUTE,
      (_request, body) =>
        body?.stream === true
          ? new Response(events, { headers: eventHeaders })
          : new Response(answer, { headers }),
    );
}

/** The upstream as seen from the benchmark: its base URL and a way to stop it. */
export interface RunningUpstream {
  /** `http://127.0.0.1:PORT/bench/v1` */
  baseUrl: string;
  stop(): Promise<void>;
}

/** Starts this file as a subprocess serving the answers stored at `answerPath` and `eventsPath`. */
export async function startUpstream(
  answerPath: string,
  eventsPath: string,
  env: Record<string, string>,
): Promise<RunningUpstream> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-config",
      "--allow-net=127.0.0.1",
      `--allow-read=${answerPath},${eventsPath}`,
      fileURLToPath(import.meta.url),
      answerPath,
      eventsPath,
    ],
    clearEnv: true,
    env,
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const stop = async () => {
    try {
      await child.stdin.close();
    } catch { /* already closed */ }
    await reader.cancel().catch(() => {});
    await child.status;
  };
  try {
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error("The benchmark upstream exited before it listened");
      text += value;
    }
    const port = JSON.parse(text.slice(0, text.indexOf("\n"))).port as number;
    return { baseUrl: `http://127.0.0.1:${port}/${ROUTE}/v1`, stop };
  } catch (error) {
    child.kill("SIGTERM");
    await stop();
    throw error;
  }
}

if (import.meta.main) {
  const [path, eventsPath] = Deno.args;
  if (path === undefined || eventsPath === undefined) {
    console.error("usage: bench_upstream.ts ANSWER_FILE EVENTS_FILE");
    Deno.exit(2);
  }
  const answer = await Deno.readFile(path);
  const events = await Deno.readFile(eventsPath);
  const controller = new AbortController();
  const stop = () => controller.abort();
  Deno.addSignalListener("SIGTERM", stop);
  const upstream = serveAnswer(answer, events, controller.signal);
  console.log(JSON.stringify({ port: Number(new URL(upstream.origin).port) }));
  // The benchmark closes our standard input to stop us; so does its death.
  (async () => {
    for await (const _ of Deno.stdin.readable) { /* nothing is sent */ }
    stop();
  })();
  await upstream.finished;
  Deno.removeSignalListener("SIGTERM", stop);
}
