import { safeFileStem } from "../mod.ts";

/** File-system time stamps come from a coarser clock than Date.now(). */
const CLOCK_SLACK_MS = 1000;

/** An image found for a job that was running when its run died. */
export interface AdoptedImage {
  path: string;
  bytes: number;
}

/**
 * The image a job made after `startedAt` (epoch ms) if the run died between naming it and
 * journaling the job's end. Only complete images ever carry the final name
 * `{task_name}-{YYYYMMDD-HHMMSS}[-N].{ext}`: the pipeline moves them there once written and
 * synced. The newest one wins.
 */
export async function findAdoptable(
  outputDir: string,
  taskName: string,
  startedAt: number,
): Promise<AdoptedImage | null> {
  const stem = safeFileStem(taskName).replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const pattern = new RegExp(`^${stem}-\\d{8}-\\d{6}(?:-\\d+)?\\.(?:png|jpg|webp|gif)$`);
  let best: (AdoptedImage & { mtime: number }) | null = null;
  try {
    for await (const entry of Deno.readDir(outputDir)) {
      if (!entry.isFile || !pattern.test(entry.name)) continue;
      const path = `${outputDir.replace(/\/$/, "")}/${entry.name}`;
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
