/** The contact sheet, index.html: its parts, and the page a real browser shows. */
// deno-lint-ignore-file no-console
import assert from "node:assert/strict";
import {
  contactSheetPieces,
  escapeHtml,
  relativeUrl,
  writeContactSheet,
} from "../../lib/batch/contact_sheet.ts";
import { newRecord } from "../../lib/batch/state.ts";
import { Browser, CHROMIUM, HAS_CHROMIUM } from "../_browser.ts";
import { PNG_64, startFakeUpstream, TEST_KEY } from "../_fake_upstream.ts";
import { withTempDir } from "../_helpers.ts";
import {
  BATCH_TARGETS,
  imageAnswer,
  parseJson,
  promptJobs,
  runBatch,
  sharedFlags,
  writeJobs,
} from "./batch_command.ts";

const EVIL_PROMPT = `<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">` +
  `" onmouseover="window.pwned = 3' & </p></main>`;

Deno.test("escapeHtml leaves no markup, in text or in a quoted attribute", () => {
  assert.equal(
    escapeHtml(`<a href="x" title='y'>&amp;</a>`),
    "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;",
  );
});

Deno.test("relativeUrl links from the run dir to an image, each segment encoded", () => {
  assert.equal(relativeUrl("/a/out/.img2-batch/run", "/a/out/cat.png"), "../../cat.png");
  assert.equal(relativeUrl("/a/run", "/a/run/x.png"), "x.png");
  assert.equal(relativeUrl("/a/run", "/b/c #1?%.png"), "../../b/c%20%231%3F%25.png");
  assert.equal(relativeUrl("/", "/x/y.png"), "x/y.png");
  assert.equal(relativeUrl("/a/b", "/a/bc/y.png"), "../bc/y.png");
});

Deno.test("the contact sheet lists jobs in order, escapes every text and says why jobs failed", () => {
  const job = (id: string, prompt: string) => ({
    id,
    line: 1,
    params: { prompt, size: "1024x1024", task_name: id },
  });
  const done = { ...newRecord(job("b-first", EVIL_PROMPT) as never), status: "done" as const };
  done.imagePath = "/run/out/b-first.png";
  const failed = { ...newRecord(job("a-second", "a <b>bold</b> cat") as never) };
  Object.assign(failed, {
    status: "failed",
    category: "content_rejected",
    result: {
      ok: false,
      error: "x",
      diagnosis: {
        category: "content_rejected",
        human_reason: `Rejected <img src=x onerror=alert(1)>`,
        retryable: false,
      },
    },
  });
  const page = [
    ...contactSheetPieces(
      "/run/out/.img2-batch/r/index.html",
      {
        jobs_file: "/run/<jobs>.jsonl",
        jobs_sha256: "s",
        plan_hash: "p",
        settings: { shared: { model: "<m>" } },
      },
      [done, failed],
      new Date(0),
    ),
  ].join("");
  const main = page.slice(page.indexOf("<main>"));
  assert.ok(main.indexOf(`id="job-1"`) < main.indexOf(`id="job-2"`));
  assert.ok(main.indexOf("b-first") < main.indexOf("a-second"));
  assert.doesNotMatch(page, /<script|<img src=x|<b>bold|<[^>]*\son[a-z]+=|<m>|<jobs>/);
  assert.ok(page.includes(escapeHtml(EVIL_PROMPT)));
  assert.ok(page.includes(`src="../../b-first.png"`));
  assert.ok(page.includes(`<b>content_rejected</b>: Rejected &lt;img src=x onerror=alert(1)&gt;`));
  assert.ok(page.includes(`<a href="#job-2">a-second</a>`), "the failed jobs are linked up top");
  assert.match(page, /<meta http-equiv="Content-Security-Policy" content="default-src 'none';/);
});

Deno.test("a run writes index.html beside state.json: no key, the settings as state.json shows them", async () => {
  const target = BATCH_TARGETS[0]!;
  await using upstream = startFakeUpstream();
  upstream.route("count", () => imageAnswer());
  await withTempDir(async (dir) => {
    const jobs = await writeJobs(`${dir}/two.jsonl`, promptJobs(2));
    assert.equal((await runBatch(target, [jobs, ...sharedFlags(upstream, "count", dir)])).code, 0);
    const runDir = `${dir}/out/.img2-batch/two`;
    const page = await Deno.readTextFile(`${runDir}/index.html`);
    const state = parseJson(await Deno.readTextFile(`${runDir}/state.json`));
    assert.ok(!page.includes(TEST_KEY));
    assert.ok(page.includes(escapeHtml(JSON.stringify(state.settings, null, 2))));
    assert.ok(page.includes(`<span class="badge done">2 done</span>`));
    assert.equal((await Deno.stat(`${runDir}/index.html`)).mode! & 0o777, 0o600);
  });
});

if (!HAS_CHROMIUM) {
  console.warn(
    `No browser at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM): ` +
      `the contact sheet's browser tests are skipped`,
  );
}

Deno.test({
  name:
    "in a real browser: thumbnails load, also once moved, failures say why, no prompt runs script",
  ignore: !HAS_CHROMIUM,
  async fn() {
    const target = BATCH_TARGETS[0]!;
    await using upstream = startFakeUpstream();
    upstream.route("count", () => imageAnswer());
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/sheet.jsonl`, [
        ...promptJobs(3),
        { prompt: EVIL_PROMPT, task_name: "evil" },
        { prompt: "blocked", task_name: "blocked", base_url: upstream.baseUrl("moderation") },
      ]);
      const run = await runBatch(target, [jobs, ...sharedFlags(upstream, "count", dir)]);
      assert.equal(run.code, 1);
      const reason = parseJson(run.stdout).jobs[4].result.diagnosis.human_reason;
      // Moved with its images: the links are relative.
      await Deno.rename(`${dir}/out`, `${dir}/moved`);
      await using browser = await Browser.launch();
      const page = await browser.open(`file://${dir}/moved/.img2-batch/sheet/index.html`);
      const widths = await page.evaluate<number[]>(`Promise.all([...document.images].map((img) =>
        img.complete ? img.naturalWidth : new Promise((resolve) => {
          img.onload = img.onerror = () => resolve(img.naturalWidth);
        })))`);
      assert.equal(widths.length, 4);
      assert.ok(widths.every((width) => width > 0), `${widths}`);
      const seen = await page.evaluate<Record<string, unknown>>(`({
        pwned: window.pwned ?? null,
        scripts: document.querySelectorAll("script, [onerror], [onmouseover]").length,
        evil: document.querySelector("#job-4 .prompt").textContent,
        reason: document.querySelector("#job-5 .reason").textContent,
        cards: document.querySelectorAll("main > article").length,
      })`);
      assert.deepEqual(seen, {
        pwned: null,
        scripts: 0,
        evil: EVIL_PROMPT,
        reason: `content_rejected: ${reason}`,
        cards: 5,
      });
      assert.deepEqual(page.scriptTraces(), []);
    });
  },
});

