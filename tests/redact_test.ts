import assert from "node:assert/strict";
import { maskBaseUrl, redact, redactText, secretsOf } from "../lib/redact.ts";

const KEY = "sk-proj-AbC123xYz789";

Deno.test("secretsOf() holds the api key", () => {
  assert.deepEqual(secretsOf(KEY, "https://api.example.com/v1"), [KEY]);
});

Deno.test("secretsOf() holds the URL-encoded api key too, longest first", () => {
  assert.deepEqual(secretsOf("sk+a/b=c", "https://api.example.com/v1"), [
    "sk%2Ba%2Fb%3Dc",
    "sk+a/b=c",
  ]);
});

Deno.test("secretsOf() holds the user and password of base_url, decoded and encoded", () => {
  assert.deepEqual(secretsOf(KEY, "https://relay:p%40ss@api.example.com/v1"), [
    KEY,
    "p%40ss",
    "relay",
    "p@ss",
  ]);
});

Deno.test("secretsOf() holds key-like query values of base_url", () => {
  assert.deepEqual(
    secretsOf("", "https://api.example.com/v1?api-key=QK1&token=TK22&model=gpt&sig=S333"),
    ["TK22", "S333", "QK1"],
  );
  assert.deepEqual(
    secretsOf(null, "https://h/v1?KEY=aa&Access_Token=bbb&x-api-key=cccc&secret=d&auth=ee"),
    ["cccc", "bbb", "aa", "ee", "d"],
  );
});

Deno.test("secretsOf() ignores query values that are not credentials", () => {
  assert.deepEqual(secretsOf("k1", "https://h/v1?model=gpt-image-2&keyword=cat&tokens=5"), ["k1"]);
});

Deno.test("secretsOf() ignores an empty key and values that are not strings", () => {
  assert.deepEqual(secretsOf("", "https://api.example.com/v1"), []);
  assert.deepEqual(secretsOf(12345, 67890), []);
  assert.deepEqual(secretsOf(undefined, "not a url"), []);
});

Deno.test("secretsOf() does not throw on a malformed percent escape in base_url", () => {
  assert.doesNotThrow(() => secretsOf(KEY, "https://us%zzer:pw@api.example.com/v1"));
  assert.doesNotThrow(() => secretsOf(KEY, "https://api.example.com/v1?key=%E0%A4%A"));
});

Deno.test("maskBaseUrl() leaves a base_url without credentials exactly as given", () => {
  for (
    const url of [
      "https://api.example.com/v1",
      "https://api.example.com/v1/",
      "http://127.0.0.1:8080",
      "https://api.example.com/v1?model=x&keyword=y",
      "HTTPS://API.EXAMPLE.COM/v1",
    ]
  ) {
    assert.equal(maskBaseUrl(url), url);
  }
});

Deno.test("maskBaseUrl() masks the user and password", () => {
  assert.equal(
    maskBaseUrl("https://relay:s3cret@api.example.com/v1"),
    "https://***:***@api.example.com/v1",
  );
  assert.equal(
    maskBaseUrl("https://tokenonly@api.example.com/v1"),
    "https://***@api.example.com/v1",
  );
  assert.equal(maskBaseUrl("https://:pw@api.example.com/v1"), "https://:***@api.example.com/v1");
});

Deno.test("maskBaseUrl() masks key-like query values and keeps the others", () => {
  assert.equal(
    maskBaseUrl("https://api.example.com/v1?api_key=abc&model=gpt-image-2"),
    "https://api.example.com/v1?api_key=***&model=gpt-image-2",
  );
  assert.equal(
    maskBaseUrl("https://api.example.com/v1?Key=abc&TOKEN=def&sig=ghi"),
    "https://api.example.com/v1?Key=***&TOKEN=***&sig=***",
  );
});

Deno.test("maskBaseUrl() masks both credentials and query values together", () => {
  assert.equal(
    maskBaseUrl("https://u:p@api.example.com:8443/v1?key=k#frag"),
    "https://***:***@api.example.com:8443/v1?key=***#frag",
  );
});

