import assert from "node:assert/strict";
import { join } from "node:path";
import { constants as zlibConstants, deflateRawSync } from "node:zlib";
import { VERSION } from "../../lib/shared/version.ts";
import {
  type CommandTarget,
  HAS_TIME_COMMAND,
  type RunOutput,
  runTarget,
  signalWhileStdoutBlocked,
  testEachTarget,
  TIME_COMMAND,
} from "../_command.ts";
import { inputFor, listDir, PNG_64, startFakeUpstream, TEST_KEY } from "../_fake_upstream.ts";
import { concat } from "../../lib/shared/bytes.ts";
import { signalsCaught, withTempDir } from "../_helpers.ts";

/** Standard output must be exactly one JSON object. */
function onlyJson(stdout: string): Record<string, unknown> {
  assert.ok(stdout.startsWith("{\n  ") && stdout.endsWith("}\n"), stdout);
  return JSON.parse(stdout);
}

testEachTarget("prints the image path as one JSON object for a JSON argument", async (target) => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const run = await runTarget(target, [JSON.stringify(inputFor(upstream, "ok", dir))]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.equal(run.stderr, "");
    const result = onlyJson(run.stdout);
    assert.equal(result.ok, true);
    assert.equal(result.stage, "done");
    assert.deepEqual(await Deno.readFile(result.image_path as string), PNG_64);
  });
});

testEachTarget("reads the JSON from standard input with -", async (target) => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const run = await runTarget(target, ["-"], {
      stdin: JSON.stringify(inputFor(upstream, "ok", dir)),
    });
    assert.equal(run.code, 0, run.stdout);
    assert.equal(onlyJson(run.stdout).ok, true);
    assert.equal(upstream.requests[0]?.headers.get("authorization"), `Bearer ${TEST_KEY}`);
  });
});

testEachTarget("takes every parameter as a flag, snake_case or kebab-case", async (target) => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const run = await runTarget(target, [
      "--prompt",
      "a cat",
      "--base_url",
      upstream.baseUrl("ok"),
      "--api-key",
      TEST_KEY,
      "--model=gpt-image-2",
      "--size",
      "1536x1024",
      "--task-name",
      "flags",
      "--timeout_ms",
      "5000",
      "--output-dir",
      dir,
      "--return-base64",
      "--n",
      "1",
    ]);
    assert.equal(run.code, 0, run.stdout);
    const result = onlyJson(run.stdout);
    assert.equal(result.size, "1536x1024");
    assert.equal(result.b64, PNG_64.toBase64());
    assert.match(result.image_path as string, /\/flags-\d{8}-\d{6}\.png$/);
  });
});

testEachTarget("lets flags override JSON from --input field by field", async (target) => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const file = join(dir, "params.json");
    await Deno.writeTextFile(file, JSON.stringify(inputFor(upstream, "ok", dir, { model: "a" })));
    const run = await runTarget(target, ["--input", file, "--model", "b"]);
    assert.equal(run.code, 0, run.stdout);
    assert.equal(onlyJson(run.stdout).model, "b");
    assert.equal(upstream.requests[0]?.body?.model, "b");
    assert.equal(upstream.requests[0]?.body?.prompt, "an orange cat by the window");
  });
});

testEachTarget("exits 2 on invalid input and sends nothing", async (target) => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const input = inputFor(upstream, "ok", dir, { timeout: 1, size: "big" });
    const run = await runTarget(target, [JSON.stringify(input)]);
    assert.equal(run.code, 2);
    const result = onlyJson(run.stdout);
    assert.equal(result.stage, "input");
    assert.deepEqual(result.diagnosis, {
      category: "invalid_input",
      human_reason: "输入参数无效,请求未发送;按 error 字段修正参数后再调用。",
      retryable: false,
    });
    assert.match(result.error as string, /did you mean "timeout_ms"/);
    assert.equal(upstream.requests.length, 0);
  });
});

testEachTarget("exits 2 on JSON it cannot parse, without quoting the key back", async (target) => {
  const run = await runTarget(target, [`{"api_key": "${TEST_KEY}", "prompt": }`]);
  assert.equal(run.code, 2);
  assert.equal(onlyJson(run.stdout).stage, "input");
  assert.ok(!run.stdout.includes(TEST_KEY), run.stdout);
});

testEachTarget("turns the seed's 502 example into the seed's failure, exit 1", async (target) => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const run = await runTarget(target, [JSON.stringify(inputFor(upstream, "seed-502", dir))]);
    assert.equal(run.code, 1);
    const result = onlyJson(run.stdout);
    assert.deepEqual(
      {
        ok: result.ok,
        stage: result.stage,
        http_status: result.http_status,
        upstream_error_type: result.upstream_error_type,
        upstream_error_message: result.upstream_error_message,
        diagnosis: result.diagnosis,
      },
      {
        ok: false,
        stage: "request",
        http_status: 502,
        upstream_error_type: "upstream_error",
        upstream_error_message: "Upstream request failed",
        diagnosis: {
          category: "upstream_failure",
          human_reason: "图片模型上游服务失败或临时不可用;不是本地脚本问题。",
          retryable: true,
        },
      },
    );
  });
});

testEachTarget("never prints the key, even when the upstream echoes it", async (target) => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const run = await runTarget(target, [JSON.stringify(inputFor(upstream, "echo-key", dir))]);
    assert.equal(run.code, 1);
    assert.ok(!(run.stdout + run.stderr).includes(TEST_KEY), run.stdout + run.stderr);
    assert.equal((onlyJson(run.stdout).diagnosis as { category: string }).category, "auth_failed");
  });
});

