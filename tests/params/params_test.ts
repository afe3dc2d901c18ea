import assert from "node:assert/strict";
import { resolve } from "node:path";
import { InputError } from "../../lib/failure/errors.ts";
import {
  DEFAULT_OUTPUT_DIR,
  type GenerationInput,
  isParamName,
  nearestParamName,
  PASSTHROUGH_NAMES,
  REQUIRED_NAMES,
  unknownParamMessage,
  validateParams,
} from "../../lib/params/params.ts";
import { VALID_INPUT as VALID } from "../_helpers.ts";

function withInput(changes: GenerationInput): GenerationInput {
  return { ...VALID, ...changes };
}

/** The message of the InputError that validation must raise for `input`. */
function problemOf(input: GenerationInput): string {
  try {
    validateParams(input);
  } catch (error) {
    assert.ok(error instanceof InputError, `expected an InputError, got ${error}`);
    assert.equal(error.stage, "input");
    return error.message;
  }
  assert.fail(`expected validateParams() to reject ${JSON.stringify(input)}`);
}

Deno.test("validateParams() fills in every default for the required parameters alone", () => {
  assert.deepEqual(validateParams({ ...VALID }), {
    ...VALID,
    output_dir: DEFAULT_OUTPUT_DIR,
    response_format: "b64_json",
    n: 1,
    return_base64: false,
    lang: "zh",
    max_retries: 0,
    media_line: false,
    stream: false,
    partial_images: null,
    save_partials: false,
    passthrough: {},
    extra_body: {},
    auth_header: "authorization",
    extra_headers: {},
  });
});

Deno.test("validateParams() lists the seven required parameters", () => {
  assert.deepEqual(REQUIRED_NAMES, [
    "prompt",
    "base_url",
    "api_key",
    "model",
    "size",
    "task_name",
    "timeout_ms",
  ]);
});

Deno.test('validateParams() turns the string "300000" into the number 300000 for timeout_ms', () => {
  const params = validateParams(withInput({ timeout_ms: "300000" }));
  assert.equal(params.timeout_ms, 300000);
  assert.equal(typeof params.timeout_ms, "number");
});

Deno.test('validateParams() accepts the string "1" for n', () => {
  assert.equal(validateParams(withInput({ n: "1" })).n, 1);
});

Deno.test('validateParams() accepts the strings "true" and "false" for booleans', () => {
  assert.equal(validateParams(withInput({ return_base64: "true" })).return_base64, true);
  assert.equal(validateParams(withInput({ return_base64: "false" })).return_base64, false);
  assert.equal(validateParams(withInput({ media_line: "true" })).media_line, true);
  assert.equal(validateParams(withInput({ return_base64: true })).return_base64, true);
  assert.equal(validateParams(withInput({ return_base64: false })).return_base64, false);
});

Deno.test("validateParams() turns numeric strings into numbers for every integer parameter", () => {
  const params = validateParams(
    withInput({ max_retries: "3", output_compression: "80", timeout_ms: "1" }),
  );
  assert.equal(params.max_retries, 3);
  assert.equal(params.timeout_ms, 1);
  assert.deepEqual(params.passthrough, { output_compression: 80 });
});

Deno.test("validateParams() rejects other spellings of a boolean", () => {
  for (const value of ["yes", "TRUE", "1", "", 1, 0]) {
    assert.equal(
      problemOf(withInput({ return_base64: value })),
      `Invalid return_base64 ${JSON.stringify(value)}: expected true or false`,
    );
  }
});

Deno.test("validateParams() rejects a timeout_ms that is not a positive integer", () => {
  const cases: [unknown, string][] = [
    ["abc", '"abc"'],
    [0, "0"],
    [-5, "-5"],
    ["-5", '"-5"'],
    [1.5, "1.5"],
    ["1.5", '"1.5"'],
    ["1e3", '"1e3"'],
    [true, "true"],
    [[300000], "[300000]"],
  ];
  for (const [value, shown] of cases) {
    assert.equal(
      problemOf(withInput({ timeout_ms: value })),
      `Invalid timeout_ms ${shown}: expected a positive integer`,
    );
  }
});