Deno.test("maskBaseUrl() returns text that is not a URL as it is", () => {
  assert.equal(maskBaseUrl("not a url"), "not a url");
  assert.equal(maskBaseUrl(""), "");
});

Deno.test("maskBaseUrl() leaves no secret of base_url in what it shows", () => {
  const baseUrl = "https://relay:p%40ss@api.example.com/v1?api-key=QK1234&model=m";
  const shown = maskBaseUrl(baseUrl);
  for (const secret of secretsOf("", baseUrl)) assert.ok(!shown.includes(secret), secret);
});

Deno.test("redactText() masks every occurrence of the key", () => {
  assert.equal(
    redactText(`Incorrect API key provided: ${KEY}. Key ${KEY} is invalid`, [KEY]),
    "Incorrect API key provided: ***. Key *** is invalid",
  );
});

Deno.test("redactText() masks the URL-encoded key", () => {
  const key = "sk/a+b=c";
  const secrets = secretsOf(key, "https://h/v1");
  assert.equal(redactText("GET /v1?key=sk%2Fa%2Bb%3Dc failed", secrets), "GET /v1?key=*** failed");
  assert.equal(redactText("key sk/a+b=c echoed", secrets), "key *** echoed");
});

Deno.test("redactText() masks a longer secret whole when it contains a shorter one", () => {
  const secrets = secretsOf("abc", "https://abcdef@h/v1");
  assert.equal(redactText("user abcdef, key abc", secrets), "user ***, key ***");
});

Deno.test("redactText() masks any Bearer token", () => {
  assert.equal(redactText("Authorization: Bearer sk-other-999", []), "Authorization: Bearer ***");
  assert.equal(redactText("bearer abc.def-ghi, next", []), "bearer ***, next");
  assert.equal(redactText('{"auth":"Bearer tok_12345678"}', []), '{"auth":"Bearer ***"}');
  assert.equal(redactText("BEARER\tq1w2e3r4t5;x", []), "BEARER\t***;x");
});

Deno.test("redactText() does not mask an already masked Bearer token again", () => {
  assert.equal(redactText(`Bearer ${KEY}`, [KEY]), "Bearer ***");
  assert.equal(redactText("Bearer ***", []), "Bearer ***");
});

Deno.test("redactText() leaves text without secrets alone", () => {
  assert.equal(redactText("an orange cat, 橘猫", [KEY]), "an orange cat, 橘猫");
  assert.equal(redactText("", [KEY]), "");
});

Deno.test("redactText() leaves the word bearer in prose alone", () => {
  assert.equal(redactText("the bearer of good news", []), "the bearer of good news");
});

Deno.test("redact() masks the key in every nested string", () => {
  const value = {
    ok: false,
    error: `401: Incorrect API key provided: ${KEY}`,
    nested: { list: ["fine", `x${KEY}y`, { deeper: [`Bearer ${KEY}`] }] },
    count: 3,
    flag: true,
    nothing: null,
  };
  assert.deepEqual(redact(value, [KEY]), {
    ok: false,
    error: "401: Incorrect API key provided: ***",
    nested: { list: ["fine", "x***y", { deeper: ["Bearer ***"] }] },
    count: 3,
    flag: true,
    nothing: null,
  });
});

Deno.test("redact() leaves its input unchanged", () => {
  const value = { message: KEY, list: [KEY] };
  redact(value, [KEY]);
  assert.deepEqual(value, { message: KEY, list: [KEY] });
});

Deno.test("redact() masks a bare string and passes other values through", () => {
  assert.equal(redact(`key=${KEY}`, [KEY]), "key=***");
  assert.equal(redact(42, [KEY]), 42);
  assert.equal(redact(null, [KEY]), null);
  assert.equal(redact(undefined, [KEY]), undefined);
});

Deno.test("redact() masks every secret of base_url", () => {
  const baseUrl = "https://relay:pw-77@api.example.com/v1?key=QK-55";
  const secrets = secretsOf(KEY, baseUrl);
  assert.deepEqual(
    redact({ echoed: `user relay with pw-77 and QK-55 and ${KEY}` }, secrets),
    { echoed: "user *** with *** and *** and ***" },
  );
});
