// deno-lint-ignore-file no-console
/**
 * `deno task install -- --to DIR [--python-shim PATH] [--bundle]`
 *
 * Builds img2-generate and installs it as DIR/img2-generate: the compiled binary when
 * `deno compile` works here, otherwise (or with --bundle) the single-file bundle, which runs with
 * the `deno` on PATH. With --python-shim it also writes a small Python 3 script at PATH that
 * replaces itself with the installed command, so that `python3 PATH '<json>'` keeps working.
 */
import { parseFlags } from "./_flags.ts";
import { delimiter, dirname, join, resolve } from "node:path";
import { bundle, compile } from "./build.ts";
import { errorMessage } from "../lib/errors.ts";

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
  /** Why the binary was not installed, when it was not. */
  reason: string | null;
  shim: ShimReport | null;
}

const HELP = `Usage: deno task install -- --to DIR [--python-shim PATH] [--bundle]

Builds img2-generate and installs it as DIR/img2-generate (DIR is created if missing).

The standalone binary from deno compile is installed when it can be built here; otherwise the
single-file bundle is installed in its place. The bundle runs with the deno on PATH. deno compile
downloads its runtime base (denort) from Deno's release server, unless DENORT_BIN names a local
copy for this Deno version.

Options:
  --to DIR             Folder to install into
  --python-shim PATH   Also write a Python 3 script at PATH that runs the installed command with
                       the same arguments and standard input, for workflows that call
                       "python3 PATH '<json>'"; a different file already at PATH is kept as
                       PATH.bak first
  --bundle             Install the bundle without trying deno compile
  -h, --help           Show this help
`;

/** Builds, checks and installs the command, then writes the shim if asked. */
export async function install(options: InstallOptions): Promise<InstallReport> {
  const note = options.note ?? ((line: string) => console.error(line));
  const dir = expandPath(options.to);
  const command = join(dir, COMMAND_NAME);
  const shimPath = options.pythonShim === undefined ? null : expandPath(options.pythonShim);
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
    const built = await build(work, options.bundleOnly === true, note);
    await placeExecutable(built.path, command);
    const shim = shimPath === null ? null : await writePythonShim(shimPath, command, note);
    return { command, kind: built.kind, reason: built.reason, shim };
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

interface Built {
  path: string;
  kind: InstalledKind;
  reason: string | null;
}

async function build(
  work: string,
  bundleOnly: boolean,
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
  const script = join(work, `${COMMAND_NAME}.js`);
  await bundle(script);
  const problem = await versionProblem([
    Deno.execPath(),
    "run",
    "--no-config",
    script,
    "--version",
  ]);
  if (problem !== null) throw new Error(`Cannot install the bundle: ${problem}`);
  if (!onPath("deno")) {
    note(
      `Warning: the bundle runs with the deno on PATH, and there is none; add "${
        dirname(Deno.execPath())
      }" to PATH`,
    );
  }
  return { path: script, kind: "bundle", reason };
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
async function versionProblem(argv: string[]): Promise<string | null> {
  const [program, ...args] = argv as [string, ...string[]];
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(program, {
      args,
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

/** The Python 3 script that replaces itself with `command`, keeping arguments and stdin. */
export function pythonShim(command: string): string {
  // A JSON string is also a valid Python string literal.
  const literal = JSON.stringify(command);
  return `#!/usr/bin/env python3
${SHIM_MARKER}: runs ${COMMAND_NAME} with the same arguments. exec replaces this process,
# so standard input, standard output and the exit code are the command's own.
import os
import sys

COMMAND = ${literal}

try:
    os.execv(COMMAND, [COMMAND] + sys.argv[1:])
except OSError as error:
    sys.stderr.write("Cannot run %s: %s\\n" % (COMMAND, error))
    sys.exit(127)
`;
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

function onPath(program: string): boolean {
  return pathEntries().some((entry) => {
    try {
      return Deno.statSync(join(entry, program)).isFile;
    } catch {
      return false;
    }
  });
}

/** What was installed where, for the end of the run. */
export function summary(report: InstallReport): string {
  const what = report.kind === "binary"
    ? "the compiled binary"
    : "the single-file bundle (runs with deno)";
  const lines = [`Installed ${COMMAND_NAME}, ${what}, at ${report.command}`];
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