Deno.test("validateParams() names the maximum of timeout_ms when it is above it", () => {
  for (const [value, shown] of [[2 ** 31, "2147483648"], ["9999999999", '"9999999999"']]) {
    assert.equal(
      problemOf(withInput({ timeout_ms: value })),
      `Invalid timeout_ms ${shown}: expected at most 2147483647 (about 24.8 days), ` +
        "the longest timer the runtime can arm",
    );
  }
});

Deno.test("validateParams() accepts the longest timer the runtime can arm", () => {
  assert.equal(validateParams(withInput({ timeout_ms: 2 ** 31 - 1 })).timeout_ms, 2147483647);
});

Deno.test("validateParams() accepts n only as 1", () => {
  assert.equal(problemOf(withInput({ n: 2 })), "Invalid n 2: expected 1");
  assert.equal(problemOf(withInput({ n: "4" })), 'Invalid n "4": expected 1');
  assert.equal(problemOf(withInput({ n: 0 })), "Invalid n 0: expected 1");
});

Deno.test("validateParams() bounds max_retries from 0 to 10", () => {
  assert.equal(validateParams(withInput({ max_retries: 0 })).max_retries, 0);
  assert.equal(validateParams(withInput({ max_retries: 10 })).max_retries, 10);
  assert.equal(
    problemOf(withInput({ max_retries: 11 })),
    "Invalid max_retries 11: expected an integer from 0 to 10",
  );
  assert.equal(
    problemOf(withInput({ max_retries: "-1" })),
    'Invalid max_retries "-1": expected an integer from 0 to 10',
  );
});

Deno.test("validateParams() bounds output_compression from 0 to 100", () => {
  assert.deepEqual(validateParams(withInput({ output_compression: 0 })).passthrough, {
    output_compression: 0,
  });
  assert.equal(
    problemOf(withInput({ output_compression: 101 })),
    "Invalid output_compression 101: expected an integer from 0 to 100",
  );
});

Deno.test("validateParams() names every missing required parameter in one message", () => {
  assert.equal(
    problemOf({}),
    "Missing required parameters: prompt, base_url, api_key, model, size, task_name, timeout_ms",
  );
});

Deno.test("validateParams() says parameter in the singular when one is missing", () => {
  const { api_key: _, ...rest } = VALID;
  assert.equal(problemOf(rest), "Missing required parameter: api_key");
});

Deno.test("validateParams() treats null as a parameter not given", () => {
  const params = validateParams(
    withInput({ output_dir: null, quality: null, lang: null, extra_body: null, n: null }),
  );
  assert.equal(params.output_dir, DEFAULT_OUTPUT_DIR);
  assert.equal(params.lang, "zh");
  assert.equal(params.n, 1);
  assert.deepEqual(params.passthrough, {});
  assert.deepEqual(params.extra_body, {});
});

Deno.test("validateParams() reports a required parameter given as null as missing", () => {
  assert.equal(
    problemOf(withInput({ model: null, size: null })),
    "Missing required parameters: model, size",
  );
});

Deno.test("validateParams() suggests timeout_ms for timeout", () => {
  assert.equal(
    problemOf(withInput({ timeout: 300000 })),
    'Unknown parameter "timeout": did you mean "timeout_ms"?',
  );
});

Deno.test("validateParams() suggests the snake_case name for a kebab-case key", () => {
  assert.equal(
    problemOf(withInput({ "base-url": "https://api.example.com/v1" })),
    'Unknown parameter "base-url": did you mean "base_url"?',
  );
});

Deno.test("validateParams() names an unknown key without a suggestion when nothing is near", () => {
  assert.equal(problemOf(withInput({ xyzzy: 1 })), 'Unknown parameter "xyzzy"');
});

Deno.test("validateParams() never shows the value of an unknown key", () => {
  const message = problemOf(withInput({ apikey: "sk-live-SECRET-VALUE" }));
  assert.equal(message, 'Unknown parameter "apikey": did you mean "api_key"?');
});

Deno.test("validateParams() rejects keys inherited from Object.prototype", () => {
  const input = JSON.parse(`{"__proto__": {"a": 1}, "toString": "x"}`) as GenerationInput;
  const message = problemOf({ ...VALID, ...input });
  assert.match(message, /^Unknown parameter "__proto__"/);
  assert.match(message, /; Unknown parameter "toString"/);
  assert.equal(isParamName("toString"), false);
  assert.equal(isParamName("__proto__"), false);
  assert.equal(isParamName("constructor"), false);
});

