/** Partial images saved beside the final one (save_partials), when their folder misbehaves. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { generateImage } from "../lib/mod.ts";
import { inputFor, listDir, startFakeUpstream } from "./_fake_upstream.ts";
import { failure, success, withTempDir } from "./_helpers.ts";

/** The mock renders an image for each request to its own /v1, streamed with partial images. */
const SAVE_TWO = { stream: true, partial_images: 2, save_partials: true };

Deno.test("generateImage() saves the image when a partial image cannot be kept", async () => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const out = join(dir, "out");
    const aside = join(dir, "aside");
    // While the first partial image is copied, output_dir's path holds a regular file.
    const onProgress = (message: string) => {
      if (message === "partial image 1 received") {
        Deno.renameSync(out, aside);
        Deno.writeTextFileSync(out, "not a folder");
      } else if (message === "partial image 2 received") {
        Deno.removeSync(out);
        Deno.renameSync(aside, out);
      }
    };
    const result = success(
      await generateImage(
        inputFor(upstream, "rendered", out, { ...SAVE_TWO, base_url: upstream.url }),
        { onProgress },
      ),
    );
    assert.equal(result.partial_images_received, 2);
    const stem = result.image_path.slice(0, -".png".length);
    assert.deepEqual(result.partial_paths, [`${stem}.partial-1.png`]);
    assert.deepEqual(
      await listDir(out),
      [result.image_path, `${stem}.partial-1.png`].map(nameOf).sort(),
    );
  });
});

Deno.test({
  name: "generateImage() leaves no temporary file in output_dir moved away mid-stream",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    await using upstream = startFakeUpstream();
    await withTempDir(async (dir) => {
      const out = join(dir, "out");
      const moved = join(dir, "moved");
      const onProgress = (message: string) => {
        if (message === "partial image 1 received") Deno.renameSync(out, moved);
      };
      const result = failure(
        await generateImage(
          inputFor(upstream, "rendered", out, { ...SAVE_TWO, base_url: upstream.url }),
          { onProgress },
        ),
      );
      assert.equal(result.stage, "save");
      assert.deepEqual(await listDir(moved), []);
    });
  },
});

function nameOf(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}
