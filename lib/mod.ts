/**
 * Generate one image through an OpenAI-compatible `POST {base_url}/images/generations` and save
 * it, with a structured result and a diagnosis for every failure.
 *
 * @example
 * ```ts
 * import { generateImage } from "./lib/mod.ts";
 * const result = await generateImage({
 *   prompt: "an orange cat by the window",
 *   base_url: "https://api.example.com/v1",
 *   api_key: Deno.env.get("IMG2_API_KEY"),
 *   model: "gpt-image-2",
 *   size: "1024x1024",
 *   task_name: "orange-cat",
 *   timeout_ms: 300000,
 * });
 * if (result.ok) console.log(result.image_path);
 * else console.log(result.diagnosis.category, result.diagnosis.retryable);
 * ```
 * @module
 */
export { generateImage, type GenerateOptions, generateValidated } from "./generate.ts";
export type { Attempt, FailureResult, GenerationResult, SuccessResult } from "./result.ts";
export type { GenerationInput, GenerationParams } from "./params/params.ts";
export {
  DEFAULT_OUTPUT_DIR,
  isParamName,
  PARAM_SPECS,
  resolveFolder,
  unknownParamMessage,
  validateParams,
} from "./params/params.ts";
export { callContext, failureResult } from "./result.ts";
export {
  type ByteLimit,
  parseJsonObject,
  readCapped,
  readParamFlag,
  unknownOptionMessage,
  utf8Text,
  withoutQuotedInput,
} from "./cli/args.ts";
export { errorMessage, GenerationError, InputError } from "./failure/errors.ts";
export {
  isImageNameOf,
  isPartNameOf,
  refuseSharedFolder,
  removeIfUnlocked,
  safeFileStem,
} from "./image/output_file.ts";
export { absolutePath, basename, dirname, inFolder } from "./shared/paths.ts";
export { dryRunReport } from "./cli/dry_run.ts";
export { maskedHeaderValues } from "./params/headers.ts";
export { requestBody } from "./upstream/request.ts";
export { type ProviderAnswer, providerJson, providerRequest } from "./upstream/provider_api.ts";
export type { UpstreamError } from "./failure/errors.ts";
export { maskBaseUrl } from "./shared/redact.ts";
export { isJsonObject } from "./shared/json.ts";
export { isWriteAbandoned, Stdout } from "./cli/stdout.ts";
export type { Category, Diagnosis, Lang, Stage } from "./failure/types.ts";
export { diagnose, DIAGNOSIS_RULES } from "./failure/diagnosis.ts";
export { VERSION } from "./shared/version.ts";