Deno.test("nearestParamName() finds a close name by prefix, typo or spelling", () => {
  assert.equal(nearestParamName("timeout"), "timeout_ms");
  assert.equal(nearestParamName("promt"), "prompt");
  assert.equal(nearestParamName("apikey"), "api_key");
  assert.equal(nearestParamName("API-KEY"), "api_key");
  assert.equal(nearestParamName("reponse_format"), "response_format");
  assert.equal(nearestParamName("task"), "task_name");
  assert.equal(nearestParamName("retries"), null);
  assert.equal(nearestParamName("max_retry"), "max_retries");
  assert.equal(nearestParamName("qualty"), "quality");
  assert.equal(nearestParamName("completely_unrelated"), null);
});

Deno.test("unknownParamMessage() quotes the name and the suggestion", () => {
  assert.equal(unknownParamMessage("modle"), 'Unknown parameter "modle": did you mean "model"?');
  assert.equal(unknownParamMessage("zzzzzz"), 'Unknown parameter "zzzzzz"');
});

Deno.test("validateParams() reports every problem at once, missing ones first", () => {
  assert.equal(
    problemOf({
      prompt: "   ",
      base_url: "ftp://files.example.com",
      timeout: 5,
      size: "big",
      quality: "hight",
    }),
    [
      "Missing required parameters: api_key, model, task_name, timeout_ms",
      "Invalid prompt: it is empty",
      "Invalid base_url: expected an http or https URL",
      'Unknown parameter "timeout": did you mean "timeout_ms"?',
      'Invalid size "big": expected WIDTHxHEIGHT with positive integers, auto, or a size word such as 2K',
      'Invalid quality "hight": expected a short lowercase word such as low, medium, high, auto, ' +
      'standard, hd; did you mean "high"?',
    ].join("; "),
  );
});

Deno.test("validateParams() rejects a blank prompt, task_name and model", () => {
  assert.equal(problemOf(withInput({ prompt: "" })), "Invalid prompt: it is empty");
  assert.equal(problemOf(withInput({ prompt: " \n\t" })), "Invalid prompt: it is empty");
  assert.equal(problemOf(withInput({ task_name: "  " })), "Invalid task_name: it is empty");
  assert.equal(problemOf(withInput({ model: "" })), "Invalid model: it is empty");
});

Deno.test("validateParams() rejects a prompt that is not a string", () => {
  assert.equal(problemOf(withInput({ prompt: 42 })), "Invalid prompt 42: expected a string");
  assert.equal(
    problemOf(withInput({ prompt: ["a", "b"] })),
    'Invalid prompt ["a","b"]: expected a string',
  );
});

Deno.test("validateParams() allows a prompt of exactly 32000 characters", () => {
  const prompt = "猫".repeat(32000);
  assert.equal(validateParams(withInput({ prompt })).prompt, prompt);
});

Deno.test("validateParams() rejects a prompt of 32001 characters", () => {
  assert.equal(
    problemOf(withInput({ prompt: "a".repeat(32001) })),
    "Invalid prompt: 32001 characters, at most 32000 allowed",
  );
});

Deno.test("validateParams() counts a prompt in characters, not UTF-16 units", () => {
  // 32000 emoji are 64000 UTF-16 units but 32000 characters.
  const prompt = "🐱".repeat(32000);
  assert.equal(validateParams(withInput({ prompt })).prompt.length, 64000);
  assert.equal(
    problemOf(withInput({ prompt: prompt + "🐱" })),
    "Invalid prompt: 32001 characters, at most 32000 allowed",
  );
});

const SPACE_IN_KEY = "Invalid api_key: it contains a space, line break or control character";

Deno.test("validateParams() never quotes the api_key back", () => {
  const cases: [unknown, string][] = [
    ["", "Invalid api_key: it is empty"],
    [" \n", "Invalid api_key: it is empty"],
    ["sk-live 1234", SPACE_IN_KEY + " (at position 8)"],
    ["sk-live-1234\nsk-other", SPACE_IN_KEY + " (at position 13)"],
    ["sk-live\u00001234", SPACE_IN_KEY + " (at position 8)"],
    ["sk-live\u00a01234", SPACE_IN_KEY + " (at position 8)"],
    [987654321, "Invalid api_key: expected a string"],
    [{ key: "sk-live-1234" }, "Invalid api_key: expected a string"],
  ];
  for (const [api_key, expected] of cases) {
    assert.equal(problemOf(withInput({ api_key })), expected);
  }
});

