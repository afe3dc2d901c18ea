import { inFolder, isImageNameOf, isPartNameOf, removeIfUnlocked, safeFileStem } from "../mod.ts";

/** File-system time stamps come from a coarser clock than Date.now(). */
const CLOCK_SLACK_MS = 1000;

/** An image found for a job that was running when its run died. */
export interface AdoptedImage {
  path: string;
  bytes: number;
}

/**
 * What a job cut off by the death of its run left in `output_dir`. Its temporary files
 * (`.{task_name}.{8 hex}.img2-part`, as the pipeline names them: an image cut short, or a second
 * name of one already moved into place) are removed unless a live writer holds their lock: the
 * pipeline's own sweep waits a day for them, as it cannot know that their run died. Its image, if
 * it was named but not journaled, is returned to be adopted:
 * only complete images ever carry the final name `{task_name}-{YYYYMMDD-HHMMSS}[-N].{ext}`, as
 * the pipeline moves them there once written and synced, and only one made after `startedAt`
 * (epoch ms) is the job's. The newest one wins.
 */
export async function recoverCutJob(
  outputDir: string,
  taskName: string,
  startedAt: number,
): Promise<AdoptedImage | null> {
  const stem = safeFileStem(taskName);
  let best: (AdoptedImage & { mtime: number }) | null = null;
  try {
    for await (const entry of Deno.readDir(outputDir)) {
      if (!entry.isFile) continue;
      const path = inFolder(outputDir, entry.name);
      if (isPartNameOf(stem, entry.name)) {
        await removeIfUnlocked(path);
        continue;
      }
      if (!isImageNameOf(stem, entry.name)) continue;
      const info = await Deno.stat(path).catch(() => null);
      const mtime = info?.mtime?.getTime() ?? -Infinity;
      if (info === null || info.size === 0 || mtime < startedAt - CLOCK_SLACK_MS) continue;
      if (best === null || mtime > best.mtime) best = { path, bytes: info.size, mtime };
    }
  } catch {
    return null;
  }
  return best && { path: best.path, bytes: best.bytes };
}