Deno.test({
  name: "in a real browser: the contact sheet of a 2 000-job run renders",
  ignore: !HAS_CHROMIUM,
  async fn() {
    await withTempDir(async (dir) => {
      // The records a run of 2 000 jobs ends with, written as the run writes them (a run that
      // long would cost the suite seconds; the run's own writing is tested above).
      await Deno.mkdir(`${dir}/run`);
      await Deno.writeFile(`${dir}/p.png`, PNG_64);
      const records = Array.from({ length: 2000 }, (_, i) => ({
        ...newRecord(
          {
            id: `p${i + 1}`,
            line: i + 1,
            params: { prompt: `p${i + 1}`, task_name: `p${i + 1}` },
          } as never,
        ),
        status: "done" as const,
        imagePath: `${dir}/p.png`,
        attempts: 1,
      }));
      const header = {
        jobs_file: `${dir}/many.jsonl`,
        jobs_sha256: "s",
        plan_hash: "p",
        settings: {},
      };
      await writeContactSheet(`${dir}/run/index.html`, header, records);
      await using browser = await Browser.launch("1280,1000");
      const page = await browser.open(`file://${dir}/run/index.html`);
      const seen = await page.evaluate<Record<string, unknown>>(`({
        cards: document.querySelectorAll("main > article.done").length,
        images: document.images.length,
        lazy: [...document.images].every((img) => img.loading === "lazy"),
        first: document.images[0].complete && document.images[0].naturalWidth,
        last: document.querySelector("#job-2000 h2").textContent,
        title: document.title,
      })`);
      assert.deepEqual(seen, {
        cards: 2000,
        images: 2000,
        lazy: true,
        first: 64,
        last: "p2000",
        title: "many.jsonl: 2000 done",
      });
    });
  },
});