Deno.test("validateParams() trims spaces and line breaks around api_key", () => {
  for (
    const api_key of ["sk-live-1234\n", "sk-live-1234\r\n", "  sk-live-1234\t", "\nsk-live-1234"]
  ) {
    assert.equal(validateParams(withInput({ api_key })).api_key, "sk-live-1234");
  }
});

Deno.test("validateParams() refuses an api_key that an HTTP header cannot carry", () => {
  const cases: [string, string][] = [
    ["sk-\ud800live", "position 4"],
    ["sk-live-\udc00", "position 9"],
    ["sk-ключ-1234", "position 4"],
    ["sk-live-1234€", "position 13"],
    ["sk-caf\u00e9-1234", "position 7"],
    ["“sk-live-1234”", "position 1"],
  ];
  for (const [api_key, position] of cases) {
    assert.equal(
      problemOf(withInput({ api_key })),
      `Invalid api_key: it contains a character that is not printable ASCII (at ${position})`,
    );
  }
});

Deno.test("validateParams() accepts http and https base URLs only", () => {
  assert.equal(
    validateParams(withInput({ base_url: "http://127.0.0.1:8080/v1" })).base_url,
    "http://127.0.0.1:8080/v1",
  );
  for (const base_url of ["ftp://example.com", "file:///etc", "https://", "htps://x.example"]) {
    assert.equal(
      problemOf(withInput({ base_url })),
      "Invalid base_url: expected an http or https URL",
    );
  }
});

Deno.test("validateParams() suggests a scheme for a base_url without one", () => {
  for (const base_url of ["api.example.com/v1", "localhost:8080/v1", "127.0.0.1:3000"]) {
    assert.equal(
      problemOf(withInput({ base_url })),
      'Invalid base_url: it has no scheme; begin it with "https://" ' +
        '(or "http://" for a server without TLS)',
    );
  }
});

Deno.test("validateParams() clips a long value it quotes to 60 characters", () => {
  const size = "x".repeat(100);
  const shown = JSON.stringify(size).slice(0, 59) + "…";
  assert.equal(shown.length, 60);
  assert.equal(
    problemOf(withInput({ size })),
    `Invalid size ${shown}: expected WIDTHxHEIGHT with positive integers, auto, or a size word such as 2K`,
  );
});

Deno.test("validateParams() masks the key in a value it quotes before clipping it", () => {
  const api_key = "sk-live-abcdef1234567890";
  const problem = problemOf(withInput({ api_key, size: `${"9".repeat(50)}${api_key}` }));
  assert.ok(!problem.includes("sk-live"), problem);
});

Deno.test("validateParams() never quotes base_url back, since it may hold credentials", () => {
  const problem = problemOf(withInput({ base_url: "https://u:hunter2pw@host:99999/v1" }));
  assert.equal(problem, "Invalid base_url: expected an http or https URL");
});

Deno.test("validateParams() accepts any WIDTHxHEIGHT of positive integers, and auto", () => {
  for (const size of ["1024x1024", "1536x1024", "3840x2160", "4096x4096", "1x1", "auto"]) {
    assert.equal(validateParams(withInput({ size })).size, size);
  }
});

Deno.test("validateParams() rejects a size that is not WIDTHxHEIGHT", () => {
  for (const size of ["0x1024", "1024x0", "1024x", "x1024", "-1x5", "1024", "big"]) {
    assert.equal(
      problemOf(withInput({ size })),
      `Invalid size ${
        JSON.stringify(size)
      }: expected WIDTHxHEIGHT with positive integers, auto, or a size word such as 2K`,
    );
  }
  assert.equal(
    problemOf(withInput({ size: 1024 })),
    "Invalid size 1024: expected WIDTHxHEIGHT with positive integers, auto, or a size word such as 2K",
  );
});

