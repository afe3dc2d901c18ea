/**
 * `index.html`, the run's contact sheet: one self-contained page, readable without script or
 * network, showing every job as a card in the jobs file's order. Images are linked relatively,
 * so the page keeps working when the run dir is moved together with its images. Every text that
 * comes from a job, a result or an upstream is escaped, and the page forbids script outright.
 */
import { basename, isJsonObject } from "../mod.ts";
import type { JobStatus } from "./journal.ts";
import type { JobRecord, StateHeader } from "./state.ts";
import { writeAtomically } from "./state.ts";

export const CONTACT_SHEET_FILE = "index.html";

/** The cards written in one piece: a few hundred kilobytes at a time. */
const CARDS_PER_PIECE = 256;

/** Writes the contact sheet of `records` to `path`, atomically, as state.json is written. */
export function writeContactSheet(
  path: string,
  header: StateHeader,
  records: readonly JobRecord[],
): Promise<void> {
  return writeAtomically(path, contactSheetPieces(path, header, records, new Date()));
}

/** The page, in pieces; image links are relative to the folder of `path`. */
export function* contactSheetPieces(
  path: string,
  header: StateHeader,
  records: readonly JobRecord[],
  now: Date,
): Generator<string> {
  const folder = path.slice(0, path.lastIndexOf("/")) || "/";
  const counts = new Map<JobStatus, number>();
  for (const record of records) counts.set(record.status, (counts.get(record.status) ?? 0) + 1);
  const countsText = [...counts].map(([status, n]) => `${n} ${status.replaceAll("_", " ")}`);
  const title = `${basename(header.jobs_file)}: ${countsText.join(", ")}`;
  yield `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src 'self' file: data:; style-src 'unsafe-inline'">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>img2-batch · ${escapeHtml(basename(header.jobs_file))}</h1>
<p class="counts">${
    [...counts].map(([status, n]) =>
      `<span class="badge ${status}">${n} ${status.replaceAll("_", " ")}</span>`
    ).join(" ")
  } <span class="total">of ${records.length}</span></p>
<p class="when">Updated <time>${now.toISOString()}</time> · jobs file <code>${
    escapeHtml(header.jobs_file)
  }</code></p>
${settingsLine(header.settings)}<details><summary>All settings</summary><pre>${
    escapeHtml(JSON.stringify(header.settings, null, 2))
  }</pre></details>
${failedIndex(records)}</header>
<main>
`;
  let piece = "";
  for (let i = 0; i < records.length; i++) {
    piece += card(records[i]!, i, folder);
    if ((i + 1) % CARDS_PER_PIECE === 0) {
      yield piece;
      piece = "";
    }
  }
  yield `${piece}</main>\n</body>\n</html>\n`;
}

/** The shared parameters in one line (base_url masked, as state.json holds them; no key). */
function settingsLine(settings: Record<string, unknown>): string {
  const shared = isJsonObject(settings.shared) ? settings.shared : {};
  const shown = Object.entries(shared)
    .filter(([, value]) => typeof value === "string" || typeof value === "number")
    .map(([name, value]) => `${escapeHtml(name)} <code>${escapeHtml(String(value))}</code>`);
  if (typeof settings.concurrency === "number") shown.push(`concurrency ${settings.concurrency}`);
  return shown.length === 0 ? "" : `<p class="settings">${shown.join(" · ")}</p>\n`;
}

/** Links to the failed jobs, so that a few among thousands are found at once. */
function failedIndex(records: readonly JobRecord[]): string {
  const links: string[] = [];
  records.forEach((record, i) => {
    if (record.status === "failed" || record.status === "missing") {
      links.push(`<a href="#job-${i + 1}">${escapeHtml(nameOf(record))}</a>`);
    }
  });
  if (links.length === 0) return "";
  return `<nav class="failed-index">Failed or missing: ${links.join(" ")}</nav>\n`;
}

