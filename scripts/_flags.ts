// deno-lint-ignore-file no-console
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";

/**
 * Parses a script's flags, with `--help`/`-h` added. On a usage error or `--help` it prints what
 * to print and gives the exit code to end with instead of the values.
 */
export function parseFlags<const Options extends ParseArgsOptionsConfig>(
  args: string[],
  options: Options,
  help: string,
) {
  // `deno task NAME -- --flag` hands the "--" on to the script.
  const argv = args[0] === "--" ? args.slice(1) : args;
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(help);
    return { ok: false, exitCode: 0 } as const;
  }
  try {
    const { values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false });
    return { ok: true, values } as const;
  } catch (error) {
    console.error(
      `${error instanceof Error ? error.message : String(error)}\nRun with --help for usage`,
    );
    return { ok: false, exitCode: 2 } as const;
  }
}
