import assert from "node:assert/strict";
import {
  type InputSources,
  type Invocation,
  MAX_INPUT_BYTES,
  parseInvocation,
  readCapped,
  readParamFlag,
} from "../../lib/cli/args.ts";
import { InputError } from "../../lib/failure/errors.ts";
import { validateParams } from "../../lib/params/params.ts";

/** Stdin and files from memory (text, or bytes as they are), counting how often each is read. */
class FakeSources implements InputSources {
  stdinReads = 0;
  fileReads: string[] = [];
  constructor(
    readonly stdinText: string | Uint8Array = "",
    readonly files: Record<string, string | Uint8Array> = {},
  ) {}

  stdin(): ReadableStream<Uint8Array> {
    this.stdinReads++;
    return streamOf(this.stdinText);
  }

  openFile(path: string): Promise<ReadableStream<Uint8Array>> {
    this.fileReads.push(path);
    const content = this.files[path];
    return content === undefined
      ? Promise.reject(new Deno.errors.NotFound(`No such file or directory: ${path}`))
      : Promise.resolve(streamOf(content));
  }
}

function streamOf(content: string | Uint8Array): ReadableStream<Uint8Array> {
  const bytes = typeof content === "string" ? new TextEncoder().encode(content) : content;
  return ReadableStream.from([bytes]);
}

function parse(argv: string[], sources = new FakeSources()): Promise<Invocation> {
  return parseInvocation(argv, sources);
}

/** The message of the InputError that parsing `argv` must raise. */
async function problemOf(argv: string[], sources = new FakeSources()): Promise<string> {
  try {
    await parseInvocation(argv, sources);
  } catch (error) {
    assert.ok(error instanceof InputError, `expected an InputError, got ${error}`);
    assert.equal(error.stage, "input");
    return error.message;
  }
  assert.fail(`expected parseInvocation() to reject ${JSON.stringify(argv)}`);
}

const SECRET = "sk-live-9f8e7d6c5b4a39281706";

Deno.test("parseInvocation() reads a JSON object from the one argument", async () => {
  const sources = new FakeSources();
  assert.deepEqual(await parse(['{"prompt": "猫", "n": 1, "extra_body": {"seed": 3}}'], sources), {
    input: { prompt: "猫", n: 1, extra_body: { seed: 3 } },
    help: false,
    version: false,
    dryRun: false,
  });
  assert.equal(sources.stdinReads, 0);
});

Deno.test("parseInvocation() reads the JSON object from stdin for -", async () => {
  const sources = new FakeSources(`{"api_key": "${SECRET}", "model": "gpt-image-2"}\n`);
  const invocation = await parse(["-"], sources);
  assert.deepEqual(invocation.input, { api_key: SECRET, model: "gpt-image-2" });
  assert.equal(sources.stdinReads, 1);
});

Deno.test("parseInvocation() reads the JSON object from --input FILE", async () => {
  const sources = new FakeSources("", { "params.json": '{"size": "auto"}' });
  assert.deepEqual((await parse(["--input", "params.json"], sources)).input, { size: "auto" });
  assert.deepEqual(sources.fileReads, ["params.json"]);
  assert.equal(sources.stdinReads, 0);
});

Deno.test("parseInvocation() reads --input=FILE", async () => {
  const sources = new FakeSources("", { "/tmp/a b.json": '{"size": "auto"}' });
  assert.deepEqual((await parse(["--input=/tmp/a b.json"], sources)).input, { size: "auto" });
});

Deno.test("parseInvocation() names the --input file it cannot read", async () => {
  assert.equal(
    await problemOf(["--input", "missing.json"]),
    'Cannot read --input file "missing.json": No such file or directory: missing.json',
  );
});

Deno.test("parseInvocation() takes each parameter by its snake_case flag", async () => {
  const invocation = await parse([
    "--base_url",
    "https://api.example.com/v1",
    "--task_name",
    "海报",
    "--timeout_ms",
    "300000",
  ]);
  assert.deepEqual(invocation.input, {
    base_url: "https://api.example.com/v1",
    task_name: "海报",
    timeout_ms: "300000",
  });
});