Deno.test("validateParams() suggests the size a near miss stands for", () => {
  const cases: [string, string][] = [
    ["1024X1024", "1024x1024"],
    ["1024×1024", "1024x1024"],
    ["1024 x 1024", "1024x1024"],
    [" 1536x1024 ", "1536x1024"],
    ["1024*1024", "1024x1024"],
    ["１０２４ｘ１０２４", "1024x1024"],
    ["1024px x 1024px", "1024x1024"],
    ["Auto", "auto"],
  ];
  for (const [size, near] of cases) {
    assert.equal(
      problemOf(withInput({ size })),
      `Invalid size ${JSON.stringify(size)}: expected WIDTHxHEIGHT with positive integers, ` +
        `auto, or a size word such as 2K; did you mean "${near}"?`,
    );
  }
});

Deno.test("validateParams() checks each closed parameter against its values", () => {
  const cases: [string, string, string][] = [
    ["response_format", "base64", "b64_json, url"],
    ["lang", "fr", "zh, en"],
  ];
  for (const [name, value, expected] of cases) {
    assert.equal(
      problemOf(withInput({ [name]: value })),
      `Invalid ${name} "${value}": expected one of ${expected}`,
    );
  }
});

Deno.test("validateParams() sends a provider's word it does not know as given", () => {
  const cases: [string, string][] = [
    ["quality", "xhigh"],
    ["quality", "ultra"],
    ["quality", "4k"],
    ["background", "white"],
    ["output_format", "avif"],
    ["moderation", "high"],
    ["style", "anime"],
    ["style", "photo_real"],
  ];
  for (const [name, value] of cases) {
    assert.deepEqual(validateParams(withInput({ [name]: value })).passthrough, { [name]: value });
  }
});

Deno.test("validateParams() refuses a clear typo of a known word, naming it", () => {
  const cases: [string, string, string][] = [
    ["quality", "hight", "high"],
    ["quality", "mediun", "medium"],
    ["quality", "hihg", "high"],
    ["quality", "High", "high"],
    ["quality", " hd ", "hd"],
    ["output_format", "jpg", "jpeg"],
    ["output_format", "PNG", "png"],
    ["background", "transparant", "transparent"],
    ["style", "natual", "natural"],
  ];
  for (const [name, value, near] of cases) {
    assert.match(
      problemOf(withInput({ [name]: value })),
      new RegExp(
        `^Invalid ${name} "${value}": expected a short lowercase word such as .*; ` +
          `did you mean "${near}"\\?$`,
      ),
    );
  }
});

Deno.test("validateParams() refuses a provider's word that is not a short lowercase token", () => {
  for (const value of ["very high", "high\n", "ultra!", "x".repeat(33), "", "Ultra"]) {
    assert.match(
      problemOf(withInput({ quality: value })),
      /^Invalid quality .*: expected a short lowercase word such as low, medium, high/,
    );
  }
  assert.equal(
    problemOf(withInput({ style: 3 })),
    "Invalid style 3: expected a word such as vivid, natural",
  );
});

Deno.test("validateParams() sends a size word as given, and names the near miss of one", () => {
  for (const size of ["1K", "2K", "4K", "1.5K", "3K"]) {
    assert.equal(validateParams(withInput({ size })).size, size);
  }
  assert.match(problemOf(withInput({ size: "2k" })), /; did you mean "2K"\?$/);
  assert.match(problemOf(withInput({ size: "0K" })), /^Invalid size "0K": expected WIDTHxHEIGHT/);
});

Deno.test("validateParams() keeps the passthroughs given, in the documented order", () => {
  const params = validateParams(
    withInput({
      user: "user-42",
      style: "natural",
      quality: "high",
      output_compression: "75",
      background: "transparent",
      moderation: "low",
      output_format: "webp",
    }),
  );
  assert.deepEqual(Object.entries(params.passthrough), [
    ["quality", "high"],
    ["background", "transparent"],
    ["output_format", "webp"],
    ["output_compression", 75],
    ["moderation", "low"],
    ["style", "natural"],
    ["user", "user-42"],
  ]);
  assert.deepEqual(PASSTHROUGH_NAMES, [
    "quality",
    "background",
    "output_format",
    "output_compression",
    "moderation",
    "style",
    "user",
  ]);
});