testEachTarget(
  "--dry-run shows the request with the key masked and sends nothing",
  async (target) => {
    await using upstream = startFakeUpstream();
    await withTempDir(async (dir) => {
      const run = await runTarget(target, [
        JSON.stringify(inputFor(upstream, "ok", dir, { quality: "low" })),
        "--dry-run",
      ]);
      assert.equal(run.code, 0);
      const report = onlyJson(run.stdout) as {
        request: { url: string; headers: Record<string, string>; body: Record<string, unknown> };
        image_path_pattern: string;
      };
      assert.equal(report.request.url, upstream.baseUrl("ok") + "/images/generations");
      assert.equal(report.request.headers.Authorization, "Bearer ***");
      assert.equal(report.request.body.quality, "low");
      assert.equal(report.image_path_pattern, `${dir}/cat-YYYYMMDD-HHMMSS.{png,jpg,webp,gif}`);
      assert.ok(!run.stdout.includes(TEST_KEY));
      assert.equal(upstream.requests.length, 0);
      assert.deepEqual(await listDir(dir), []);
    });
  },
);

/** The secrets of SECRET_BASE_URL's path, query and fragment, none of which may be printed. */
const URL_SECRETS = ["pathsecret-1234", "aZ3kQ9mX2pL7vB4nR8", "qtok-5678", "frag-9"];
/** A base_url with credentials in its path, query and fragment, for the `scenario` of upstream. */
function secretBaseUrl(upstream: { origin: string }, scenario: string): string {
  const [path, random, query, fragment] = URL_SECRETS;
  return `${upstream.origin}/${scenario}/key/${path}/${random}/v1?api_token=${query}#${fragment}`;
}

function assertNoSecret(output: string, parts: string[]): void {
  for (const part of parts) assert.ok(!output.includes(part), `"${part}" in ${output}`);
}

testEachTarget(
  "never prints the key from a success answer that echoes it in usage or the request id",
  async (target) => {
    await using upstream = startFakeUpstream();
    const answer = JSON.stringify({
      data: [{ b64_json: PNG_64.toBase64(), revised_prompt: `as asked by ${TEST_KEY}` }],
      usage: { [TEST_KEY]: 1, total_tokens: 3, details: { [`Bearer ${TEST_KEY}`]: [TEST_KEY] } },
    });
    // Nested far deeper than any stack: spliced in as text, as no JSON.stringify would write it.
    const deep = `,"deep":${"[".repeat(50_000)}${"]".repeat(50_000)}}}`;
    upstream.route("echo-success", () =>
      new Response(answer.slice(0, -2) + deep, {
        // Cut at 200 characters, the key straddles the cut.
        headers: {
          "content-type": "application/json",
          "x-request-id": `${"r".repeat(195)}${TEST_KEY}`,
        },
      }));
    await withTempDir(async (dir) => {
      const run = await runTarget(target, [
        JSON.stringify(inputFor(upstream, "echo-success", dir)),
      ]);
      assert.equal(run.code, 0, run.stdout + run.stderr);
      const result = onlyJson(run.stdout);
      assertNoSecret(run.stdout, [TEST_KEY.slice(0, 5), TEST_KEY.slice(-5)]);
      assert.equal(result.request_id, `${"r".repeat(195)}***`);
      assert.equal(result.revised_prompt, "as asked by ***");
      const usage = result.usage as Record<string, unknown>;
      assert.deepEqual(usage["***"], 1);
      assert.deepEqual(usage.details, { "Bearer ***": ["***"] });
      assert.match(JSON.stringify(usage.deep), /^\[+"\[nested too deep\]"\]+$/);
    });
  },
);

testEachTarget("never prints part of a key cut in two by the 64 KiB error read", async (target) => {
  await using upstream = startFakeUpstream();
  for (const kept of [3, 9, TEST_KEY.length - 1]) {
    // The padding is a tag, which the summary of an HTML page drops: the cut ends what is shown.
    const head = `<html><body><div data-pad="`;
    const tail = `">Invalid API key `;
    const pad = "x".repeat(64 * 1024 - head.length - tail.length - kept);
    const page = `${head}${pad}${tail}${TEST_KEY} given</div></body></html>`;
    upstream.route(`cut-${kept}`, () => new Response(page, { status: 401 }));
    await withTempDir(async (dir) => {
      const run = await runTarget(target, [JSON.stringify(inputFor(upstream, `cut-${kept}`, dir))]);
      assert.equal(run.code, 1, run.stdout + run.stderr);
      assert.equal(onlyJson(run.stdout).upstream_error_message, "Invalid API key ***…");
      assertNoSecret(run.stdout, [TEST_KEY.slice(0, kept)]);
    });
  }
});