Deno.test("parseInvocation() takes each parameter by its kebab-case flag", async () => {
  const invocation = await parse([
    "--base-url",
    "https://api.example.com/v1",
    "--task-name",
    "海报",
    "--output-compression",
    "80",
  ]);
  assert.deepEqual(invocation.input, {
    base_url: "https://api.example.com/v1",
    task_name: "海报",
    output_compression: "80",
  });
});

Deno.test("parseInvocation() takes --name=value and keeps later equals signs in the value", async () => {
  const invocation = await parse(["--prompt=a=b=c", "--model=gpt-image-2", "--user="]);
  assert.deepEqual(invocation.input, { prompt: "a=b=c", model: "gpt-image-2", user: "" });
});

Deno.test("parseInvocation() keeps a flag value that starts with a dash", async () => {
  assert.deepEqual((await parse(["--prompt", "-a dash"])).input, { prompt: "-a dash" });
});

Deno.test("parseInvocation() reads a boolean flag alone as true", async () => {
  assert.deepEqual((await parse(["--return-base64"])).input, { return_base64: "true" });
  assert.deepEqual((await parse(["--media_line"])).input, { media_line: "true" });
});

Deno.test("parseInvocation() takes an explicit true or false after a boolean flag", async () => {
  assert.deepEqual((await parse(["--return-base64", "false"])).input, { return_base64: "false" });
  assert.deepEqual((await parse(["--return-base64", "true"])).input, { return_base64: "true" });
  assert.deepEqual((await parse(["--return-base64=false"])).input, { return_base64: "false" });
});

Deno.test("parseInvocation() does not swallow the next flag after a lone boolean flag", async () => {
  assert.deepEqual((await parse(["--return-base64", "--model", "m"])).input, {
    return_base64: "true",
    model: "m",
  });
});

Deno.test("parseInvocation() leaves a non-boolean word after a boolean flag as the argument", async () => {
  assert.deepEqual((await parse(["--return-base64", '{"model": "m"}'])).input, {
    model: "m",
    return_base64: "true",
  });
});

Deno.test("parseInvocation() parses --extra-body as a JSON object", async () => {
  assert.deepEqual((await parse(["--extra-body", '{"seed": 7, "watermark": false}'])).input, {
    extra_body: { seed: 7, watermark: false },
  });
  assert.deepEqual((await parse(['--extra_body={"seed":7}'])).input, { extra_body: { seed: 7 } });
});

Deno.test("parseInvocation() rejects an --extra-body that is not a JSON object", async () => {
  assert.equal(
    await problemOf(["--extra-body", "[1, 2]"]),
    "Expected --extra-body to be a JSON object",
  );
  assert.equal(
    await problemOf(["--extra-body", "null"]),
    "Expected --extra-body to be a JSON object",
  );
  assert.match(
    await problemOf(["--extra-body", "{seed: 7}"]),
    /^Cannot parse --extra-body as JSON: /,
  );
});

Deno.test("parseInvocation() lets flags override the JSON argument field by field", async () => {
  const invocation = await parse([
    '{"prompt": "a cat", "model": "gpt-image-2", "size": "1024x1024"}',
    "--prompt",
    "a dog",
    "--size=auto",
  ]);
  assert.deepEqual(invocation.input, { prompt: "a dog", model: "gpt-image-2", size: "auto" });
});

Deno.test("parseInvocation() lets flags given before the JSON argument still override it", async () => {
  const invocation = await parse(["--prompt", "a dog", '{"prompt": "a cat", "n": 1}']);
  assert.deepEqual(invocation.input, { prompt: "a dog", n: 1 });
});

Deno.test("parseInvocation() lets flags override stdin field by field", async () => {
  const sources = new FakeSources(`{"api_key": "${SECRET}", "model": "a", "lang": "zh"}`);
  assert.deepEqual((await parse(["-", "--model", "b"], sources)).input, {
    api_key: SECRET,
    model: "b",
    lang: "zh",
  });
});