Deno.test("validateParams() keeps tool options out of the passthroughs", () => {
  const params = validateParams(
    withInput({ response_format: "url", lang: "en", max_retries: 2, return_base64: true }),
  );
  assert.deepEqual(params.passthrough, {});
  assert.equal(params.response_format, "url");
  assert.equal(params.lang, "en");
  assert.equal(params.max_retries, 2);
  assert.equal(params.return_base64, true);
});

Deno.test("validateParams() keeps extra_body as given", () => {
  const extra_body = { seed: 7, watermark: false, nested: { a: [1, 2] } };
  assert.deepEqual(validateParams(withInput({ extra_body })).extra_body, extra_body);
});

Deno.test("validateParams() rejects an extra_body that is not a JSON object", () => {
  assert.equal(
    problemOf(withInput({ extra_body: ["seed"] })),
    'Invalid extra_body ["seed"]: expected a JSON object',
  );
  assert.equal(
    problemOf(withInput({ extra_body: '{"seed":1}' })),
    'Invalid extra_body "{\\"seed\\":1}": expected a JSON object',
  );
  assert.equal(
    problemOf(withInput({ extra_body: 5 })),
    "Invalid extra_body 5: expected a JSON object",
  );
});

Deno.test("validateParams() forbids extra_body to replace a core body field", () => {
  assert.equal(
    problemOf(withInput({ extra_body: { model: "dall-e-3" } })),
    'extra_body may not set "model": give it as a parameter instead',
  );
  assert.equal(
    problemOf(
      withInput({ extra_body: { prompt: "x", n: 2, size: "1x1", response_format: "url" } }),
    ),
    'extra_body may not set "prompt", "n", "size", "response_format": give them as parameters instead',
  );
});

Deno.test("validateParams() forbids extra_body to repeat a passthrough that was given", () => {
  assert.equal(
    problemOf(withInput({ quality: "high", extra_body: { quality: "low" } })),
    'extra_body may not set "quality": give it as a parameter instead',
  );
});

Deno.test("validateParams() lets extra_body carry a passthrough name that was not given", () => {
  assert.deepEqual(validateParams(withInput({ extra_body: { quality: "ultra" } })).extra_body, {
    quality: "ultra",
  });
});

/** Runs `fn` with HOME set to `home`, or unset for undefined. */
function withHome<T>(home: string | undefined, fn: () => T): T {
  const saved = Deno.env.get("HOME");
  if (home === undefined) Deno.env.delete("HOME");
  else Deno.env.set("HOME", home);
  try {
    return fn();
  } finally {
    if (saved === undefined) Deno.env.delete("HOME");
    else Deno.env.set("HOME", saved);
  }
}

Deno.test("validateParams() expands ~ in output_dir to HOME", () => {
  withHome("/home/tester", () => {
    assert.equal(validateParams(withInput({ output_dir: "~" })).output_dir, "/home/tester");
    assert.equal(
      validateParams(withInput({ output_dir: "~/pictures/cats" })).output_dir,
      "/home/tester/pictures/cats",
    );
  });
});

Deno.test("validateParams() refuses ~ in output_dir when HOME is not set", () => {
  for (const home of [undefined, "", "relative/home"]) {
    withHome(home, () => {
      assert.equal(
        problemOf(withInput({ output_dir: "~/pictures" })),
        'Invalid output_dir "~/pictures": "~" stands for HOME, which is not set; ' +
          "give the folder as an absolute path",
      );
    });
  }
});

Deno.test("validateParams() refuses ~user in output_dir rather than make a folder named so", () => {
  withHome("/home/tester", () => {
    assert.equal(
      problemOf(withInput({ output_dir: "~other/x" })),
      'Invalid output_dir "~other/x": only "~" and "~/…" are expanded, to HOME; ' +
        "give the folder as an absolute path",
    );
  });
});

Deno.test("validateParams() refuses an output_dir with a line break or control character", () => {
  for (
    const output_dir of ["/tmp/a\nMEDIA:/etc/passwd", "/tmp/a\rb", "/tmp/\u0000x", "/tmp/a\u2028b"]
  ) {
    assert.equal(
      problemOf(withInput({ output_dir })),
      `Invalid output_dir ${
        JSON.stringify(output_dir)
      }: it contains a line break or another control character`,
    );
  }
});

