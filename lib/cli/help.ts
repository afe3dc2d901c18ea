import { MAX_INPUT_LABEL } from "./args.ts";
import { PARAM_NAMES, PARAM_SPECS, REQUIRED_NAMES } from "../params/params.ts";
import { signalExitCodes } from "./stop_signals.ts";
import { VERSION } from "../shared/version.ts";

/** The text of `--help`, listing every parameter from the parameter table. */
export function helpText(): string {
  const optionLine = (name: (typeof PARAM_NAMES)[number]) => {
    const flag = `  --${name.replaceAll("_", "-")}`;
    return `${flag.padEnd(24)} ${PARAM_SPECS[name].help}`;
  };
  const optional = PARAM_NAMES.filter((name) => !REQUIRED_NAMES.includes(name));
  return `img2-generate ${VERSION}: generate one image through an OpenAI-compatible API and save it.

Usage:
  img2-generate '<json object>'         parameters as one JSON argument
  img2-generate - < params.json         JSON from standard input (keeps api_key out of ps and history)
  img2-generate --input params.json     JSON from a file
  img2-generate --prompt "…" --base-url https://api.example.com/v1 --api-key sk-… …
Forms combine; flags override JSON field by field. Each flag also takes its snake_case spelling
(--base_url) and the --name=value form. Each JSON form holds at most ${MAX_INPUT_LABEL}; one
argument holds at most 128 KiB on Linux, so give a long prompt on standard input or in a file.

Required:
${REQUIRED_NAMES.map(optionLine).join("\n")}

Optional:
${optional.map(optionLine).join("\n")}

Tool options:
  --input FILE           read the JSON object from FILE
  --dry-run              validate and print the request that would be sent (secrets masked); send nothing
  --help, -h             this text
  --version, -V          the version

Prints one JSON object on standard output: "ok": true with "image_path", or "ok": false with
"stage", "http_status", "upstream_error_*", "error" and "diagnosis" {category, human_reason,
retryable}. Exit codes: 0 success, 1 failure, 2 invalid input,
${signalExitCodes()}.
HTTPS_PROXY, HTTP_PROXY and NO_PROXY from the environment apply.
`;
}
