import assert from "node:assert/strict";
import {
  isSecretName,
  maskBaseUrl,
  maskThenClip,
  MAX_REDACT_DEPTH,
  redact,
  redactText,
  secretsOf,
  TOO_DEEP,
} from "../../lib/shared/redact.ts";

const KEY = "sk-proj-AbC123xYz789";

Deno.test("secretsOf() holds the api key", () => {
  assert.deepEqual(secretsOf(KEY, "https://api.example.com/v1"), [KEY]);
});

Deno.test("secretsOf() gives the same list for the same inputs, and the right one for others", () => {
  const headers: Record<string, string> = { "x-portkey-api-key": "pk-live-0123456789abcdef" };
  const first = secretsOf(KEY, "https://api.example.com/v1", headers);
  assert.equal(secretsOf(KEY, "https://api.example.com/v1", { ...headers }), first);
  assert.ok(Object.isFrozen(first));
  assert.deepEqual(secretsOf("sk-other-key-0000", "https://api.example.com/v1"), [
    "sk-other-key-0000",
  ]);
  assert.equal(secretsOf(KEY, "https://relay:pw99@h/v1").includes("pw99"), true);
  // The same object with other values is another list.
  headers["x-portkey-api-key"] = "pk-live-fedcba9876543210";
  const changed = secretsOf(KEY, "https://api.example.com/v1", headers);
  assert.ok(changed.includes("pk-live-fedcba9876543210"));
  assert.ok(!changed.includes("pk-live-0123456789abcdef"));
  // A key given as a number is its digits.
  assert.deepEqual(secretsOf(123456789012, null), secretsOf("123456789012", null));
  assert.deepEqual(secretsOf(undefined, null), []);
});

Deno.test("secretsOf() holds the URL-encoded and JSON-escaped api key too, longest first", () => {
  const secrets = secretsOf("sk+a/b=c", "https://api.example.com/v1");
  for (const form of ["sk+a/b=c", "sk%2Ba%2Fb%3Dc", "sk%2ba%2fb%3dc", "sk+a\\/b=c"]) {
    assert.ok(secrets.includes(form), form);
  }
  assert.deepEqual(secrets, secrets.toSorted((a, b) => b.length - a.length));
});

Deno.test("secretsOf() holds the api key trimmed too, as it is sent", () => {
  assert.ok(secretsOf(`  ${KEY}\n`, "https://h/v1").includes(KEY));
  assert.equal(redactText(`bad key ${KEY}.`, secretsOf(`${KEY}\r\n`, null)), "bad key ***.");
});