Deno.test("parseInvocation() lets the --input file override the JSON argument", async () => {
  const sources = new FakeSources("", { "p.json": '{"model": "from-file", "size": "auto"}' });
  const invocation = await parse(
    ['{"model": "from-arg", "prompt": "kept"}', "--input", "p.json", "--size", "512x512"],
    sources,
  );
  assert.deepEqual(invocation.input, { model: "from-file", prompt: "kept", size: "512x512" });
});

Deno.test("parseInvocation() replaces extra_body whole when a flag gives it again", async () => {
  const invocation = await parse(['{"extra_body": {"a": 1}}', "--extra-body", '{"b": 2}']);
  assert.deepEqual(invocation.input, { extra_body: { b: 2 } });
});

Deno.test("parseInvocation() leaves flag values as strings for validation to convert", async () => {
  const invocation = await parse([
    '{"prompt": "p", "base_url": "https://api.example.com/v1", "model": "m", "size": "auto"}',
    "--api-key",
    SECRET,
    "--task-name",
    "t",
    "--timeout-ms",
    "300000",
    "--n",
    "1",
    "--return-base64",
  ]);
  assert.equal(invocation.input.timeout_ms, "300000");
  const params = validateParams(invocation.input);
  assert.equal(params.timeout_ms, 300000);
  assert.equal(params.n, 1);
  assert.equal(params.return_base64, true);
});

Deno.test("parseInvocation() recognises --help, -h, --version, -V and --dry-run", async () => {
  const cases: [string[], Partial<Invocation>][] = [
    [["--help"], { help: true, version: false, dryRun: false }],
    [["-h"], { help: true, version: false, dryRun: false }],
    [["--version"], { help: false, version: true, dryRun: false }],
    [["-V"], { help: false, version: true, dryRun: false }],
    [["--dry-run"], { help: false, version: false, dryRun: true }],
    [["--dry_run"], { help: false, version: false, dryRun: true }],
  ];
  for (const [argv, expected] of cases) {
    assert.deepEqual(await parse(argv), { input: {}, ...expected });
  }
});

Deno.test("parseInvocation() combines --dry-run with the JSON argument", async () => {
  assert.deepEqual(await parse(['{"model": "m"}', "--dry-run"]), {
    input: { model: "m" },
    help: false,
    version: false,
    dryRun: true,
  });
});

Deno.test("parseInvocation() takes what follows -- as arguments", async () => {
  const sources = new FakeSources('{"model": "m"}');
  assert.deepEqual((await parse(["--", "-"], sources)).input, { model: "m" });
  assert.equal(sources.stdinReads, 1);
  assert.deepEqual((await parse(["--size", "auto", "--", '{"model": "n"}'])).input, {
    model: "n",
    size: "auto",
  });
});

Deno.test("parseInvocation() rejects an unknown short option", async () => {
  assert.equal(await problemOf(["-x"]), 'Unknown option "-x"');
  assert.equal(await problemOf(["-p", "cat"]), 'Unknown option "-p"');
});

Deno.test("parseInvocation() suggests timeout_ms for --timeout", async () => {
  assert.equal(
    await problemOf(["--timeout", "300000"]),
    'Unknown parameter "timeout": did you mean "timeout_ms"?',
  );
});

Deno.test("parseInvocation() names an unknown flag as it was spelt", async () => {
  assert.equal(
    await problemOf(["--base-uri", "https://x"]),
    'Unknown parameter "base-uri": did you mean "base_url"?',
  );
  assert.equal(await problemOf(["--frobnicate"]), 'Unknown parameter "frobnicate"');
});

Deno.test("parseInvocation() rejects a parameter given twice by flags", async () => {
  assert.equal(
    await problemOf(["--base-url", "https://a", "--base_url", "https://b"]),
    'Option "--base_url" is given twice',
  );
  assert.equal(await problemOf(["--model=a", "--model=b"]), 'Option "--model" is given twice');
});

Deno.test("parseInvocation() rejects a flag without its value", async () => {
  assert.equal(await problemOf(["--model"]), 'Option "--model" needs a value');
  assert.equal(await problemOf(["--input"]), 'Option "--input" needs a value');
  assert.equal(await problemOf(["--extra-body"]), 'Option "--extra-body" needs a value');
});

