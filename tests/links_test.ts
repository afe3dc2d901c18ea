/** The README and the docs/ pages link only to files and headings that exist. */
import assert from "node:assert/strict";
import { dirname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** A heading's anchor, as GitHub makes it. */
function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, "").replaceAll(" ", "-");
}

function withoutCode(markdown: string): string {
  return markdown.replace(/^```[\s\S]*?^```/gm, "");
}

async function pages(): Promise<string[]> {
  const found = ["README.md"];
  for await (const entry of Deno.readDir(join(ROOT, "docs"))) {
    if (entry.name.endsWith(".md")) found.push(`docs/${entry.name}`);
  }
  return found.sort();
}

Deno.test("every relative link of README.md and docs/ names a file and a heading that exist", async () => {
  const broken: string[] = [];
  const anchors = new Map<string, Set<string>>();
  const anchorsOf = async (page: string) => {
    if (!anchors.has(page)) {
      const text = withoutCode(await Deno.readTextFile(join(ROOT, page)));
      anchors.set(page, new Set([...text.matchAll(/^#{1,6} (.*)$/gm)].map((m) => slug(m[1]!))));
    }
    return anchors.get(page)!;
  };
  for (const page of await pages()) {
    const text = withoutCode(await Deno.readTextFile(join(ROOT, page)));
    for (const [, link] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/i.test(link!)) continue;
      const [path, anchor] = link!.split("#", 2) as [string, string | undefined];
      const target = path === "" ? page : normalize(join(dirname(page), path));
      try {
        await Deno.stat(join(ROOT, target));
      } catch {
        broken.push(`${page}: ${link} (no such file)`);
        continue;
      }
      if (
        anchor !== undefined && target.endsWith(".md") && !(await anchorsOf(target)).has(anchor)
      ) {
        broken.push(`${page}: ${link} (no such heading)`);
      }
    }
  }
  assert.deepEqual(broken, []);
});

Deno.test("the README's first commands are tasks of deno.json", async () => {
  const readme = await Deno.readTextFile(join(ROOT, "README.md"));
  const tasks = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json"))).tasks;
  const tryIt = readme.slice(
    readme.indexOf("## Try it"),
    readme.indexOf("\n## ", readme.indexOf("## Try it") + 1),
  );
  const commands = [...tryIt.matchAll(/^deno task ([a-z]+)/gm)].map((m) => m[1]!);
  assert.deepEqual(commands, ["demo", "test"]);
  for (const command of commands) assert.ok(command in tasks, command);
});