testEachTarget(
  "never prints part of a key cut in two where a bad image URL is quoted",
  async (target) => {
    await using upstream = startFakeUpstream();
    // The quote keeps 200 characters: the first 5 of the key, glued to the padding.
    const url = `ftp://${"x".repeat(188)}${TEST_KEY}`;
    upstream.route("ftp-url", () => Response.json({ data: [{ url }] }));
    await withTempDir(async (dir) => {
      const run = await runTarget(target, [JSON.stringify(inputFor(upstream, "ftp-url", dir))]);
      assert.equal(run.code, 1, run.stdout + run.stderr);
      assert.match(onlyJson(run.stdout).error as string, /x\*\*\*…"$/);
      assertNoSecret(run.stdout, [TEST_KEY.slice(0, 5)]);
    });
  },
);

testEachTarget(
  "masks credentials in base_url's path, query and fragment, also where the upstream echoes them",
  async (target) => {
    await using upstream = startFakeUpstream();
    upstream.route("echo-url", (request) =>
      Response.json({
        error: { message: `No access to ${request.url} (${request.headers.get("authorization")})` },
      }, { status: 403 }));
    await withTempDir(async (dir) => {
      const base_url = secretBaseUrl(upstream, "echo-url");
      const run = await runTarget(target, [
        JSON.stringify(inputFor(upstream, "echo-url", dir, { base_url })),
      ]);
      assert.equal(run.code, 1, run.stdout + run.stderr);
      assertNoSecret(run.stdout + run.stderr, [...URL_SECRETS, TEST_KEY]);
      assert.equal(
        onlyJson(run.stdout).base_url,
        `${upstream.origin}/echo-url/key/***/***/v1?api_token=***#***`,
      );
      assert.ok(upstream.requests[0]?.path.includes(URL_SECRETS[0]!));
    });
  },
);

testEachTarget(
  "--dry-run masks credentials in base_url, also where extra_body repeats them",
  async (target) => {
    await using upstream = startFakeUpstream();
    const input = inputFor(upstream, "ok", "/tmp", {
      base_url: secretBaseUrl(upstream, "ok"),
      extra_body: { note: `key ${URL_SECRETS[1]}`, [URL_SECRETS[1]!]: true },
    });
    const run = await runTarget(target, [JSON.stringify(input), "--dry-run"]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assertNoSecret(run.stdout, [...URL_SECRETS, TEST_KEY]);
    const report = onlyJson(run.stdout) as { request: { url: string; body: unknown } };
    assert.equal(
      report.request.url,
      `${upstream.origin}/ok/key/***/***/v1/images/generations?api_token=***#***`,
    );
    assert.equal((report.request.body as Record<string, unknown>).note, "key ***");
  },
);

testEachTarget(
  "--dry-run masks a credential header's value where base_url repeats it",
  async (target) => {
    await using upstream = startFakeUpstream();
    const header = "hdrsecretVALUE98765";
    const input = inputFor(upstream, "ok", "/tmp", {
      base_url: `https://gateway.example.com/${header}/v1`,
      extra_headers: { "x-portkey-api-key": header },
    });
    const run = await runTarget(target, [JSON.stringify(input), "--dry-run"]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const report = onlyJson(run.stdout) as { request: { url: string } };
    assert.equal(report.request.url, "https://gateway.example.com/***/v1/images/generations");
  },
);

testEachTarget("--help explains the forms, stdin for the key, and exit codes", async (target) => {
  const run = await runTarget(target, ["--help"]);
  assert.equal(run.code, 0);
  const needles = ["--base-url", "--timeout-ms", "standard input", "HTTPS_PROXY"];
  const exitCodes = "129/130/131/143 interrupted by SIGHUP/SIGINT/SIGQUIT/SIGTERM";
  for (const needle of [...needles, exitCodes]) {
    assert.ok(run.stdout.includes(needle), needle);
  }
});

testEachTarget("--version prints the version", async (target) => {
  const run = await runTarget(target, ["--version"]);
  assert.equal(run.code, 0);
  assert.equal(run.stdout, `img2-generate ${VERSION}\n`);
});

testEachTarget("--media-line adds MEDIA:<path> after the JSON", async (target) => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const run = await runTarget(target, [
      JSON.stringify(inputFor(upstream, "ok", dir)),
      "--media-line",
    ]);
    assert.equal(run.code, 0);
    const [json, media] = run.stdout.split(/\n(?=MEDIA:)/);
    const result = JSON.parse(json!);
    assert.equal(media, `MEDIA:${result.image_path}\n`);
  });
});

for (
  const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143], ["SIGHUP", 129], [
    "SIGQUIT",
    131,
  ]] as const
) {
  testEachTarget(
    `${signal} during the request prints a cancelled failure and exits ${code}`,
    async (target) => {
      await using upstream = startFakeUpstream();
      await withTempDir(async (dir) => {
        const arrived = upstream.nextArrival();
        const run = await runTarget(
          target,
          [JSON.stringify(inputFor(upstream, "stall-body", dir))],
          {
            whileRunning: async (child) => {
              await arrived;
              child.kill(signal);
            },
          },
        );
        assert.equal(run.code, code, run.stdout + run.stderr);
        const result = onlyJson(run.stdout);
        assert.equal((result.diagnosis as { category: string }).category, "cancelled");
        assert.deepEqual(await listDir(dir), []);
      });
    },
  );
}

testEachTarget("answers within timeout_ms when the upstream never answers", async (target) => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const started = performance.now();
    const input = inputFor(upstream, "stall-headers", dir, { timeout_ms: 500 });
    const run = await runTarget(target, [JSON.stringify(input)]);
    assert.ok(performance.now() - started < 5000);
    assert.equal(run.code, 1);
    assert.equal((onlyJson(run.stdout).diagnosis as { category: string }).category, "timeout");
    assert.deepEqual(await listDir(dir), []);
  });
});

const BLOCK_BYTES = 3 * 1024 * 1024;
const BLOCKS = 24;
/** V8's heap, capped well below the answer's text (about 96 MiB) and the image (72 MiB). */
const HEAP_CAP_MB = 48;

let emptyRun: Promise<number> | null = null;

/** The peak RSS of `deno run` on an empty file: the runtime's own baseline. */
function emptyRunPeakRss(): Promise<number> {
  emptyRun ??= (async () => {
    const empty = await Deno.makeTempFile({ suffix: ".js" });
    try {
      const run = await runTarget({ name: "empty", argv: [Deno.execPath(), "run", empty] }, [], {
        measurePeakRss: true,
      });
      return run.peakRssBytes!;
    } finally {
      await Deno.remove(empty);
    }
  })();
  return emptyRun;
}

/** A JSON answer, or with `stream: true` a partial image event then the completed one. */
function largeAnswerFraming(overrides: Record<string, unknown>, block: string) {
  if (overrides.stream !== true) {
    return { type: "application/json", head: '{"data": [{"b64_json": "', tail: '"}]}' };
  }
  const event = (type: string) => `event: ${type}\ndata: {"type":"${type}","b64_json":"`;
  return {
    type: "text/event-stream",
    head: `: keep-alive\n\n${event("image_generation.partial_image")}${block}"}\n\n` +
      event("image_generation.completed"),
    tail: '","usage":{"total_tokens":1}}\n\n',
  };
}

