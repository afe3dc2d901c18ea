// deno-lint-ignore-file no-console
/**
 * `deno task install -- --to DIR [--python-shim PATH] [--bundle]`
 *
 * Builds img2-generate and installs it as DIR/img2-generate: the compiled binary when
 * `deno compile` works here, otherwise (or with --bundle) the single-file bundle, pinned to the
 * Deno that runs this script by its absolute path, so that it runs under any PATH. With
 * --python-shim it also writes a small Python 3 script at PATH that replaces itself with the
 * installed command, so that `python3 PATH '<json>'` keeps working.
 */
import { parseFlags } from "../_flags.ts";
import { delimiter, dirname, isAbsolute, join, resolve } from "node:path";
import { BATCH, bundle, COMMAND as ENTRY, compile, withHead } from "./build.ts";
import { errorMessage, InputError } from "../../lib/failure/errors.ts";
import { callContext, failureResult } from "../../lib/result.ts";

export const COMMAND_NAME = "img2-generate";

/** The line that marks a file as a shim this script wrote, so that it may be replaced freely. */
export const SHIM_MARKER = "# img2-generate python shim";

export type InstalledKind = "binary" | "bundle";

export interface InstallOptions {
  /** The folder to install into, created when missing. */
  to: string;
  /** Where to write the Python shim, if anywhere. */
  pythonShim?: string | undefined;
  /** Install the bundle without trying `deno compile`. */
  bundleOnly?: boolean | undefined;
  /** The Deno the bundle runs with, by absolute path; by default the one running this script. */
  deno?: string | undefined;
  /** Notes for the person installing: what is happening and why. */
  note?: (line: string) => void;
}

export interface ShimReport {
  path: string;
  /** Where the file that was at `path` before was kept, or null when there was none to keep. */
  backup: string | null;
}

export interface InstallReport {
  command: string;
  kind: InstalledKind;
  /** The Deno the installed bundle runs with; null for the binary, which needs none. */
  deno: string | null;
  /** Why the binary was not installed, when it was not. */
  reason: string | null;
  shim: ShimReport | null;
}

const HELP = `Usage: deno task install -- --to DIR [--python-shim PATH] [--bundle] [--deno PATH]

Builds img2-generate and installs it as DIR/img2-generate (DIR is created if missing), with the
batch scheduler img2-batch beside it as a single-file bundle.

The standalone binary from deno compile is installed when it can be built here; otherwise the
single-file bundle is installed in its place. The bundle runs with the Deno that runs this
install, named by its absolute path, so it works whatever PATH its caller has; if that Deno is
gone later, it answers with a failure JSON (stage "input", exit code 2). deno compile downloads
its runtime base (denort) from Deno's release server, unless DENORT_BIN names a local copy for
this Deno version.

Options:
  --to DIR             Folder to install into
  --python-shim PATH   Also write a Python 3 script at PATH that runs the installed command with
                       the same arguments and standard input, for workflows that call
                       "python3 PATH '<json>'"; a different file already at PATH is kept as
                       PATH.bak first
  --bundle             Install the bundle without trying deno compile
  --deno PATH          The Deno the bundle runs with (default: this one, ${Deno.execPath()})
  -h, --help           Show this help
`;

