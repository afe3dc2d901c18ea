// deno-lint-ignore-file no-console
/**
 * Builds the shipped artifacts of every entry in ENTRIES:
 *   deno task bundle   -> dist/<name>.js, one file that runs anywhere Deno is installed
 *   deno task compile  -> dist/<name>, a standalone binary with the permissions baked in
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The narrowest permissions that work: any API host, any output_dir, and HOME for "~". */
export const RUN_PERMISSIONS = [
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-env=HOME",
] as const;

export const ROOT = dirname(fileURLToPath(new URL("../../deno.json", import.meta.url)));
export const DIST = join(ROOT, "dist");
export const MAIN = join(ROOT, "main.ts");

/** A command this project ships: its name, its main module and the permissions it runs with. */
export interface Entry {
  /** The command's name, and the name of its files in dist/ */
  name: string;
  main: string;
  permissions: readonly string[];
}

export const COMMAND: Entry = { name: "img2-generate", main: MAIN, permissions: RUN_PERMISSIONS };

/** The batch scheduler, built from batch.ts with the same permissions. */
export const BATCH: Entry = {
  name: "img2-batch",
  main: join(ROOT, "batch.ts"),
  permissions: RUN_PERMISSIONS,
};

/** Every command that `deno task bundle` and `deno task compile` build. */
export const ENTRIES: readonly Entry[] = [COMMAND, BATCH];

export const bundlePath = (entry: Entry): string => join(DIST, `${entry.name}.js`);
export const binaryPath = (entry: Entry): string => join(DIST, entry.name);

export const BUNDLE = bundlePath(COMMAND);
export const BINARY = binaryPath(COMMAND);
export const BATCH_BUNDLE = bundlePath(BATCH);

/** The first line of a bundle: run it with the `deno` on PATH and the entry's permissions. */
export function shebang(entry: Entry): string {
  return `#!/usr/bin/env -S deno run --no-config ${entry.permissions.join(" ")}`;
}

/** `script` with its `#!` line, if it has one, replaced by `head`. */
export function withHead(script: string, head: string): string {
  const body = script.startsWith("#!") ? script.slice(script.indexOf("\n") + 1) : script;
  return `${head}\n${body}`;
}

async function deno(args: string[]): Promise<Deno.CommandOutput> {
  return await new Deno.Command(Deno.execPath(), { args, stdout: "inherit", stderr: "piped" })
    .output();
}

export async function bundle(output = BUNDLE, entry = COMMAND): Promise<void> {
  await Deno.mkdir(dirname(output), { recursive: true });
  const result = await deno(["bundle", "--quiet", "--platform", "deno", "-o", output, entry.main]);
  if (!result.success) throw new Error(new TextDecoder().decode(result.stderr));
  // The bundle keeps the main module's shebang line; make sure it is the one the permissions say.
  await Deno.writeTextFile(output, withHead(await Deno.readTextFile(output), shebang(entry)));
  await Deno.chmod(output, 0o755);
  console.error(`wrote ${output}`);
}

export async function compile(output = BINARY, entry = COMMAND): Promise<void> {
  await Deno.mkdir(dirname(output), { recursive: true });
  const result = await deno([
    "compile",
    "--quiet",
    "--no-config",
    ...entry.permissions,
    "-o",
    output,
    entry.main,
  ]);
  if (!result.success) {
    const detail = new TextDecoder().decode(result.stderr).trim();
    throw new Error(
      `deno compile failed.\n${detail}\n\n` +
        "deno compile needs its runtime base, denort, which it downloads from Deno's release " +
        "server. Where that server cannot be reached, download denort for this Deno version " +
        `(${Deno.version.deno}) and platform on a machine that can, then run again with ` +
        "DENORT_BIN=/path/to/denort. The single-file bundle (deno task bundle) needs no download.",
    );
  }
  console.error(`wrote ${output}`);
}

if (import.meta.main) {
  const target = Deno.args[0];
  try {
    if (target !== "bundle" && target !== "compile") {
      throw new Error(`usage: build.ts bundle|compile (got ${JSON.stringify(target)})`);
    }
    for (const entry of ENTRIES) {
      if (target === "bundle") await bundle(bundlePath(entry), entry);
      else await compile(binaryPath(entry), entry);
    }
  } catch (error) {
    console.error((error as Error).message);
    Deno.exit(1);
  }
}
