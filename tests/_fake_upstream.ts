/**
 * The offline upstream (scripts/mock/mock.ts) as the tests use it: on a free port, recording every
 * request. Each scenario of scripts/mock/mock_scenarios.ts lives under its own path prefix, so one
 * server serves them all: `upstream.baseUrl("ok")` is `http://127.0.0.1:PORT/ok/v1`, and a test
 * adds answers of its own with `upstream.route(name, handler)`.
 */
import { MockUpstream } from "../scripts/mock/mock.ts";
import { SAMPLE_PNG } from "../scripts/mock/mock_scenarios.ts";

export type { RecordedRequest } from "../scripts/mock/mock.ts";

export const TEST_KEY = "sk-test-9f8e7d6c5b4a3210";
/** The image every answer shape of the upstream carries: a 64x48 PNG. */
export const PNG_64 = SAMPLE_PNG;

export class FakeUpstream extends MockUpstream {
  constructor() {
    super({ port: 0, record: true });
  }
}

export function startFakeUpstream(): FakeUpstream {
  return new FakeUpstream();
}

/** A valid input for `scenario`, with the fields given overriding. */
export function inputFor(
  upstream: FakeUpstream,
  scenario: string,
  outputDir: string,
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    prompt: "an orange cat by the window",
    base_url: upstream.baseUrl(scenario),
    api_key: TEST_KEY,
    model: "gpt-image-2",
    size: "1024x1024",
    task_name: "cat",
    timeout_ms: 5000,
    output_dir: outputDir,
    ...overrides,
  };
}

/** The names of the files in a folder, hidden ones included. */
export async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}