/** Serves an answer of BLOCKS random blocks, made as it is sent, and runs the command on it. */
async function runOnLargeAnswer(target: CommandTarget, overrides: Record<string, unknown>) {
  const block = crypto.getRandomValues(new Uint8Array(BLOCK_BYTES / 64)).toBase64().repeat(64);
  const first = PNG_64.subarray(0, 33).toBase64() + block.slice(44);
  const framing = largeAnswerFraming(overrides, block);
  await using upstream = startFakeUpstream();
  upstream.route("large", () => {
    let sent = 0;
    const encoder = new TextEncoder();
    return new Response(
      new ReadableStream({
        pull(controller) {
          if (sent === 0) controller.enqueue(encoder.encode(framing.head + first));
          else if (sent < BLOCKS) controller.enqueue(encoder.encode(block));
          else {
            controller.enqueue(encoder.encode(framing.tail));
            controller.close();
          }
          sent++;
        },
      }),
      { headers: { "content-type": framing.type } },
    );
  });
  let run: RunOutput | null = null;
  await withTempDir(async (dir) => {
    const input = { ...inputFor(upstream, "large", dir, { timeout_ms: 60000 }), ...overrides };
    run = await runTarget(target, [JSON.stringify(input)], {
      env: { DENO_V8_FLAGS: `--max-old-space-size=${HEAP_CAP_MB}` },
      measurePeakRss: HAS_TIME_COMMAND,
    });
  });
  return { run: run!, first, block };
}

for (const [what, overrides] of [["", {}], [", streamed,", { stream: true }]] as const) {
  testEachTarget(
    `decodes a ${BLOCKS * 3} MiB image${what} in pieces under a ${HEAP_CAP_MB} MB heap cap`,
    async (target) => {
      const { run, block } = await runOnLargeAnswer(target, overrides);
      assert.equal(run.code, 0, run.stdout + run.stderr);
      const result = onlyJson(run.stdout);
      const imageBytes = (block.length / 4) * 3 * BLOCKS;
      assert.equal(result.bytes, imageBytes);
      // The heap cap sees strings only; the image or the answer held whole as bytes shows here
      // (the allowance stays under one image: the garbage of streamed pieces peaks near 0.75).
      if (run.peakRssBytes !== undefined) {
        const allowed = await emptyRunPeakRss() + imageBytes * 0.9;
        assert.ok(run.peakRssBytes < allowed, `peak RSS ${run.peakRssBytes} >= ${allowed}`);
      }
      assert.equal(result.width, 64);
      if (overrides.stream) assert.equal(result.partial_images_received, 1);
    },
  );
}

testEachTarget(
  `prints return_base64 of a ${BLOCKS * 3} MiB image under a ${HEAP_CAP_MB} MB heap cap`,
  async (target) => {
    const { run, first, block } = await runOnLargeAnswer(target, { return_base64: true });
    assert.equal(run.code, 0, run.stderr);
    const start = run.stdout.indexOf('"b64": "') + 8;
    assert.equal(run.stdout.slice(start, start + first.length), first);
    assert.equal(run.stdout.length - start, block.length * BLOCKS + '"\n}\n'.length);
    assert.ok(run.stdout.endsWith(block + '"\n}\n'));
  },
);

const HAS_SCRIPT = (() => {
  try {
    return Deno.statSync("/usr/bin/script").isFile;
  } catch {
    return false;
  }
})();

