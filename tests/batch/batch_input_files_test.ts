import assert from "node:assert/strict";
import { cancelledRead, unlessStopped } from "../../lib/batch/input_files.ts";
import { withTempDir } from "../_helpers.ts";

const cancelled = () => cancelledRead("the test file");

Deno.test("unlessStopped gives an open up on a signal, and closes the file it yields later", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/f`, "x");
    const opening = Promise.withResolvers<Deno.FsFile>();
    const stop = new AbortController();
    const given = unlessStopped(opening.promise, stop.signal, cancelled);
    stop.abort();
    await assert.rejects(given, { message: "Cannot read the test file: cancelled" });
    const late = await Deno.open(`${dir}/f`);
    opening.resolve(late);
    await opening.promise;
    await Promise.resolve();
    await assert.rejects(late.stat(), Deno.errors.BadResource);
  });
});

Deno.test("unlessStopped keeps a file opened before the signal", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/f`, "x");
    const stop = new AbortController();
    using file = await unlessStopped(Deno.open(`${dir}/f`), stop.signal, cancelled);
    stop.abort();
    await Promise.resolve();
    assert.equal((await file.stat()).size, 1);
  });
});

Deno.test("unlessStopped rejects at once when the signal has already come", async () => {
  const stop = new AbortController();
  stop.abort();
  const never = new Promise<null>(() => {});
  await assert.rejects(unlessStopped(never, stop.signal, cancelled), /cancelled$/);
});

Deno.test("unlessStopped passes an open's own failure on", async () => {
  const stop = new AbortController();
  await assert.rejects(
    unlessStopped(Deno.open("/nonexistent/img2-test"), stop.signal, cancelled),
    Deno.errors.NotFound,
  );
});