function card(record: JobRecord, index: number, folder: string): string {
  const name = escapeHtml(nameOf(record));
  const params = record.job?.params;
  const image = record.imagePath;
  const picture = image !== null && record.status === "done"
    ? `<a class="thumb" href="${escapeHtml(relativeUrl(folder, image))}"><img src="${
      escapeHtml(relativeUrl(folder, image))
    }" alt="${name}" loading="lazy" decoding="async"></a>`
    : `<div class="thumb none">${
      record.status === "submitted" ? "at the provider" : record.status.replaceAll("_", " ")
    }</div>`;
  const meta = [
    `<span class="badge ${record.status}">${record.status.replaceAll("_", " ")}</span>`,
    ...(typeof params?.size === "string" ? [escapeHtml(params.size)] : []),
    `${record.attempts} ${record.attempts === 1 ? "attempt" : "attempts"}`,
  ].join(" · ");
  const prompt = typeof params?.prompt === "string"
    ? `<p class="prompt">${escapeHtml(params.prompt)}</p>`
    : "";
  return `<article class="card ${record.status}" id="job-${index + 1}">${picture}<h2>${name}</h2>` +
    `<p class="meta">${meta}</p>${prompt}${reasonOf(record)}</article>\n`;
}

/** Why a job failed (its category and human_reason), or why it was not started or is missing. */
function reasonOf(record: JobRecord): string {
  const result = record.result;
  if (record.status === "failed" && result !== null && result.ok === false) {
    return `<p class="reason"><b>${escapeHtml(result.diagnosis.category)}</b>: ${
      escapeHtml(result.diagnosis.human_reason)
    }</p><p class="error">${escapeHtml(result.error)}</p>`;
  }
  if (record.reason !== null) return `<p class="reason">${escapeHtml(record.reason)}</p>`;
  if (record.status === "failed" && record.category !== null) {
    return `<p class="reason"><b>${escapeHtml(record.category)}</b></p>`;
  }
  return "";
}

function nameOf(record: JobRecord): string {
  return record.taskName ?? record.id;
}

/** Text made safe inside an element and inside a quoted attribute. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => ESCAPES[char]!);
}

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/**
 * The link from `folder` to `target` (both absolute POSIX paths), each segment percent-encoded so
 * that "#", "?" or "%" in a name stay part of it.
 */
export function relativeUrl(folder: string, target: string): string {
  const from = folder.split("/").filter((segment) => segment !== "");
  const to = target.split("/").filter((segment) => segment !== "");
  let common = 0;
  while (common < from.length && common < to.length - 1 && from[common] === to[common]) common++;
  return [
    ...Array<string>(from.length - common).fill(".."),
    ...to.slice(common).map(encodeURIComponent),
  ].join("/");
}

const STYLE = `
:root { color-scheme: light dark; --line: #8884; --muted: #888; }
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; padding: 16px; }
header { margin-bottom: 16px; }
h1 { font-size: 20px; margin: 0 0 8px; }
header p { margin: 4px 0; }
.when, .total, .settings { color: var(--muted); }
pre { font-size: 12px; overflow: auto; }
.failed-index a { margin-right: 8px; }
.badge { border-radius: 4px; padding: 1px 6px; background: #8882; white-space: nowrap; }
.badge.done { background: #2a6; color: #fff; }
.badge.failed, .badge.missing { background: #c33; color: #fff; }
.badge.running, .badge.submitted { background: #36c; color: #fff; }
main { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 12px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px; overflow-wrap: anywhere;
  content-visibility: auto; contain-intrinsic-size: auto 360px; }
.card.failed, .card.missing { border-color: #c33; }
.thumb { display: block; aspect-ratio: 1; background: #8881; border-radius: 4px; }
.thumb img { width: 100%; height: 100%; object-fit: contain; display: block; }
.thumb.none { display: flex; align-items: center; justify-content: center; color: var(--muted); }
h2 { font-size: 14px; margin: 8px 0 2px; }
.meta { color: var(--muted); margin: 0 0 4px; }
.prompt { margin: 0; max-height: 8em; overflow: auto; white-space: pre-wrap; }
.reason { margin: 4px 0 0; color: #c33; }
.error { margin: 2px 0 0; color: var(--muted); font-size: 12px; max-height: 6em; overflow: auto; }
`;