/** Runs a target on a pseudo-terminal: script(1) copies what it shows to its stdout. */
async function runOnTerminal(target: CommandTarget, args: string[]): Promise<RunOutput> {
  const quoted = [...target.argv!, ...args].map((arg) => `'${arg.replaceAll("'", `'\\''`)}'`);
  const run = await new Deno.Command("/usr/bin/script", {
    args: ["-qec", quoted.join(" "), "/dev/null"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code: run.code, stdout: decoder.decode(run.stdout), stderr: decoder.decode(run.stderr) };
}

testEachTarget("shows progress on standard error only when it is a terminal", async (target) => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const input = JSON.stringify(inputFor(upstream, "ok", dir));
    const piped = await runTarget(target, [input]);
    assert.equal(piped.stderr, "");
    const onTerminal = await runOnTerminal(target, [input]);
    assert.equal(onTerminal.code, 0, onTerminal.stdout);
    assert.match(onTerminal.stdout, /img2-generate: requesting gpt-image-2 1024x1024/);
  });
}, { ignore: !HAS_SCRIPT });

testEachTarget(
  "masks the key and base_url's credentials in progress lines",
  async (target) => {
    await using upstream = startFakeUpstream();
    upstream.route("echo-retry", (request) =>
      Response.json({
        error: { message: `Busy: ${request.url} ${request.headers.get("authorization")}` },
      }, { status: 502, headers: { "retry-after-ms": "1" } }));
    await withTempDir(async (dir) => {
      const base_url = secretBaseUrl(upstream, "echo-retry");
      const input = inputFor(upstream, "echo-retry", dir, { base_url, max_retries: 1 });
      const onTerminal = await runOnTerminal(target, [JSON.stringify(input)]);
      assert.equal(onTerminal.code, 1, onTerminal.stdout);
      assert.match(onTerminal.stdout, /img2-generate: attempt 1 failed \(.*\); retrying in 1 ms/);
      assertNoSecret(onTerminal.stdout, [...URL_SECRETS, TEST_KEY]);
    });
  },
  { ignore: !HAS_SCRIPT },
);

/** A key whose pieces are easy to tell apart from anything else in an output. */
const PROBE_KEY = "sk-probe-SECRETKEY1234567890";
/** The pieces of PROBE_KEY an upstream or a careless caller may show: 12 characters or more. */
const PROBE_PIECES = [PROBE_KEY.slice(0, 12), PROBE_KEY.slice(6, 18), PROBE_KEY.slice(-12)];

testEachTarget("never prints the key a careless input puts in another field", async (target) => {
  await withTempDir(async (dir) => {
    const swapped = await runTarget(target, [
      ...["--prompt", "p", "--model", "gpt-image-2", "--size", "1024x1024", "--task-name", "t"],
      ...["--timeout-ms", "5000", "--output-dir", dir],
      ...["--base-url", PROBE_KEY, "--api-key", "https://api.example.com/v1"],
    ]);
    const invalidKey = await runTarget(target, [
      JSON.stringify({ api_key: `${PROBE_KEY}é`, prompt: "p", size: PROBE_KEY }),
    ]);
    const everywhere = await runTarget(target, [JSON.stringify({
      prompt: "p",
      base_url: "https://api.example.com/v1",
      api_key: PROBE_KEY,
      model: PROBE_KEY,
      size: PROBE_KEY,
      task_name: PROBE_KEY.slice(0, 20),
      timeout_ms: 5000,
      output_dir: `${dir}/${PROBE_KEY.slice(-14)}`,
    })]);
    const inTheRequest = await runTarget(target, [JSON.stringify({
      prompt: "p",
      base_url: "http://127.0.0.1:9/v1",
      api_key: PROBE_KEY,
      model: "gpt-image-2",
      size: "1024x1024",
      task_name: "t",
      timeout_ms: 5000,
      output_dir: dir,
      extra_body: { metadata: { note: PROBE_KEY } },
      extra_headers: { "x-title": PROBE_KEY },
    })]);
    assert.match(
      onlyJson(inTheRequest.stdout).error as string,
      /Invalid extra_body: it contains the api_key.*Invalid extra_headers: it contains the api_key/,
    );
    for (const run of [swapped, invalidKey, everywhere, inTheRequest]) {
      assert.equal(run.code, 2, run.stdout + run.stderr);
      assertNoSecret(run.stdout + run.stderr, PROBE_PIECES);
    }
    const result = onlyJson(everywhere.stdout);
    assert.deepEqual([result.model, result.size, result.task_name], ["***", "***", "***"]);
    assert.match(result.error as string, /Invalid model: it contains the api_key/);
    assert.equal(onlyJson(swapped.stdout).base_url, null);
    assert.deepEqual(await listDir(dir), []);
  });
});

testEachTarget(
  "never prints a piece of the key or of a credential header that an upstream quotes whole",
  async (target) => {
    await using upstream = startFakeUpstream();
    const header = "hdrsecretVALUE98765";
    upstream.route("pieces", () =>
      Response.json({
        error: {
          message: `Incorrect API key provided: ${PROBE_KEY.slice(0, 20)}. Tail ` +
            `${PROBE_KEY.slice(6)}, middle ${PROBE_KEY.slice(5, 22)}, header ${
              header.slice(0, 12)
            }`,
        },
      }, { status: 401 }));
    await withTempDir(async (dir) => {
      const input = inputFor(upstream, "pieces", dir, {
        api_key: PROBE_KEY,
        extra_headers: { "x-portkey-api-key": header },
      });
      const run = await runTarget(target, [JSON.stringify(input)]);
      assert.equal(run.code, 1, run.stdout + run.stderr);
      assertNoSecret(run.stdout, [...PROBE_PIECES, header.slice(0, 12)]);
      assert.equal(
        onlyJson(run.stdout).upstream_error_message,
        "Incorrect API key provided: ***. Tail ***, middle ***, header ***",
      );
    });
  },
);

testEachTarget(
  "masks a piece of the key an upstream quotes in progress lines",
  async (target) => {
    await using upstream = startFakeUpstream();
    upstream.route("pieces-retry", () =>
      Response.json(
        { error: { message: `Overloaded for ${PROBE_KEY.slice(0, 20)}` } },
        { status: 502, headers: { "retry-after-ms": "1" } },
      ));
    await withTempDir(async (dir) => {
      const input = inputFor(upstream, "pieces-retry", dir, { api_key: PROBE_KEY, max_retries: 1 });
      const onTerminal = await runOnTerminal(target, [JSON.stringify(input)]);
      assert.equal(onTerminal.code, 1, onTerminal.stdout);
      assert.match(onTerminal.stdout, /attempt 1 failed \(.*Overloaded for \*\*\*\); retrying/);
      assertNoSecret(onTerminal.stdout, PROBE_PIECES);
    });
  },
  { ignore: !HAS_SCRIPT },
);

testEachTarget(
  "refuses a base_url with a user and password, which would go out as a second Authorization",
  async (target) => {
    await using upstream = startFakeUpstream();
    await withTempDir(async (dir) => {
      const base_url = upstream.baseUrl("ok").replace("http://", "http://alice:userpassword1@");
      const input = JSON.stringify(inputFor(upstream, "ok", dir, { base_url }));
      for (const args of [[input], [input, "--dry-run"]]) {
        const run = await runTarget(target, args);
        assert.equal(run.code, 2, run.stdout + run.stderr);
        const result = onlyJson(run.stdout);
        assert.match(result.error as string, /^Invalid base_url: it holds a user name or password/);
        assertNoSecret(run.stdout, ["alice", "userpassword1"]);
      }
      assert.equal(upstream.requests.length, 0);
    });
  },
);

testEachTarget(
  "SIGTERM while reading the parameters from stdin prints a cancelled failure",
  async (target) => {
    const [command, ...leading] = target.argv!;
    const child = new Deno.Command(command!, {
      args: [...leading, "-"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    await signalsCaught(child.pid, ["SIGTERM", "SIGQUIT"]);
    child.kill("SIGTERM");
    const { code, stdout } = await child.output();
    await child.stdin.close();
    assert.equal(code, 143);
    const result = onlyJson(new TextDecoder().decode(stdout));
    assert.equal((result.diagnosis as { category: string }).category, "cancelled");
  },
);

/** The failure a run printed, which must be an input error: exit 2, stage input. */
function inputFailure(run: RunOutput): { error: string } {
  assert.equal(run.code, 2, run.stdout + run.stderr);
  const result = onlyJson(run.stdout);
  assert.equal(result.stage, "input");
  assert.equal((result.diagnosis as { category: string }).category, "invalid_input");
  return result as { error: string };
}

const INPUT_TOO_LARGE = "is larger than 1 MiB (1048576 bytes), the limit for the parameters";
/** Room above an empty `deno run` for the command's own modules and the 1 MiB read. */
const INPUT_RSS_ALLOWANCE = 96 * 1024 * 1024;

testEachTarget("stops reading --input /dev/zero at the cap, in bounded memory", async (target) => {
  const run = await runTarget(target, ["--input", "/dev/zero"], {
    measurePeakRss: HAS_TIME_COMMAND,
  });
  assert.equal(
    inputFailure(run).error,
    `Cannot read --input file "/dev/zero": it ${INPUT_TOO_LARGE}`,
  );
  if (run.peakRssBytes !== undefined) {
    const allowed = await emptyRunPeakRss() + INPUT_RSS_ALLOWANCE;
    assert.ok(run.peakRssBytes < allowed, `peak RSS ${run.peakRssBytes} >= ${allowed}`);
  }
});

testEachTarget(
  "stops reading 1 GiB on standard input at the cap, in bounded memory",
  async (target) => {
    const rssFile = await Deno.makeTempFile();
    try {
      const timed = HAS_TIME_COMMAND ? [TIME_COMMAND, "-f", "%M", "-o", rssFile] : [];
      // head stops with SIGPIPE once the command has exited without reading the rest.
      const output = await new Deno.Command("/bin/sh", {
        args: ["-c", 'head -c 1073741824 /dev/zero | "$@"', "sh", ...timed, ...target.argv!, "-"],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const decoder = new TextDecoder();
      const run = {
        code: output.code,
        stdout: decoder.decode(output.stdout),
        stderr: decoder.decode(output.stderr),
      };
      assert.equal(inputFailure(run).error, `Cannot read standard input: it ${INPUT_TOO_LARGE}`);
      if (HAS_TIME_COMMAND) {
        const peak = Number((await Deno.readTextFile(rssFile)).trim().split("\n").at(-1)) * 1024;
        const allowed = await emptyRunPeakRss() + INPUT_RSS_ALLOWANCE;
        assert.ok(peak < allowed, `peak RSS ${peak} >= ${allowed}`);
      }
    } finally {
      await Deno.remove(rssFile);
    }
  },
);

testEachTarget("accepts an --input file that starts with a byte order mark", async (target) => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const file = join(dir, "params.json");
    await Deno.writeTextFile(file, "\ufeff" + JSON.stringify(inputFor(upstream, "ok", dir)));
    const run = await runTarget(target, ["--input", file, "--dry-run"]);
    assert.equal(run.code, 0, run.stdout);
    assert.equal(onlyJson(run.stdout).dry_run, true);
  });
});

testEachTarget("trims the line break a key read from a file ends in", async (target) => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const input = inputFor(upstream, "ok", dir, { api_key: `${TEST_KEY}\n` });
    const run = await runTarget(target, [JSON.stringify(input)]);
    assert.equal(run.code, 0, run.stdout);
    assert.equal(upstream.requests[0]?.headers.get("authorization"), `Bearer ${TEST_KEY}`);
  });
});

testEachTarget(
  "refuses an api_key no HTTP header can carry, as one JSON object, sending nothing",
  async (target) => {
    await using upstream = startFakeUpstream();
    await withTempDir(async (dir) => {
      for (const api_key of ["sk-\ud800-lone", "sk-ключ-1234"]) {
        const run = await runTarget(target, [
          JSON.stringify(inputFor(upstream, "ok", dir, { api_key })),
        ]);
        assert.match(inputFailure(run).error, /^Invalid api_key: it contains a character that/);
      }
      assert.equal(upstream.requests.length, 0);
    });
  },
);

/** The files of `dir` that are not hidden, once there is one, looking every 10 ms for 20 s. */
async function shownFiles(dir: string): Promise<string[]> {
  for (let tries = 0; tries < 2000; tries++) {
    const shown = (await listDir(dir)).filter((name) => !name.startsWith("."));
    if (shown.length > 0) return shown;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`No image appeared in ${dir}`);
}

for (
  const [what, meddle] of [
    [
      "its name is swapped for a link to a secret",
      async (path: string, secret: string) => {
        await Deno.remove(path);
        await Deno.symlink(secret, path);
      },
    ],
    ["it is deleted", (path: string) => Deno.remove(path)],
  ] as const
) {
  testEachTarget(
    `prints the saved bytes as b64, in one whole JSON object, when ${what} before b64 is written`,
    async (target) => {
      await using upstream = startFakeUpstream();
      // A result larger than a pipe holds: writing it waits for this test to read standard output,
      // so the name can be meddled with after the image is named and before b64 is written.
      upstream.route("large-result", () =>
        new Response(
          JSON.stringify({
            data: [{ b64_json: PNG_64.toBase64(), revised_prompt: "long ".repeat(40_000) }],
          }),
          { headers: { "content-type": "application/json" } },
        ));
      await withTempDir(async (root) => {
        const secret = join(root, "secret.txt");
        await Deno.writeTextFile(secret, "TOP SECRET");
        const dir = join(root, "out");
        await Deno.mkdir(dir, { mode: 0o700 });
        const input = inputFor(upstream, "large-result", dir, { return_base64: true });
        const [command, ...leading] = target.argv!;
        const child = new Deno.Command(command!, {
          args: [...leading, JSON.stringify(input)],
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        // Standard output is not read until the name has been meddled with.
        let name: string | undefined;
        try {
          [name] = await shownFiles(dir);
          await meddle(join(dir, name!), secret);
        } finally {
          if (name === undefined) child.kill();
        }
        const { code, stdout } = await child.output();
        const result = onlyJson(new TextDecoder().decode(stdout));
        assert.equal(code, 0);
        assert.equal(result.image_path, join(dir, name!));
        assert.equal(result.b64, PNG_64.toBase64());
      });
    },
  );
}

testEachTarget("keeps no image whose success it could not print", async (target) => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const [command, ...leading] = target.argv!;
    const child = new Deno.Command(command!, {
      args: [...leading, JSON.stringify(inputFor(upstream, "ok", dir))],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // The reader goes away before anything is printed: the success reaches no one.
    await child.stdout.cancel();
    const { code } = await child.output();
    assert.equal(code, 1);
    assert.equal(upstream.requests.length, 1);
    assert.deepEqual(await listDir(dir), []);
  });
});

testEachTarget(
  "leaves a recognisable temporary file when killed, which a later run sweeps once old",
  async (target) => {
    await using upstream = startFakeUpstream();
    await withTempDir(async (dir) => {
      const arrived = upstream.nextArrival();
      const killed = await runTarget(
        target,
        [JSON.stringify(inputFor(upstream, "stall-body", dir, { timeout_ms: 60_000 }))],
        {
          whileRunning: async (child) => {
            await arrived;
            child.kill("SIGKILL");
          },
        },
      );
      assert.equal(killed.stdout, "");
      const [left, ...more] = await listDir(dir);
      assert.deepEqual(more, []);
      assert.match(left!, /^\.cat\.[0-9a-f]{8}\.img2-part$/);

      const run = async () =>
        onlyJson((await runTarget(target, [JSON.stringify(inputFor(upstream, "ok", dir))])).stdout);
      assert.equal((await run()).ok, true);
      assert.ok((await listDir(dir)).includes(left!), "a recent temporary file is kept");
      const twoDaysAgo = new Date(Date.now() - 2 * 24 * 60 * 60 * 1000);
      await Deno.utime(join(dir, left!), twoDaysAgo, twoDaysAgo);
      assert.equal((await run()).ok, true);
      assert.ok(!(await listDir(dir)).includes(left!), "an old one is swept");
    });
  },
);

testEachTarget("refuses a deeply nested extra_body in --dry-run and in a run", async (target) => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const deep = '{"a":'.repeat(10000) + "1" + "}".repeat(10000);
    const input = JSON.stringify(inputFor(upstream, "ok", dir)).replace(
      /}$/,
      `, "extra_body": ${deep}}`,
    );
    const file = join(dir, "deep.json");
    await Deno.writeTextFile(file, input);
    for (const extra of [["--dry-run"], []]) {
      const run = await runTarget(target, ["--input", file, ...extra]);
      assert.equal(
        inputFailure(run).error,
        "Invalid extra_body: nested more than 32 levels deep",
      );
    }
    assert.equal(upstream.requests.length, 0);
  });
});

testEachTarget("refuses ~ in output_dir when HOME is not set", async (target) => {
  await using upstream = startFakeUpstream();
  const input = inputFor(upstream, "ok", "~/generated");
  const run = await runTarget(target, [JSON.stringify(input), "--dry-run"], {
    env: { HOME: "" },
  });
  assert.match(inputFailure(run).error, /^Invalid output_dir "~\/generated": "~" stands for HOME/);
});

testEachTarget(
  "refuses an output_dir with a line break, or under /proc, with a message of its own",
  async (target) => {
    await using upstream = startFakeUpstream();
    const cases: [string, RegExp][] = [
      ["/tmp/x\nMEDIA:/etc/passwd", /line break/],
      ["/proc/self/images", /^Invalid output_dir "\/proc\/self\/images": it is under \/proc/],
    ];
    for (const [dir, expected] of cases) {
      const input = JSON.stringify(inputFor(upstream, "ok", dir));
      const run = await runTarget(target, [input, "--media-line"]);
      assert.match(inputFailure(run).error, expected);
      assert.doesNotMatch(run.stdout, /^MEDIA:/m);
    }
    assert.equal(upstream.requests.length, 0);
  },
);

testEachTarget("--help wins over any other argument error", async (target) => {
  const run = await runTarget(target, ["--frobnicate", "{broken", "--input", "/missing", "--help"]);
  assert.equal(run.code, 0, run.stdout);
  assert.ok(run.stdout.startsWith("img2-generate "), run.stdout);
});

testEachTarget("never quotes an unknown option that holds the key", async (target) => {
  const run = await runTarget(target, [`--api-key ${TEST_KEY}`, '{"model": "m"}']);
  assert.match(inputFailure(run).error, /^Unknown option "--api-key…"/);
  assert.ok(!run.stdout.includes(TEST_KEY.slice(3)), run.stdout);
});
testEachTarget("keeps to timeout_ms with a task_name of 50 000 characters", async (target) => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const started = performance.now();
    const taskName = "猫 .".repeat(12_500);
    const input = inputFor(upstream, "stall-headers", dir, {
      task_name: taskName,
      timeout_ms: 1000,
    });
    const run = await runTarget(target, ["-"], { stdin: JSON.stringify(input) });
    const elapsed = performance.now() - started;
    assert.equal((onlyJson(run.stdout).diagnosis as { category: string }).category, "timeout");
    // Far more than the run needs, far less than the quadratic naming took (half a minute).
    assert.ok(elapsed < 10_000, `answered after ${Math.round(elapsed)} ms`);
  });
});

const MIB = 1024 * 1024;
const SYNC_FLUSH = { finishFlush: zlibConstants.Z_SYNC_FLUSH };

interface GeneratedAnswer {
  head: string;
  /** Repeated `times` times after the head, made as it is sent; then the answer stalls. */
  filler: string;
  times: number;
  /** Compress with gzip: the same deflate blocks repeated, so a GB costs a MB on the wire. */
  gzip?: boolean;
}

/** A route that streams a generated answer, which never ends: the command must stop it. */
function generatedAnswer(answer: GeneratedAnswer) {
  const encode = (text: string) => new TextEncoder().encode(text);
  const head = answer.gzip
    ? concat([GZIP_HEADER, deflateRawSync(encode(answer.head), SYNC_FLUSH)])
    : encode(answer.head);
  const filler = answer.gzip
    ? new Uint8Array(deflateRawSync(encode(answer.filler), SYNC_FLUSH))
    : encode(answer.filler);
  return (_request: Request, _body: unknown, upstream: { untilClosed(): Promise<void> }) => {
    let sent = 0;
    return new Response(
      new ReadableStream({
        async pull(controller) {
          if (sent === 0) controller.enqueue(head);
          if (sent++ < answer.times) return controller.enqueue(filler);
          await upstream.untilClosed();
          controller.close();
        },
      }),
      {
        headers: {
          "content-type": "application/json",
          ...(answer.gzip ? { "content-encoding": "gzip" } : {}),
        },
      },
    );
  };
}

/** A gzip member's header: deflate, no flags, no time, unknown system. */
const GZIP_HEADER = new Uint8Array([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);

/** Runs the command on a generated answer under the heap cap, checking its peak RSS. */
async function runOnGenerated(
  target: CommandTarget,
  answer: GeneratedAnswer,
  timeoutMs: number,
): Promise<{ run: RunOutput; result: Record<string, unknown>; elapsedMs: number }> {
  await using upstream = startFakeUpstream();
  upstream.route("generated", generatedAnswer(answer));
  let output: { run: RunOutput; result: Record<string, unknown>; elapsedMs: number } | null = null;
  await withTempDir(async (dir) => {
    const input = inputFor(upstream, "generated", dir, { timeout_ms: timeoutMs });
    const started = performance.now();
    const run = await runTarget(target, [JSON.stringify(input)], {
      env: { DENO_V8_FLAGS: `--max-old-space-size=${HEAP_CAP_MB}` },
      measurePeakRss: HAS_TIME_COMMAND,
    });
    const elapsedMs = performance.now() - started;
    assert.equal(run.code, 1, run.stdout + run.stderr);
    output = { run, result: onlyJson(run.stdout), elapsedMs };
    assert.deepEqual(await listDir(dir), []);
    if (run.peakRssBytes !== undefined) {
      // The heap cap bounds what V8 keeps. This sees the rest: well below the 345 MB read, but
      // loose, since a gzip body arrives in 4 KiB chunks whose memory returns only at a GC.
      const allowed = await emptyRunPeakRss() + 192 * MIB;
      assert.ok(run.peakRssBytes < allowed, `peak RSS ${run.peakRssBytes} >= ${allowed}`);
    }
  });
  return output!;
}

function categoryOf(result: Record<string, unknown>): string {
  return (result.diagnosis as { category: string }).category;
}

for (
  const [what, answer] of [
    ["400 MB of whitespace", { head: '{"data": [{"b64_json": "', gzip: false, times: 400 }],
    // A group cut short, then whitespace: 1 GB unpacked, about 1 MB on the wire.
    ["1 GB of gzip-compressed whitespace", {
      head: '{"data": [{"b64_json": "iVBOR',
      gzip: true,
      times: 1024,
    }],
  ] as const
) {
  testEachTarget(
    `refuses b64_json of ${what} at the answer cap, under a ${HEAP_CAP_MB} MB heap cap`,
    async (target) => {
      const { result } = await runOnGenerated(
        target,
        { ...answer, filler: " ".repeat(MIB) },
        60000,
      );
      assert.equal(result.stage, "response");
      assert.equal(categoryOf(result), "bad_response");
      assert.match(result.error as string, /^The answer is larger than \d+ bytes$/);
    },
  );
}

testEachTarget(
  "answers within timeout_ms while b64_json is 1 GB of gzip-compressed whitespace",
  async (target) => {
    const timeoutMs = 1000;
    const { result, elapsedMs } = await runOnGenerated(target, {
      // A group cut short, then line breaks written as JSON escapes, and spaces.
      head: '{"data": [{"b64_json": "iVBOR',
      filler: "\\r\\n".repeat(MIB / 8) + " ".repeat(MIB / 2),
      times: 1024,
      gzip: true,
    }, timeoutMs);
    // Whichever comes first, the deadline or the answer's size cap, stops it.
    assert.ok(["timeout", "bad_response"].includes(categoryOf(result)), JSON.stringify(result));
    assert.equal(result.stage, "response");
    // The process starts and stops around the deadline; what matters is that it is not seconds.
    assert.ok(elapsedMs < timeoutMs + 3000, `answered after ${elapsedMs} ms`);
  },
);

testEachTarget(
  `refuses a 2xx answer with 1 GB of small strings beside the image, under a ${HEAP_CAP_MB} MB heap cap`,
  async (target) => {
    const { result } = await runOnGenerated(target, {
      head: `{"data": [{"b64_json": "${PNG_64.toBase64()}"}], "x": [`,
      // Each string is three pieces for the skeleton: kept one by one, they cost hundreds of
      // bytes each.
      filler: '"",'.repeat(MIB / 3),
      times: 1024,
    }, 60000);
    assert.equal(result.stage, "response");
    assert.equal(categoryOf(result), "bad_response");
    assert.match(result.error as string, /^The answer has more than \d+ bytes outside its image$/);
  },
);

for (const [signal, code] of [["SIGTERM", 143], ["SIGINT", 130]] as const) {
  testEachTarget(
    `${signal} ends the process within a second while standard output is never read`,
    async (target) => {
      await using upstream = startFakeUpstream();
      await withTempDir(async (dir) => {
        const outputDir = join(dir, "images");
        const input = inputFor(upstream, "stall-body", outputDir, { timeout_ms: 30000 });
        const arrived = upstream.nextArrival();
        const run = await signalWhileStdoutBlocked(target, [JSON.stringify(input)], dir, {
          signal,
          when: () => arrived,
        });
        assert.equal(run.code, code);
        assert.ok(run.afterSignalMs < 1500, `ended ${run.afterSignalMs} ms after ${signal}`);
        assert.deepEqual(await listDir(outputDir), []);
      });
    },
  );
}
