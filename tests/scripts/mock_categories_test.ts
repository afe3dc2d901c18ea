import assert from "node:assert/strict";
import { generateImage } from "../../lib/mod.ts";
import { CATEGORIES } from "../../lib/failure/diagnosis.ts";
import { startMockUpstream } from "../../scripts/mock/mock.ts";
import {
  FAILURE_SCENARIO_NAMES,
  MOCK_SCENARIOS,
  scenarioModel,
} from "../../scripts/mock/mock_scenarios.ts";
import type { Category } from "../../lib/failure/types.ts";

/** Categories that only this side can cause: no upstream answer leads to them. */
const LOCAL_ONLY: Category[] = ["invalid_input", "save_failed", "cancelled", "internal_error"];

Deno.test("the mock upstream can rehearse every category an upstream can cause", () => {
  const rehearsed = new Set<Category | null>(
    FAILURE_SCENARIO_NAMES.map((name) => MOCK_SCENARIOS[name].expectedCategory),
  );
  const missing = CATEGORIES.map(({ category }) => category)
    .filter((category) => !LOCAL_ONLY.includes(category) && !rehearsed.has(category));
  assert.deepEqual(missing, []);
});

for (const name of FAILURE_SCENARIO_NAMES) {
  const scenario = MOCK_SCENARIOS[name];
  Deno.test(`generateImage() diagnoses the mock's ${name} scenario as ${scenario.expectedCategory}`, async () => {
    const mock = startMockUpstream({ port: 0, stallMs: 5000, cutMs: 100, log: () => {} });
    const dir = await Deno.makeTempDir({ prefix: "img2-mock-" });
    try {
      const result = await generateImage({
        prompt: "a lighthouse at dusk",
        base_url: mock.url,
        api_key: "sk-mock-rehearsal-0001",
        model: scenarioModel(name),
        size: "256x256",
        task_name: name,
        timeout_ms: 800,
        output_dir: dir,
      });
      assert.equal(result.ok, false);
      if (!result.ok) {
        assert.equal(result.diagnosis.category, scenario.expectedCategory, result.error);
      }
      assert.ok(!JSON.stringify(result).includes("sk-mock-rehearsal-0001"));
      assert.deepEqual([...Deno.readDirSync(dir)], []);
    } finally {
      await mock.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  });
}
