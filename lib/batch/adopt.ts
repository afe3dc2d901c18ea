import { inFolder, isImageNameOf, isPartNameOf, removeIfUnlocked, safeFileStem } from "../mod.ts";
import type { FileMarker } from "./journal.ts";

/** File-system time stamps come from a coarser clock than Date.now(). */
const CLOCK_SLACK_MS = 1000;

/** An image found for a job that was running when its run died. */
export interface AdoptedImage {
  path: string;
  bytes: number;
}

/**
 * What a job cut off by the death of its run left in `output_dir`, going by what the run's own
 * journal tied to it (`marker`: the temporary file made for its last request, noted before the
 * request was sent). That temporary file is removed unless a live writer holds its lock (an
 * image cut short, or a second name of one already moved into place): the pipeline's own sweep
 * waits a day, as it cannot know that its run died. The job's image, if it was named but not
 * journaled, is returned to be adopted: only complete images carry the final name
 * `{task_name}-{YYYYMMDD-HHMMSS}[-N].{ext}`, and the one that is the job's is the file the marker
 * names, moved there (same device and inode, made no later than the marker). An image of the same
 * name made by another run, or with no marker at all, is never taken.
 */
export async function recoverCutJob(
  outputDir: string,
  taskName: string,
  startedAt: number,
  marker: FileMarker | null,
): Promise<AdoptedImage | null> {
  if (marker === null || marker.ino === null) return null;
  const stem = safeFileStem(taskName);
  if (isPartNameOf(stem, marker.part)) await removeIfUnlocked(inFolder(outputDir, marker.part));
  try {
    for await (const entry of Deno.readDir(outputDir)) {
      if (!entry.isFile || !isImageNameOf(stem, entry.name)) continue;
      const path = inFolder(outputDir, entry.name);
      const info = await Deno.lstat(path).catch(() => null);
      if (info === null || !info.isFile || info.size === 0) continue;
      if (info.dev !== marker.dev || info.ino !== marker.ino) continue;
      // A number freed by a removed file may be given to a new one: the marker's file was made
      // before the marker was written, and written to after the job started.
      const born = info.birthtime?.getTime() ?? null;
      if (born !== null && born > marker.time + CLOCK_SLACK_MS) continue;
      if ((info.mtime?.getTime() ?? -Infinity) < startedAt - CLOCK_SLACK_MS) continue;
      return { path, bytes: info.size };
    }
  } catch { /* an output_dir gone or unreadable: nothing to adopt */ }
  return null;
}
