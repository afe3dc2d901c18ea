import assert from "node:assert/strict";
import { absolutePath, basename, dirname, inFolder } from "../../lib/shared/paths.ts";

Deno.test("absolutePath() resolves relative paths, '.' and '..' against the folder given", () => {
  assert.equal(absolutePath("out", "/home/ye"), "/home/ye/out");
  assert.equal(absolutePath("./a/../b/", "/w"), "/w/b");
  assert.equal(absolutePath("/tmp//x/./y/..", "/w"), "/tmp/x");
  assert.equal(absolutePath("../../..", "/a"), "/");
  assert.equal(absolutePath("图片/输出", "/w"), "/w/图片/输出");
});

Deno.test("inFolder() joins a folder and a name with one slash", () => {
  assert.equal(inFolder("/tmp/out", "a.png"), "/tmp/out/a.png");
  assert.equal(inFolder("/", "a.png"), "/a.png");
});

Deno.test("basename() and dirname() split a path at its last slash", () => {
  assert.equal(basename("/tmp/out/a.png"), "a.png");
  assert.equal(dirname("/tmp/out/a.png"), "/tmp/out");
  assert.equal(basename("/a.png"), "a.png");
  assert.equal(dirname("/a.png"), "/");
  assert.equal(basename("a.png"), "a.png");
  assert.equal(dirname("a.png"), ".");
  assert.equal(dirname("out/a.png"), "out");
});