Deno.test("parseInvocation() rejects more than one argument", async () => {
  assert.equal(
    await problemOf(['{"a": 1}', '{"b": 2}']),
    'Expected at most one argument (a JSON object or "-"), got 2',
  );
  assert.equal(
    await problemOf(["-", "-", "-"]),
    'Expected at most one argument (a JSON object or "-"), got 3',
  );
});

Deno.test("parseInvocation() rejects - together with --input", async () => {
  const sources = new FakeSources("{}", { "p.json": "{}" });
  assert.equal(
    await problemOf(["-", "--input", "p.json"], sources),
    'Give either "-" or --input, not both',
  );
  assert.equal(sources.stdinReads, 0);
});

Deno.test("parseInvocation() rejects JSON that is not an object", async () => {
  assert.equal(await problemOf(["[1, 2]"]), "Expected the JSON argument to be a JSON object");
  assert.equal(await problemOf(["null"]), "Expected the JSON argument to be a JSON object");
  assert.equal(await problemOf(['"text"']), "Expected the JSON argument to be a JSON object");
  assert.equal(
    await problemOf(["-"], new FakeSources("42")),
    "Expected standard input to be a JSON object",
  );
  assert.equal(
    await problemOf(["--input", "p.json"], new FakeSources("", { "p.json": "[]" })),
    'Expected --input file "p.json" to be a JSON object',
  );
});

Deno.test("parseInvocation() says where the unparsable JSON came from", async () => {
  assert.equal(
    await problemOf([""]),
    "Cannot parse the JSON argument as JSON: Unexpected end of JSON input",
  );
  assert.equal(
    await problemOf(["-"], new FakeSources("")),
    "Cannot parse standard input as JSON: Unexpected end of JSON input",
  );
  assert.equal(
    await problemOf(["--input", "p.json"], new FakeSources("", { "p.json": "{" })),
    'Cannot parse --input file "p.json" as JSON: ' +
      "Expected property name or '}' in JSON at position 1 (line 1 column 2)",
  );
});

/** Malformed JSON holding the key, as a hurried shell user might type it. */
const MALFORMED_WITH_KEY = [
  `{"api_key": ${SECRET}}`,
  `{"api_key": "${SECRET}"`,
  `{"api_key": "${SECRET}",}`,
  `{'api_key': '${SECRET}'}`,
  `{"api_key": "${SECRET}"} trailing`,
  `{"prompt": "a cat", "api_key": ${SECRET}, "model": "gpt-image-2", "size": "auto"}`,
  `{"prompt": "a very long prompt that goes on", "api_key": "${SECRET}" "model": "m"}`,
  SECRET,
  `api_key=${SECRET}`,
  `x{"api_key": "${SECRET}"}`,
];

/** True when `message` shows any 6 consecutive characters of the key. */
function showsKey(message: string): boolean {
  for (let i = 0; i + 6 <= SECRET.length; i++) {
    if (message.includes(SECRET.slice(i, i + 6))) return true;
  }
  return false;
}

Deno.test("parseInvocation() never quotes a malformed JSON argument back", async () => {
  const leaks: string[] = [];
  for (const text of MALFORMED_WITH_KEY) {
    const message = await problemOf([text]);
    assert.match(message, /^(?:Cannot parse the JSON argument as JSON: |Unexpected argument )/);
    if (showsKey(message)) leaks.push(message);
  }
  assert.deepEqual(leaks, []);
});

Deno.test("parseInvocation() never quotes malformed JSON from stdin back", async () => {
  const leaks: string[] = [];
  for (const text of MALFORMED_WITH_KEY) {
    const message = await problemOf(["-"], new FakeSources(text));
    assert.match(message, /^Cannot parse standard input as JSON: /);
    if (showsKey(message)) leaks.push(message);
  }
  assert.deepEqual(leaks, []);
});

Deno.test("parseInvocation() never quotes a malformed --input file back", async () => {
  const leaks: string[] = [];
  for (const text of MALFORMED_WITH_KEY) {
    const message = await problemOf(["--input", "k.json"], new FakeSources("", { "k.json": text }));
    assert.match(message, /^Cannot parse --input file "k\.json" as JSON: /);
    if (showsKey(message)) leaks.push(message);
  }
  assert.deepEqual(leaks, []);
});