Deno.test("secretsOf() holds the user and password of base_url, decoded and encoded", () => {
  const secrets = secretsOf(KEY, "https://relay:p%40ss@api.example.com/v1");
  for (const form of [KEY, "relay", "p%40ss", "p@ss"]) assert.ok(secrets.includes(form), form);
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
    "https://***:***@api.example.com:8443/v1?key=***#***",
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

Deno.test("redact() masks the key where an upstream echoes it as an object key", () => {
  const usage = { [KEY]: 1, nested: { list: [{ [`id-${KEY}`]: 2 }] }, total_tokens: 3 };
  assert.deepEqual(redact({ usage }, [KEY]), {
    usage: { "***": 1, nested: { list: [{ "id-***": 2 }] }, total_tokens: 3 },
  });
});

Deno.test("redact() is stack-safe on JSON nested thousands deep, and cuts it at its depth", () => {
  const deep = JSON.parse("[".repeat(100_000) + `"${KEY}"` + "]".repeat(100_000));
  const copy = redact({ usage: deep }, [KEY]);
  const text = JSON.stringify(copy);
  assert.ok(!text.includes(KEY));
  let depth = 0;
  let value: unknown = copy;
  while (typeof value === "object" && value !== null) {
    value = Array.isArray(value) ? value[0] : (value as { usage: unknown }).usage;
    depth++;
  }
  assert.equal(value, TOO_DEEP);
  assert.equal(depth, MAX_REDACT_DEPTH);
});

Deno.test("redact() keeps a value of exactly the greatest depth", () => {
  let value: unknown = KEY;
  for (let level = 0; level < MAX_REDACT_DEPTH; level++) value = [value];
  let copy: unknown = redact(value, [KEY]);
  for (let level = 0; level < MAX_REDACT_DEPTH; level++) copy = (copy as unknown[])[0];
  assert.equal(copy, "***");
});

Deno.test("redactText() masks a short secret as a whole token only", () => {
  const secrets = secretsOf("abc", "https://h/v1");
  assert.equal(redactText("key abc!", secrets), "key ***!");
  assert.equal(redactText("abc", secrets), "***");
  assert.equal(redactText('{"k":"abc"}', secrets), '{"k":"***"}');
  assert.equal(redactText("abcdef tabc abc_1 1abc 中abc", secrets), "abcdef tabc abc_1 1abc 中abc");
});

Deno.test("redactText() masks a short user name as a whole token only", () => {
  const secrets = secretsOf("sk-long-enough-key-1", "https://bob:pw@h/v1");
  assert.equal(
    redactText("bob said bobby pw, pwd; bob!", secrets),
    "*** said bobby ***, pwd; ***!",
  );
});

Deno.test("redactText() masks a secret of 8 characters or more inside other text", () => {
  assert.equal(redactText(`x${KEY}y and id_${KEY}`, [KEY]), "x***y and id_***");
  assert.equal(redactText("ab12cd34ef", ["12cd34ef"]), "ab***");
});

Deno.test("redactText() masks a key in JSON-escaped forms", () => {
  const key = 'sk-"quoted"\\/é-1';
  const secrets = secretsOf(key, "https://h/v1");
  const escaped = JSON.stringify(key).slice(1, -1);
  assert.equal(
    redactText(`{"message":"bad key ${escaped}"}`, secrets),
    '{"message":"bad key ***"}',
  );
  const php = escaped.replaceAll("/", "\\/");
  assert.equal(redactText(`bad key ${php}`, secrets), "bad key ***");
  const ascii = escaped.replace("é", "\\u00e9");
  assert.equal(redactText(`bad key ${ascii}`, secrets), "bad key ***");
});

Deno.test("redactText() masks a key in URL-encoded forms, upper- or lower-case hex", () => {
  const secrets = secretsOf("sk/a b=c-1234", "https://h/v1");
  for (const form of ["sk%2Fa%20b%3Dc-1234", "sk%2fa%20b%3dc-1234", "sk%2Fa+b%3Dc-1234"]) {
    assert.equal(redactText(`GET /v1?key=${form} failed`, secrets), "GET /v1?key=*** failed");
  }
});

Deno.test("redactText() masks a prefix of a secret cut at an ellipsis", () => {
  const secrets = secretsOf(KEY, "https://h/v1");
  for (const length of [1, 2, 3, 8, KEY.length - 1]) {
    const part = KEY.slice(0, length);
    assert.equal(redactText(`key ${part}…`, secrets), "key ***…", part);
    assert.equal(redactText(`key "${part}...`, secrets), 'key "***...', part);
  }
  // Glued to a word, from 3 characters on.
  assert.equal(redactText(`xx${KEY.slice(0, 5)}…`, secrets), "xx***…");
});

Deno.test("redactText() masks a suffix of a secret after an ellipsis or asterisks", () => {
  const secrets = secretsOf(KEY, "https://h/v1");
  assert.equal(redactText(`key …${KEY.slice(-4)}.`, secrets), "key …***.");
  // OpenAI's own shortening: the first characters, asterisks, the last four.
  assert.equal(
    redactText(`Incorrect API key provided: ${KEY.slice(0, 8)}${"*".repeat(20)}${KEY.slice(-4)}.`, [
      KEY,
    ]),
    `Incorrect API key provided: ***${"*".repeat(20)}***.`,
  );
});

Deno.test("redactText() leaves words next to an ellipsis alone", () => {
  const secrets = secretsOf("sk-test-1234567890", "https://bob:pw@h/v1");
  for (const text of ["Please wait…", "loading...", "bobby…", "task…", "…skip", "a ***** b"]) {
    assert.equal(redactText(text, secrets), text);
  }
});

Deno.test("redactText() masks a token after an api-key-style header name", () => {
  for (
    const [text, shown] of [
      ["api-key: abcdefgh1", "api-key: ***"],
      ["X-API-Key:zzzzzzzz-1", "X-API-Key:***"],
      ['{"api_key": "sk-other-9999"}', '{"api_key": "***"}'],
      ["x-goog-api-key=AIzaSyD-12345678", "x-goog-api-key=***"],
      ["Ocp-Apim-Subscription-Key: 0123abcd4567ef", "Ocp-Apim-Subscription-Key: ***"],
      ["Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: Basic ***"],
    ]
  ) {
    assert.equal(redactText(text!, []), shown);
  }
});

Deno.test("redactText() leaves words after a header-like name alone", () => {
  for (const text of ["api_key: required", "Basic information", "api-key: ***"]) {
    assert.equal(redactText(text, []), text);
  }
});

Deno.test("maskThenClip() masks before it clips, so a cut never leaves part of a secret", () => {
  for (let padding = 980; padding <= 1000; padding++) {
    const shown = maskThenClip(`${"x".repeat(padding)} ${KEY} tail`, [KEY], 1000);
    assert.ok(shown.length <= 1000);
    for (const part of [KEY.slice(0, 3), KEY.slice(-3)]) assert.ok(!shown.includes(part), shown);
  }
});

Deno.test("maskThenClip() clips to the limit with an ellipsis, never half a character", () => {
  assert.equal(maskThenClip("abcdef", [], 4), "abc…");
  assert.equal(maskThenClip("  abc  ", [], 4), "abc");
  assert.equal(maskThenClip("ab😀cd", [], 4), "ab…");
});

Deno.test("isSecretName() knows credential names in any case and spelling", () => {
  for (
    const name of [
      "key",
      "KEY",
      "api_key",
      "api-key",
      "apikey",
      "x-api-key",
      "X_API_KEY",
      "access_key",
      "api_token",
      "access_token",
      "token",
      "sig",
      "signature",
      "X-Amz-Signature",
      "X-Amz-Security-Token",
      "secret",
      "client_secret",
      "password",
      "auth",
      "code",
      "subscription-key",
    ]
  ) {
    assert.ok(isSecretName(name), name);
  }
  for (const name of ["model", "keyword", "tokens", "api-version", "v1", "monkey", "signal"]) {
    assert.ok(!isSecretName(name), name);
  }
});

Deno.test("maskBaseUrl() masks every credential-like query value, in any case", () => {
  assert.equal(
    maskBaseUrl(
      "https://h/v1?access_key=a1&api_token=b2&PASSWORD=c3&code=d4&X-Api-Key=e5&auth=f6&v=1",
    ),
    "https://h/v1?access_key=***&api_token=***&PASSWORD=***&code=***&X-Api-Key=***&auth=***&v=1",
  );
});

Deno.test("maskBaseUrl() masks a random-looking query value whatever its name", () => {
  assert.equal(
    maskBaseUrl("https://h/v1?k=aZ3kQ9mX2pL7vB4n&api-version=2025-04-01-preview"),
    "https://h/v1?k=***&api-version=2025-04-01-preview",
  );
});

Deno.test("maskBaseUrl() masks the segment after a secret-named path segment", () => {
  assert.equal(maskBaseUrl("https://h/key/abc/v1"), "https://h/key/***/v1");
  assert.equal(maskBaseUrl("https://h/v1/token/tok"), "https://h/v1/token/***");
  assert.equal(maskBaseUrl("https://h/API-KEY/abc/"), "https://h/API-KEY/***/");
  assert.equal(maskBaseUrl("https://h/v1;key=abc/x"), "https://h/v1;key=***/x");
});

Deno.test("maskBaseUrl() masks long random-looking path segments, as keys and bot tokens are", () => {
  assert.equal(
    maskBaseUrl("https://api.telegram.org/bot123456789:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0/x"),
    "https://api.telegram.org/***/x",
  );
  assert.equal(maskBaseUrl(`https://relay.example/${KEY}/v1`), "https://relay.example/***/v1");
});

Deno.test("maskBaseUrl() leaves ordinary path segments alone", () => {
  for (
    const url of [
      "https://h/openai/deployments/gpt-image-1?api-version=2025-04-01-preview",
      "https://h/openai/deployments/my-company-image-gen-prod-2024",
      "https://h/v1/MyCompanyImageGen2024/x",
      "https://h/v1beta/models/gemini-2.0-flash-exp:generateContent",
      "https://h/v1/token/",
    ]
  ) {
    assert.equal(maskBaseUrl(url), url);
  }
});

Deno.test("maskBaseUrl() masks the fragment, which is never sent", () => {
  assert.equal(maskBaseUrl("https://h/v1#access_token=abc"), "https://h/v1#***");
  assert.equal(maskBaseUrl("https://h/v1#"), "https://h/v1#");
});

Deno.test("maskBaseUrl() reads a URL as fetch does, backslashes included", () => {
  assert.equal(maskBaseUrl("https:\\\\user:pw@h/v1"), "https://***:***@h/v1");
});

Deno.test("maskBaseUrl() masks the path of a base_url that does not parse", () => {
  const shown = maskBaseUrl(`https://u:p@h:99999/key/abc/${KEY}?token=t#f`);
  assert.equal(shown, "https://***:***@h:99999/key/***/***?token=***#***");
});

Deno.test("secretsOf() holds the credentials of the path and fragment, so echoes are masked", () => {
  const baseUrl = `https://h/key/pathsecret1/v1/${KEY}?sig=s1gnature#frag-secret`;
  const secrets = secretsOf("sk-other-1234", baseUrl);
  assert.equal(
    redactText(`no route /key/pathsecret1/ for ${KEY}, sig s1gnature, #frag-secret`, secrets),
    "no route /key/***/ for ***, sig ***, #***",
  );
});

Deno.test("redactText() masks a part of a short secret beside an ellipsis only from 3 characters", () => {
  const secrets = secretsOf("sk-long-enough-key-1", "https://admin:pw@h/v1");
  assert.equal(redactText("user adm… and …min.", secrets), "user ***… and …***.");
  for (const text of ["ad…", "xadm…", "…mins", "a…", "p…"]) {
    assert.equal(redactText(text, secrets), text);
  }
});

Deno.test("redactText() masks parts on both sides of neighbouring ellipses", () => {
  const secrets = secretsOf(KEY, "https://h/v1");
  assert.equal(
    redactText(`key …${KEY.slice(-6)}…${KEY.slice(0, 5)}… end`, secrets),
    "key …***…***… end",
  );
});

Deno.test("secretsOf() and redactText() take a key with a lone surrogate", () => {
  const key = "sk-\uD800-lone-1234";
  const secrets = secretsOf(key, "https://h/v1");
  assert.equal(
    redactText(`bad key ${key} and ${JSON.stringify(key)}`, secrets),
    'bad key *** and "***"',
  );
});

Deno.test("redactText() masks secrets of any length, as long as a regular expression may not be", () => {
  const key = "k".repeat(40_000) + "9";
  const header = "v".repeat(30_000) + "1";
  const secrets = secretsOf(key, "https://api.example.com/v1", { "x-token": header });
  assert.equal(redactText(`key ${key}, header ${header}.`, secrets), "key ***, header ***.");
});

const PROBE_KEY = "sk-probe-SECRETKEY1234567890";

Deno.test("redactText() masks any piece of the key of 12 characters or more, with no ellipsis beside it", () => {
  const secrets = secretsOf(PROBE_KEY, "https://h/v1");
  const pieces = [PROBE_KEY.slice(0, 20), PROBE_KEY.slice(6), PROBE_KEY.slice(5, 22)];
  for (const piece of [...pieces, PROBE_KEY.slice(3, 15)]) {
    assert.equal(
      redactText(`Incorrect API key provided: ${piece}. Retry`, secrets),
      "Incorrect API key provided: ***. Retry",
      piece,
    );
  }
  assert.equal(
    redactText(`a ${PROBE_KEY.slice(0, 14)} b ${PROBE_KEY.slice(-13)} c`, secrets),
    "a *** b *** c",
  );
});

Deno.test("redactText() masks overlapping and touching pieces as one", () => {
  const secrets = secretsOf(PROBE_KEY, "https://h/v1");
  const text = `${PROBE_KEY.slice(0, 14)}${PROBE_KEY.slice(2, 20)}!`;
  assert.equal(redactText(text, secrets), "***!");
});

Deno.test("redactText() leaves a piece of the key shorter than 12 characters alone", () => {
  const secrets = secretsOf(PROBE_KEY, "https://h/v1");
  const piece = PROBE_KEY.slice(9, 20);
  assert.equal(redactText(`id ${piece} ok`, secrets), `id ${piece} ok`);
});

Deno.test("redactText() masks pieces of base_url's credentials and of a credential header's value", () => {
  const secrets = secretsOf(PROBE_KEY, "https://alice:userpassword123@h/v1", {
    "x-portkey-api-key": "hdrsecretVALUE98765",
    "cf-aig-authorization": "Bearer gatewaytokenvalue42",
  });
  assert.equal(redactText("pw userpassword12", secrets), "pw ***");
  assert.equal(redactText("h hdrsecretVAL", secrets), "h ***");
  assert.equal(redactText("(tokenvalue42)", secrets), "(***)");
  assert.equal(redactText("(gatewaytoken)", secrets), "(***)");
});

Deno.test("redactText() leaves pieces of an ordinary header's value, as a title or a referrer", () => {
  const secrets = secretsOf(PROBE_KEY, "https://h/v1", {
    "X-Title": "Orange Cat Studio Nightly",
    "HTTP-Referer": "https://cat-studio.example.com/gallery",
  });
  const text = "From https://cat-studio.example.com: Orange Cat Studio asked";
  assert.equal(redactText(text, secrets), text);
});

Deno.test("secretsOf() takes the key as given, even when it is refused", () => {
  for (const given of [`${PROBE_KEY}é`, `${PROBE_KEY} x`, `${PROBE_KEY}${"z".repeat(9000)}`]) {
    const secrets = secretsOf(given, null);
    assert.equal(redactText(`size ${PROBE_KEY}`, secrets), "size ***", given.slice(0, 40));
  }
  assert.equal(redactText("size 123456789012345", secretsOf(123456789012345, null)), "size ***");
  const nested = secretsOf({ key: [PROBE_KEY] }, null);
  assert.equal(redactText(`size ${PROBE_KEY}`, nested), "size ***");
});
