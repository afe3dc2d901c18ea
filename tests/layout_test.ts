/**
 * The layout of lib/ stays true: its imports have no circle, each folder imports only from itself
 * and the folders below it, and lib/batch/ reaches the pipeline only through lib/mod.ts.
 */
import assert from "node:assert/strict";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";

const LIB = fileURLToPath(new URL("../lib/", import.meta.url));

/** The folders of lib/, lowest first: each may import only from itself and those before it. */
const LAYERS = ["shared", "failure", "params", "image", "upstream", "cli"] as const;
/** lib/ itself (generate.ts, result.ts, mod.ts) comes above every folder; batch/ beside it. */
const TOP = "";
const BATCH = "batch";
/** What lib/batch/ may import besides itself. */
const BATCH_MAY_IMPORT = ["mod.ts", "shared/"];

/** Module → the modules it imports, as paths relative to lib/. */
export type ImportGraph = Map<string, string[]>;

/** The relative specifiers of one module's imports and exports, type-only ones included. */
export function specifiersOf(source: string): string[] {
  const found: string[] = [];
  const patterns = [
    /^\s*(?:import|export)\b[^;]*?\bfrom\s*["']([^"']+)["']/gms,
    /^\s*import\s*["']([^"']+)["']/gm,
    /\bimport\(\s*["']([^"']+)["']\s*\)/g,
  ];
  for (const pattern of patterns) {
    for (const match of source.matchAll(pattern)) {
      if (match[1]!.startsWith(".")) found.push(match[1]!);
    }
  }
  return found;
}

/** The folder a module of lib/ belongs to: "" for lib/ itself. */
function folderOf(module: string): string {
  return module.includes("/") ? module.slice(0, module.indexOf("/")) : TOP;
}

/** Every way `graph` breaks the layout, in words; empty when it keeps it. */
export function layoutProblems(graph: ImportGraph): string[] {
  const problems: string[] = [];
  const rank = (folder: string) =>
    folder === TOP ? LAYERS.length : (LAYERS as readonly string[]).indexOf(folder);
  for (const [module, imports] of graph) {
    const from = folderOf(module);
    if (from !== BATCH && rank(from) < 0) {
      problems.push(`lib/${module}: lib/${from}/ is not a layer (add it to LAYERS)`);
      continue;
    }
    for (const target of imports) {
      const to = folderOf(target);
      if (target.startsWith("..")) {
        problems.push(`lib/${module} imports ${target}, outside lib/`);
      } else if (from === BATCH) {
        if (to !== BATCH && !BATCH_MAY_IMPORT.some((allowed) => target.startsWith(allowed))) {
          problems.push(`lib/${module} imports lib/${target}: lib/batch/ goes through lib/mod.ts`);
        }
      } else if (to === BATCH) {
        problems.push(`lib/${module} imports lib/${target}: nothing below lib/batch/ imports it`);
      } else if (rank(to) > rank(from)) {
        problems.push(`lib/${module} imports lib/${target}, from a folder above its own`);
      }
    }
  }
  // A circle: depth-first, a module met again while its own imports are still being followed.
  const state = new Map<string, "open" | "done">();
  const path: string[] = [];
  const visit = (module: string) => {
    state.set(module, "open");
    path.push(module);
    for (const target of graph.get(module) ?? []) {
      if (state.get(target) === "open") {
        const circle = [...path.slice(path.indexOf(target)), target];
        problems.push(`a circle: ${circle.map((m) => `lib/${m}`).join(" → ")}`);
      } else if (!state.has(target)) visit(target);
    }
    path.pop();
    state.set(module, "done");
  };
  for (const module of [...graph.keys()].sort()) if (!state.has(module)) visit(module);
  return problems;
}

/** The imports of every module in lib/. */
async function libGraph(): Promise<ImportGraph> {
  const graph: ImportGraph = new Map();
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(dir)) {
      const path = join(dir, entry.name);
      if (entry.isDirectory) await walk(path);
      else if (entry.name.endsWith(".ts")) {
        const module = relative(LIB, path);
        const specifiers = specifiersOf(await Deno.readTextFile(path));
        graph.set(
          module,
          specifiers.map((specifier) => normalize(join(dirname(module), specifier))),
        );
      }
    }
  };
  await walk(LIB);
  return graph;
}

Deno.test("lib/ keeps its layout: no circle, imports only downwards, batch through mod.ts", async () => {
  const graph = await libGraph();
  assert.ok(graph.size > 30 && graph.has("mod.ts"), `read ${graph.size} modules`);
  assert.deepEqual(layoutProblems(graph), []);
});

Deno.test("every folder of lib/ opens with a README saying what it holds and may import", async () => {
  for (const folder of [...LAYERS, BATCH]) {
    const text = await Deno.readTextFile(join(LIB, folder, "README.md"));
    assert.match(text, /^# lib\/[a-z]+\/\n/, folder);
    assert.match(text, /\nMay import: /, folder);
  }
});

Deno.test("layoutProblems() names a circle, an upward import and batch/ going around mod.ts", () => {
  const graph: ImportGraph = new Map([
    ["upstream/answer.ts", ["upstream/http_failure.ts", "shared/bytes.ts"]],
    ["upstream/http_failure.ts", ["upstream/retry.ts"]],
    ["upstream/retry.ts", ["result.ts"]],
    ["result.ts", ["upstream/answer.ts"]],
    ["shared/bytes.ts", ["params/params.ts"]],
    ["params/params.ts", []],
    ["batch/run.ts", ["mod.ts", "shared/bytes.ts", "upstream/retry.ts", "batch/state.ts"]],
    ["batch/state.ts", []],
    ["mod.ts", ["batch/state.ts"]],
  ]);
  assert.deepEqual(layoutProblems(graph).sort(), [
    "a circle: lib/upstream/retry.ts → lib/result.ts → lib/upstream/answer.ts → lib/upstream/http_failure.ts → lib/upstream/retry.ts",
    "lib/batch/run.ts imports lib/upstream/retry.ts: lib/batch/ goes through lib/mod.ts",
    "lib/mod.ts imports lib/batch/state.ts: nothing below lib/batch/ imports it",
    "lib/shared/bytes.ts imports lib/params/params.ts, from a folder above its own",
    "lib/upstream/retry.ts imports lib/result.ts, from a folder above its own",
  ]);
});

Deno.test("specifiersOf() reads multi-line, type-only, re-export and dynamic imports, not comments", () => {
  const source = [
    "/**",
    ' * import { generateImage } from "./lib/mod.ts";',
    " */",
    'import type { A } from "./a.ts";',
    "import {",
    "  b,",
    '} from "../b.ts";',
    'export { c } from "./c.ts";',
    'import "./d.ts";',
    'const e = await import("./e.ts");',
    'import { parseArgs } from "node:util";',
  ].join("\n");
  assert.deepEqual(specifiersOf(source), ["./a.ts", "../b.ts", "./c.ts", "./d.ts", "./e.ts"]);
});