Deno.test("parseInvocation() never quotes a malformed --extra-body back", async () => {
  const message = await problemOf(["--extra-body", `{"token": ${SECRET}}`]);
  assert.match(message, /^Cannot parse --extra-body as JSON: /);
  assert.equal(showsKey(message), false, `the key shows in: ${message}`);
});

Deno.test("parseInvocation() reports an unexpected token without the text around it", async () => {
  assert.equal(
    await problemOf(["-"], new FakeSources(SECRET)),
    "Cannot parse standard input as JSON: Unexpected token 's'",
  );
  assert.equal(
    await problemOf([`{"prompt": "a cat", "api_key": ${SECRET}}`]),
    "Cannot parse the JSON argument as JSON: Unexpected token 's'",
  );
  assert.equal(
    await problemOf(["-"], new FakeSources("nope")),
    "Cannot parse standard input as JSON: Unexpected token 'o'",
  );
});

const STRAY = 'expected one JSON object or "-" besides the options (quote a value that has spaces)';

Deno.test("parseInvocation() calls a word after the flags a stray argument", async () => {
  assert.equal(
    await problemOf(["--prompt", "a", "cat", "--model", "m"]),
    `Unexpected argument "cat": ${STRAY}`,
  );
  assert.equal(
    await problemOf(['{"model": "m"}', "--size", "1024", "x", "1024"]),
    `Unexpected argument "x": ${STRAY}`,
  );
  assert.equal(await problemOf(["300000"]), `Unexpected argument "300000": ${STRAY}`);
});

Deno.test("parseInvocation() does not quote a stray argument that may be a key", async () => {
  for (const key of [SECRET, "sk-test-9f8e7d6c5b4a3210", "0123456789abcdef"]) {
    assert.equal(
      await problemOf(["--model", "m", key]),
      `Unexpected argument of ${key.length} characters (not shown): ${STRAY}`,
    );
  }
});

Deno.test("parseInvocation() never quotes an unknown option that holds JSON or a key", async () => {
  const cases: [string, string][] = [
    [
      `--api-key ${SECRET}`,
      `Unknown option "--api-key…" (${
        SECRET.length + 10
      } characters, not shown): give its value as the next argument or after "="`,
    ],
    [
      `--api_key:${SECRET}`,
      `Unknown option "--api_key…" (${
        SECRET.length + 10
      } characters, not shown): give its value as the next argument or after "="`,
    ],
    [
      `--{"api_key": "${SECRET}"}`,
      `Unknown option: an argument of ${
        SECRET.length + 17
      } characters starting with "-" (not shown)`,
    ],
    [
      `-{"api_key":"${SECRET}"}`,
      `Unknown option: an argument of ${
        SECRET.length + 15
      } characters starting with "-" (not shown)`,
    ],
    [
      `-${SECRET}`,
      `Unknown option: an argument of ${
        SECRET.length + 1
      } characters starting with "-" (not shown)`,
    ],
  ];
  for (const [arg, expected] of cases) {
    const message = await problemOf([arg]);
    assert.equal(message, expected);
    assert.equal(showsKey(message), false, message);
  }
});

Deno.test("parseInvocation() quotes a short unknown option by name", async () => {
  assert.equal(await problemOf(["--seed", "7"]), 'Unknown parameter "seed"');
  assert.equal(
    await problemOf(["--timeout=300000"]),
    'Unknown parameter "timeout": did you mean "timeout_ms"?',
  );
  assert.equal(await problemOf(["-n", "1"]), 'Unknown option "-n"');
  assert.equal(
    await problemOf(["--output-compresion=80"]),
    'Unknown parameter "output-compresion": did you mean "output_compression"?',
  );
});

Deno.test("parseInvocation() rejects --input given twice", async () => {
  const sources = new FakeSources("", { "a.json": "{}", "b.json": "{}" });
  assert.equal(
    await problemOf(["--input", "a.json", "--input=b.json"], sources),
    'Option "--input" is given twice',
  );
  assert.deepEqual(sources.fileReads, []);
});

