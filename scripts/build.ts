// deno-lint-ignore-file no-console
/**
 * Builds the shipped artifacts from main.ts:
 *   deno task bundle   -> dist/img2-generate.js, one file that runs anywhere Deno is installed
 *   deno task compile  -> dist/img2-generate, a standalone binary with the permissions baked in
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

export const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
export const MAIN = join(ROOT, "main.ts");
export const BUNDLE = join(ROOT, "dist", "img2-generate.js");
export const BINARY = join(ROOT, "dist", "img2-generate");
export const SHEBANG = `#!/usr/bin/env -S deno run --no-config ${RUN_PERMISSIONS.join(" ")}`;

async function deno(args: string[]): Promise<Deno.CommandOutput> {
  return await new Deno.Command(Deno.execPath(), { args, stdout: "inherit", stderr: "piped" })
    .output();
}

export async function bundle(output = BUNDLE): Promise<void> {
  await Deno.mkdir(dirname(output), { recursive: true });
  const result = await deno(["bundle", "--quiet", "--platform", "deno", "-o", output, MAIN]);
  if (!result.success) throw new Error(new TextDecoder().decode(result.stderr));
  const text = await Deno.readTextFile(output);
  // The bundle keeps main.ts's shebang line; make sure it is the one the permissions say.
  const body = text.startsWith("#!") ? text.slice(text.indexOf("\n") + 1) : text;
  await Deno.writeTextFile(output, `${SHEBANG}\n${body}`);
  await Deno.chmod(output, 0o755);
  console.error(`wrote ${output}`);
}

export async function compile(output = BINARY): Promise<void> {
  await Deno.mkdir(dirname(output), { recursive: true });
  const result = await deno([
    "compile",
    "--quiet",
    "--no-config",
    ...RUN_PERMISSIONS,
    "-o",
    output,
    MAIN,
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
    if (target === "bundle") await bundle();
    else if (target === "compile") await compile();
    else throw new Error(`usage: build.ts bundle|compile (got ${JSON.stringify(target)})`);
  } catch (error) {
    console.error((error as Error).message);
    Deno.exit(1);
  }
}