Deno.test("validateParams() refuses an output_dir with a lone surrogate", () => {
  for (const output_dir of ["/tmp/\ud800", "/tmp/a\udfffb"]) {
    assert.equal(
      problemOf(withInput({ output_dir })),
      `Invalid output_dir ${
        JSON.stringify(output_dir)
      }: it contains a lone surrogate, which no path can hold`,
    );
  }
});

Deno.test("validateParams() refuses an output_dir under /proc, /dev or /sys", () => {
  const cases = [["/proc/self/x", "proc"], ["/dev", "dev"], ["/dev/shm/img", "dev"], [
    "/tmp/../sys/kernel",
    "sys",
  ]];
  for (const [output_dir, system] of cases) {
    assert.equal(
      problemOf(withInput({ output_dir })),
      `Invalid output_dir ${JSON.stringify(output_dir)}: it is under /${system}, ` +
        "which holds the system's own files; choose another folder",
    );
  }
  assert.equal(validateParams(withInput({ output_dir: "/devices/x" })).output_dir, "/devices/x");
});

Deno.test("validateParams() resolves a relative output_dir against the working directory", () => {
  assert.equal(
    validateParams(withInput({ output_dir: "out/images" })).output_dir,
    resolve(Deno.cwd(), "out/images"),
  );
  assert.equal(validateParams(withInput({ output_dir: "/a/b/../c/" })).output_dir, "/a/c");
});

Deno.test("validateParams() rejects a blank output_dir", () => {
  assert.equal(problemOf(withInput({ output_dir: " " })), "Invalid output_dir: it is empty");
});

/** `{"a": {"a": … {"a": 1} … }}`, `levels` objects deep, built without recursion. */
function nested(levels: number): Record<string, unknown> {
  let value: Record<string, unknown> = { a: 1 };
  for (let i = 1; i < levels; i++) value = { a: value };
  return value;
}

Deno.test("validateParams() accepts an extra_body nested 32 levels deep", () => {
  assert.deepEqual(validateParams(withInput({ extra_body: nested(32) })).extra_body, nested(32));
});

Deno.test("validateParams() refuses an extra_body nested deeper than 32 levels", () => {
  for (const levels of [33, 10000, 1000000]) {
    assert.equal(
      problemOf(withInput({ extra_body: nested(levels) })),
      "Invalid extra_body: nested more than 32 levels deep",
    );
  }
  const arrays = { a: JSON.parse("[".repeat(40) + "]".repeat(40)) };
  assert.equal(
    problemOf(withInput({ extra_body: arrays })),
    "Invalid extra_body: nested more than 32 levels deep",
  );
});

Deno.test("validateParams() refuses an extra_body that contains itself", () => {
  const extra_body: Record<string, unknown> = { seed: 1 };
  extra_body.self = extra_body;
  assert.equal(
    problemOf(withInput({ extra_body })),
    "Invalid extra_body: nested more than 32 levels deep",
  );
});

Deno.test("validateParams() stops walking an extra_body that shares its parts past a million values", () => {
  // 2^31 paths through 31 levels: walked in full, it would never end.
  let shared: Record<string, unknown> = { seed: 1 };
  for (let i = 0; i < 30; i++) shared = { a: shared, b: shared };
  assert.equal(
    problemOf(withInput({ extra_body: shared })),
    "Invalid extra_body: it holds more than 1048576 values",
  );
});

Deno.test("validateParams() quotes an unknown parameter's name clipped and masked", () => {
  const problem = problemOf(withInput({ ["n".repeat(50000)]: 1, [VALID.api_key + "x"]: 2 }));
  assert.equal(
    problem,
    `Unknown parameter "${"n".repeat(58)}…; Unknown parameter "***x"`,
  );
});

Deno.test("validateParams() does not change its input", () => {
  const input = withInput({ timeout_ms: "300000", output_dir: "~/x", extra_body: { a: 1 } });
  const copy = structuredClone(input);
  validateParams(input);
  assert.deepEqual(input, copy);
});