Deno.test("parseInvocation() lets --help and --version win over any other mistake", async () => {
  const mistakes = [
    ["--frobnicate"],
    ["--model"],
    ["{not json"],
    ["a", "b"],
    ["--input", "missing.json"],
    ["-", "--input", "missing.json"],
    ["--model=a", "--model=b"],
  ];
  for (const mistake of mistakes) {
    const sources = new FakeSources("{}");
    const help = await parse([...mistake, "--help"], sources);
    assert.deepEqual(help, { input: {}, help: true, version: false, dryRun: false });
    const version = await parse(["-V", ...mistake], sources);
    assert.deepEqual(version, { input: {}, help: false, version: true, dryRun: false });
    assert.equal(sources.stdinReads, 0);
    assert.deepEqual(sources.fileReads, []);
  }
  assert.equal((await parse(["--version", "--help"])).help, true);
});

/** A stream of `chunk` repeated without end, counting the bytes that were pulled from it. */
function endless(chunk: Uint8Array): { stream: ReadableStream<Uint8Array>; pulled: () => number } {
  let pulled = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulled += chunk.length;
      controller.enqueue(chunk);
    },
  }, { highWaterMark: 0 });
  return { stream, pulled: () => pulled };
}

class EndlessSources extends FakeSources {
  readonly source = endless(new Uint8Array(64 * 1024).fill(0x20));
  override stdin(): ReadableStream<Uint8Array> {
    return this.source.stream;
  }
  override openFile(): Promise<ReadableStream<Uint8Array>> {
    return Promise.resolve(this.source.stream);
  }
}

const TOO_LARGE = "is larger than 1 MiB (1048576 bytes), the limit for the parameters";

Deno.test("parseInvocation() stops reading standard input at the cap", async () => {
  const sources = new EndlessSources();
  assert.equal(await problemOf(["-"], sources), `Cannot read standard input: it ${TOO_LARGE}`);
  assert.ok(sources.source.pulled() <= MAX_INPUT_BYTES + 64 * 1024, `${sources.source.pulled()}`);
});

Deno.test("parseInvocation() stops reading an --input file at the cap", async () => {
  const sources = new EndlessSources();
  assert.equal(
    await problemOf(["--input", "/dev/zero"], sources),
    `Cannot read --input file "/dev/zero": it ${TOO_LARGE}`,
  );
  assert.ok(sources.source.pulled() <= MAX_INPUT_BYTES + 64 * 1024, `${sources.source.pulled()}`);
});

/** A JSON object of exactly `bytes` bytes in UTF-8, its prompt padded with "猫" and spaces. */
function jsonOfBytes(bytes: number): string {
  const count = Math.floor((bytes - 14) / 3);
  return `{"prompt": "${"猫".repeat(count)}"}` + " ".repeat(bytes - 14 - 3 * count);
}

Deno.test("parseInvocation() takes each JSON form up to exactly the cap", async () => {
  const text = jsonOfBytes(MAX_INPUT_BYTES);
  assert.equal(new TextEncoder().encode(text).length, MAX_INPUT_BYTES);
  const sources = new FakeSources(text, { "p.json": text });
  for (const argv of [[text], ["-"], ["--input", "p.json"]]) {
    assert.equal(((await parse(argv, sources)).input.prompt as string).length, 349520);
  }
});

Deno.test("parseInvocation() refuses each JSON form one byte over the cap", async () => {
  const text = jsonOfBytes(MAX_INPUT_BYTES + 1);
  const sources = new FakeSources(text, { "p.json": text });
  assert.equal(await problemOf([text], sources), `Cannot read the JSON argument: it ${TOO_LARGE}`);
  assert.equal(await problemOf(["-"], sources), `Cannot read standard input: it ${TOO_LARGE}`);
  assert.equal(
    await problemOf(["--input", "p.json"], sources),
    `Cannot read --input file "p.json": it ${TOO_LARGE}`,
  );
  assert.equal(
    await problemOf(["--extra-body", text]),
    `Cannot read --extra-body: it ${TOO_LARGE}`,
  );
});

