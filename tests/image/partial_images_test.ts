/** Partial images saved beside the final one (save_partials), when their folder misbehaves. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { generateImage } from "../../lib/mod.ts";
import { inputFor, listDir, startFakeUpstream } from "../_fake_upstream.ts";
import { success, withTempDir } from "../_helpers.ts";

/** The mock renders an image for each request to its own /v1, streamed with partial images. */
const SAVE_TWO = { stream: true, partial_images: 2, save_partials: true };

Deno.test("generateImage() saves the image when a partial image cannot be kept", async () => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const out = join(dir, "out");
    const aside = join(dir, "aside");
    let held = "";
    // While the first partial image is copied, the image's temporary file is found neither by
    // its name nor in its folder, and output_dir's path holds a regular file: the copy fails.
    const onProgress = (message: string) => {
      if (message === "partial image 1 received") {
        Deno.renameSync(out, aside);
        Deno.writeTextFileSync(out, "not a folder");
        held = [...Deno.readDirSync(aside)][0]!.name;
        Deno.renameSync(join(aside, held), join(aside, "held"));
      } else if (message === "partial image 2 received") {
        Deno.renameSync(join(aside, "held"), join(aside, held));
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
  name:
    "generateImage() saves the images in output_dir moved away mid-stream, and no temporary file",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    await using upstream = startFakeUpstream();
    await withTempDir(async (dir) => {
      const out = join(dir, "out");
      const moved = join(dir, "moved");
      const onProgress = (message: string) => {
        if (message === "partial image 1 received") Deno.renameSync(out, moved);
      };
      const input = inputFor(upstream, "rendered", out, { ...SAVE_TWO, base_url: upstream.url });
      const result = success(await generateImage(input, { onProgress }));
      assert.ok(result.image_path.startsWith(`${moved}/`), result.image_path);
      const stem = result.image_path.slice(0, -".png".length);
      const partials = [`${stem}.partial-0.png`, `${stem}.partial-1.png`];
      assert.deepEqual(result.partial_paths, partials);
      assert.deepEqual(await listDir(moved), [result.image_path, ...partials].map(nameOf).sort());
      assert.deepEqual(await listDir(dir), ["moved"]);
    });
  },
});

function nameOf(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}