/** Builds, checks and installs the command, then writes the shim if asked. */
export async function install(options: InstallOptions): Promise<InstallReport> {
  const note = options.note ?? ((line: string) => console.error(line));
  const dir = expandPath(options.to);
  const command = join(dir, COMMAND_NAME);
  const shimPath = options.pythonShim === undefined ? null : expandPath(options.pythonShim);
  const deno = options.deno === undefined ? Deno.execPath() : expandPath(options.deno);
  if (shimPath === command) {
    throw new Error(`Cannot write the Python shim at "${shimPath}": the command goes there`);
  }

  try {
    await Deno.mkdir(dir, { recursive: true });
  } catch (error) {
    throw new Error(`Cannot create the folder "${dir}": ${errorMessage(error)}`);
  }
  const work = await Deno.makeTempDir({ prefix: "img2-generate-build-" });
  try {
    const built = await build(work, options.bundleOnly === true, deno, note);
    await placeExecutable(built.path, command);
    await installBatch(work, dir, deno);
    const shim = shimPath === null ? null : await writePythonShim(shimPath, command, note);
    return {
      command,
      kind: built.kind,
      deno: built.kind === "bundle" ? deno : null,
      reason: built.reason,
      shim,
    };
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

/** img2-batch, always as the bundle, pinned to the same Deno, beside the command. */
async function installBatch(work: string, dir: string, deno: string): Promise<void> {
  const script = join(work, BATCH.name);
  await bundle(script, BATCH);
  await Deno.writeTextFile(script, withHead(await Deno.readTextFile(script), pinnedHead(deno)));
  await placeExecutable(script, join(dir, BATCH.name));
}

interface Built {
  path: string;
  kind: InstalledKind;
  reason: string | null;
}

async function build(
  work: string,
  bundleOnly: boolean,
  deno: string,
  note: (line: string) => void,
): Promise<Built> {
  let reason: string | null = bundleOnly ? "--bundle was given" : null;
  if (reason === null) {
    const binary = join(work, COMMAND_NAME);
    try {
      await compile(binary);
      const problem = await versionProblem([binary, "--version"]);
      if (problem === null) {
        note("Installing the compiled binary");
        return { path: binary, kind: "binary", reason: null };
      }
      reason = `the compiled binary does not work (${problem})${denortHint()}`;
    } catch (error) {
      reason = compileFailureReason(errorMessage(error));
    }
  }
  note(`Installing the single-file bundle instead of a compiled binary: ${reason}`);
  const script = join(work, COMMAND_NAME);
  await bundle(script);
  await Deno.writeTextFile(script, withHead(await Deno.readTextFile(script), pinnedHead(deno)));
  const problem = await versionProblem([script, "--version"], { PATH: "" });
  if (problem !== null) {
    throw new Error(`Cannot install the bundle to run with the Deno at "${deno}": ${problem}`);
  }
  return { path: script, kind: "bundle", reason };
}

/**
 * The lines that replace the bundle's `#!/usr/bin/env -S deno run …` when it is installed, so
 * that it needs no `deno` on PATH. sh runs them: it starts the pinned Deno on this same file, or,
 * when that Deno is gone, prints the failure the command would print for an input it cannot run
 * and exits 2. Deno reads both lines as `//` comments; to sh, `//` is a folder that fails to run
 * (its complaint sent to /dev/null) before the `;`.
 */
export function pinnedHead(deno: string): string {
  if (!isAbsolute(deno)) throw new Error(`Cannot pin Deno at "${deno}": the path is not absolute`);
  const failure = JSON.stringify(denoMissingResult(deno), null, 2).split("\n");
  const run = ["run", "--no-config", ...ENTRY.permissions].join(" ");
  return [
    "#!/bin/sh",
    `// 2>/dev/null; deno=${shellQuote(deno)}; [ -x "$deno" ] && exec "$deno" ${run} "$0" "$@"`,
    `// 2>/dev/null; printf '%s\\n' ${failure.map(shellQuote).join(" ")}; exit 2`,
  ].join("\n");
}

/** What the installed command answers when the Deno it was pinned to is gone. */
export function denoMissingResult(deno: string): ReturnType<typeof failureResult> {
  const error = new InputError(
    `Cannot run ${COMMAND_NAME}: Deno is not at "${deno}" any more, where it was when ` +
      `${COMMAND_NAME} was installed; install Deno 2.9 and install ${COMMAND_NAME} again ` +
      "(deno task install)",
  );
  return { ...failureResult(error, callContext({})), elapsed_ms: 0 };
}

/** `text` as one sh word, taken literally. */
function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/** One line saying why `deno compile` failed, from the message that build.ts gives. */
export function compileFailureReason(message: string): string {
  // deno colours its errors even when they are piped.
  // deno-lint-ignore no-control-regex
  const lines = message.replace(/\x1b\[[0-9;]*m/g, "").split("\n").map((line) => line.trim());
  const causes = lines
    .filter((line) => /^\d+: /.test(line))
    .map((line) => line.replace(/^\d+: /, ""));
  const cause = causes.find((line) => /denort|https?:\/\//i.test(line)) ?? causes.at(-1) ??
    lines.find((line) => line !== "" && line !== "deno compile failed.") ??
    "no message";
  return `deno compile failed (${clip(cause.replace(/^error: /, ""))})${denortHint()}`;
}

function denortHint(): string {
  const denort = Deno.env.get("DENORT_BIN");
  return denort
    ? `; check that DENORT_BIN ("${denort}") names denort for Deno ${Deno.version.deno}`
    : `; to install the binary, set DENORT_BIN to a local denort for Deno ${Deno.version.deno} ` +
      "and run again";
}

/** Runs `argv` (a `--version` call) and says what is wrong with it, or null when it works. */
async function versionProblem(
  argv: string[],
  env: Record<string, string> = {},
): Promise<string | null> {
  const [program, ...args] = argv as [string, ...string[]];
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(program, {
      args,
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (error) {
    return `cannot start it: ${errorMessage(error)}`;
  }
  const stdout = new TextDecoder().decode(output.stdout).trim();
  if (!output.success) {
    const stderr = new TextDecoder().decode(output.stderr).trim();
    return `"--version" exited with code ${output.code}` + (stderr ? `: ${clip(stderr)}` : "");
  }
  if (!stdout.startsWith(`${COMMAND_NAME} `)) {
    return `"--version" printed ${JSON.stringify(clip(stdout.split("\n")[0] ?? ""))}, ` +
      `not the ${COMMAND_NAME} version`;
  }
  return null;
}

function clip(text: string, max = 300): string {
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}

/** Copies `source` next to `target`, makes it executable and moves it into place in one step. */
async function placeExecutable(source: string, target: string): Promise<void> {
  const staged = stagingPath(target);
  try {
    await Deno.copyFile(source, staged);
    await Deno.chmod(staged, 0o755);
    await Deno.rename(staged, target);
  } catch (error) {
    await Deno.remove(staged).catch(() => {});
    throw new Error(`Cannot install "${target}": ${errorMessage(error)}`);
  }
}

/**
 * The Python 3 script that replaces itself with `command`, keeping arguments and stdin. When
 * `command` cannot be started it answers as the command does for an input it cannot run: one
 * failure JSON on standard output, exit code 2.
 */
export function pythonShim(command: string): string {
  const failure = JSON.stringify(commandMissingResult(command), null, 2) + "\n";
  // A JSON string is also a valid Python string literal, with the same meaning.
  return `#!/usr/bin/env python3
${SHIM_MARKER}: runs ${COMMAND_NAME} with the same arguments. exec replaces this process,
# so standard input, standard output and the exit code are the command's own.
import os
import sys

COMMAND = ${JSON.stringify(command)}
FAILURE = ${JSON.stringify(failure)}

try:
    os.execv(COMMAND, [COMMAND] + sys.argv[1:])
except OSError as error:
    sys.stderr.write("Cannot run %s: %s\\n" % (COMMAND, error))
    sys.stdout.buffer.write(FAILURE.encode("utf-8"))
    sys.exit(2)
`;
}

/** What the Python shim answers when the installed command cannot be started. */
export function commandMissingResult(command: string): ReturnType<typeof failureResult> {
  const error = new InputError(
    `Cannot run ${COMMAND_NAME} at "${command}": it is missing or cannot be executed; ` +
      `install ${COMMAND_NAME} again (deno task install)`,
  );
  return { ...failureResult(error, callContext({})), elapsed_ms: 0 };
}

/**
 * Writes the shim at `path`, creating its folder. A file already there that is not a shim of ours
 * is copied to `path.bak` (or `path.bak.1`, … when that is taken) first.
 */
export async function writePythonShim(
  path: string,
  command: string,
  note: (line: string) => void = (line) => console.error(line),
): Promise<ShimReport> {
  await Deno.mkdir(dirname(path), { recursive: true });
  let backup: string | null = null;
  const existing = await readIfFile(path);
  if (existing !== null && !existing.includes(SHIM_MARKER)) {
    backup = await freeBackupPath(path);
    await Deno.copyFile(path, backup);
    note(`Kept the file that was at "${path}" as "${backup}"`);
  }
  const staged = stagingPath(path);
  try {
    await Deno.writeTextFile(staged, pythonShim(command), { mode: 0o755 });
    await Deno.chmod(staged, 0o755);
    await Deno.rename(staged, path);
  } catch (error) {
    await Deno.remove(staged).catch(() => {});
    throw new Error(`Cannot write the Python shim at "${path}": ${errorMessage(error)}`);
  }
  return { path, backup };
}

async function readIfFile(path: string): Promise<string | null> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
  if (!info.isFile) {
    throw new Error(`Cannot write the Python shim at "${path}": it is not a regular file`);
  }
  return new TextDecoder().decode(await Deno.readFile(path));
}

async function freeBackupPath(path: string): Promise<string> {
  for (let n = 0;; n++) {
    const candidate = n === 0 ? `${path}.bak` : `${path}.bak.${n}`;
    try {
      await Deno.lstat(candidate);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return candidate;
      throw error;
    }
  }
}

function stagingPath(target: string): string {
  return join(dirname(target), `.${COMMAND_NAME}-${crypto.randomUUID().slice(0, 8)}.tmp`);
}

/** Resolves a path, expanding a leading "~" the way a shell would. */
function expandPath(path: string): string {
  const home = Deno.env.get("HOME");
  const expanded = home && (path === "~" || path.startsWith("~/")) ? home + path.slice(1) : path;
  return resolve(expanded);
}

function pathEntries(): string[] {
  return (Deno.env.get("PATH") ?? "").split(delimiter).filter((entry) => entry !== "").map((
    entry,
  ) => resolve(entry));
}

/** What was installed where, for the end of the run. */
export function summary(report: InstallReport): string {
  const what = report.kind === "binary"
    ? "the compiled binary"
    : `the single-file bundle (runs with the Deno at ${report.deno})`;
  const lines = [
    `Installed ${COMMAND_NAME}, ${what}, at ${report.command}`,
    `Installed ${BATCH.name} (the single-file bundle) beside it`,
  ];
  if (report.shim) {
    lines.push(
      `Python shim at ${report.shim.path} runs it` +
        (report.shim.backup ? ` (the previous file is kept at ${report.shim.backup})` : ""),
    );
  }
  const dir = dirname(report.command);
  if (!pathEntries().includes(dir)) {
    lines.push(`${dir} is not on PATH; to call ${COMMAND_NAME} by name, add it:`);
    lines.push(`  export PATH="${dir}:$PATH"`);
  }
  return lines.join("\n");
}

async function main(args: string[]): Promise<number> {
  const parsed = parseFlags(args, {
    to: { type: "string" },
    "python-shim": { type: "string" },
    bundle: { type: "boolean" },
    deno: { type: "string" },
  }, HELP);
  if (!parsed.ok) return parsed.exitCode;
  const { values } = parsed;
  if (values.to === undefined || values.to.trim() === "") {
    console.error(
      "Missing --to DIR: the folder to install img2-generate into\n" +
        "Run with --help for usage",
    );
    return 2;
  }
  try {
    const report = await install({
      to: values.to,
      pythonShim: values["python-shim"],
      bundleOnly: values.bundle,
      deno: values.deno,
    });
    console.log(summary(report));
    return 0;
  } catch (error) {
    console.error(errorMessage(error));
    return 1;
  }
}

if (import.meta.main) {
  Deno.exitCode = await main(Deno.args);
}