Deno.test("validateParams() takes stream, partial_images and save_partials as the spec bounds them", () => {
  const params = validateParams(
    withInput({ stream: "true", partial_images: "3", save_partials: true }),
  );
  assert.equal(params.stream, true);
  assert.equal(params.partial_images, 3);
  assert.equal(params.save_partials, true);
  assert.equal(validateParams(withInput({ stream: true, partial_images: 0 })).partial_images, 0);
  assert.equal(
    problemOf(withInput({ stream: true, partial_images: 4 })),
    "Invalid partial_images 4: expected an integer from 0 to 3",
  );
  assert.equal(
    problemOf(withInput({ stream: "yes" })),
    'Invalid stream "yes": expected true or false',
  );
});

Deno.test("validateParams() refuses partial_images without stream, and save_partials without partial images", () => {
  assert.equal(
    problemOf(withInput({ partial_images: 2 })),
    "partial_images needs stream: true (partial images come only in a stream)",
  );
  assert.equal(
    problemOf(withInput({ stream: false, partial_images: 1 })),
    "partial_images needs stream: true (partial images come only in a stream)",
  );
  assert.equal(
    problemOf(withInput({ stream: true, save_partials: true })),
    "save_partials needs partial_images from 1 to 3",
  );
  assert.equal(
    problemOf(withInput({ stream: true, partial_images: 0, save_partials: true })),
    "save_partials needs partial_images from 1 to 3",
  );
  assert.equal(validateParams(withInput({ save_partials: false })).save_partials, false);
});

Deno.test("validateParams() keeps stream and partial_images out of extra_body", () => {
  assert.equal(
    problemOf(withInput({ extra_body: { stream: true, partial_images: 1 } })),
    'extra_body may not set "stream", "partial_images": give them as parameters instead',
  );
});

Deno.test("validateParams() refuses the api_key in a field, without quoting it", () => {
  const key = VALID.api_key as string;
  const fields = {
    prompt: `a cat, key ${key}`,
    base_url: `https://api.example.com/${encodeURIComponent(` ${key}`)}/v1`,
    model: key,
    task_name: `cat-${key}`,
    output_dir: `/tmp/${key}`,
    user: `u-${key}`,
    extra_body: { metadata: { note: `key "${key}"` } },
    extra_headers: { "x-title": key },
  };
  const message = problemOf(withInput({ ...fields, api_key: ` ${key}\n` }));
  for (const name of Object.keys(fields)) {
    assert.ok(
      message.includes(`Invalid ${name}: it contains the api_key; give the key only as api_key`),
      `${name}: ${message}`,
    );
  }
  assert.ok(!message.includes(key), message);
});

Deno.test("validateParams() refuses a lowercase api_key given as an open word, which would pass the word check", () => {
  const key = "sk-proj-abcdefghijklmnopqrstu";
  const words = ["quality", "background", "output_format", "moderation", "style"];
  const message = problemOf(
    withInput({ api_key: key, ...Object.fromEntries(words.map((name) => [name, key])) }),
  );
  for (const name of words) {
    assert.ok(message.includes(`Invalid ${name}: it contains the api_key`), `${name}: ${message}`);
  }
  assert.ok(!message.includes(key), message);
});

Deno.test("validateParams() takes a placeholder key under 16 characters, or a piece of a key, in other fields", () => {
  const params = validateParams(withInput({ api_key: "EMPTY", prompt: "an EMPTY room" }));
  assert.equal(params.prompt, "an EMPTY room");
  for (const placeholder of ["anything", "lm-studio", "not-needed"]) {
    const prompt = `draw ${placeholder} you like`;
    assert.equal(validateParams(withInput({ api_key: placeholder, prompt })).prompt, prompt);
  }
  const key = VALID.api_key as string;
  const piece = key.slice(0, -1);
  assert.equal(validateParams(withInput({ task_name: piece })).task_name, piece);
});

Deno.test("validateParams() refuses a base_url with a user name or password, which would send a second Authorization", () => {
  for (
    const base_url of [
      "https://bob:hunter22@api.example.com/v1",
      "http://bob@127.0.0.1:8080/v1",
      "https://:pw@h/v1",
    ]
  ) {
    const message = problemOf(withInput({ base_url }));
    assert.equal(
      message,
      'Invalid base_url: it holds a user name or password before "@", which would be sent as a ' +
        "second Authorization header; give the key as api_key, and any other credential of a " +
        "gateway in extra_headers",
    );
  }
  assert.equal(
    validateParams(withInput({ base_url: "https://h/v1?u=a@b" })).base_url,
    "https://h/v1?u=a@b",
  );
});