Deno.test("parseInvocation() fits the longest prompt written as escapes, with every other field", async () => {
  // 32000 characters outside the BMP, each written as a surrogate pair of \uXXXX escapes.
  const prompt = "\\ud83d\\ude00".repeat(32000);
  const text = `{"prompt": "${prompt}", "base_url": "https://api.example.com/v1", ` +
    `"api_key": "${SECRET}", "model": "gpt-image-2", "size": "1024x1024", ` +
    `"task_name": "${"t".repeat(180)}", "timeout_ms": 300000, "output_dir": "/${
      "d".repeat(4000)
    }", ` +
    `"extra_body": {"notes": "${"n".repeat(100000)}"}}`;
  const input = (await parse(["-"], new FakeSources(text))).input;
  const params = validateParams(input);
  assert.equal([...params.prompt].length, 32000);
});

Deno.test("parseInvocation() accepts a UTF-8 byte order mark, in a file as on stdin", async () => {
  const bom = '\ufeff{"model": "猫"}';
  const sources = new FakeSources(bom, { "bom.json": bom });
  assert.deepEqual((await parse(["--input", "bom.json"], sources)).input, { model: "猫" });
  assert.deepEqual((await parse(["-"], sources)).input, { model: "猫" });
});

Deno.test("parseInvocation() refuses input that is not UTF-8 rather than replace its bytes", async () => {
  const utf16 = new Uint8Array([0xff, 0xfe, 0x7b, 0x00, 0x7d, 0x00]);
  const latin1 = new Uint8Array([...new TextEncoder().encode('{"prompt": "caf'), 0xe9, 0x22, 0x7d]);
  const sources = new FakeSources(latin1, { "utf16.json": utf16 });
  assert.equal(
    await problemOf(["--input", "utf16.json"], sources),
    'Cannot read --input file "utf16.json": it is not UTF-8 text',
  );
  assert.equal(await problemOf(["-"], sources), "Cannot read standard input: it is not UTF-8 text");
});

Deno.test("parseInvocation() reads nothing from stdin when - is absent", async () => {
  const sources = new FakeSources('{"model": "m"}');
  assert.deepEqual((await parse(["--model", "x"], sources)).input, { model: "x" });
  assert.equal(sources.stdinReads, 0);
});

Deno.test("parseInvocation() returns an empty input for no arguments", async () => {
  assert.deepEqual(await parse([]), { input: {}, help: false, version: false, dryRun: false });
});

Deno.test("readCapped() gives up a read that never ends on the signal, and cancels the stream", async () => {
  let cancelled = false;
  const endless = new ReadableStream<Uint8Array>({
    pull: () => new Promise(() => {}),
    cancel: () => {
      cancelled = true;
    },
  });
  const stop = new AbortController();
  const reading = readCapped(endless, "the pipe", undefined, stop.signal);
  stop.abort();
  await assert.rejects(reading, new InputError("Cannot read the pipe: cancelled"));
  assert.equal(cancelled, true);
});

Deno.test("readCapped() stops at its limit and names it", async () => {
  const bytes = new Uint8Array(11);
  const source = () => new Blob([bytes.subarray(0, 5), bytes.subarray(5)]).stream();
  assert.equal((await readCapped(source(), "x", { bytes: 11, label: "eleven" })).length, 11);
  await assert.rejects(
    readCapped(source(), "x", { bytes: 10, label: "ten bytes" }),
    new InputError("Cannot read x: it is larger than ten bytes"),
  );
});

Deno.test("readParamFlag() reads one parameter flag and returns the last index it took", () => {
  const values = {};
  const argv = ["--return-base64", "false", "--size=1x1", "--extra-body", '{"seed":1}', "--model"];
  assert.equal(readParamFlag(argv, 0, values), 1);
  assert.equal(readParamFlag(argv, 2, values), 2);
  assert.equal(readParamFlag(argv, 3, values), 4);
  assert.deepEqual(values, { return_base64: "false", size: "1x1", extra_body: { seed: 1 } });
  assert.throws(() => readParamFlag(argv, 5, values), /Option "--model" needs a value/);
  assert.throws(() => readParamFlag(["--size", "2"], 0, values), /"--size" is given twice/);
});
