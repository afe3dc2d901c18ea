/**
 * What ties a saved image to its job, so that a resumed run believes a record only with its
 * image: the image's size and a fingerprint of its bytes, journaled when the job ends and checked
 * when the run resumes.
 */
import { basename, inFolder, isImageNameOf, safeFileStem } from "../mod.ts";
import { sha256Hex } from "./plan.ts";
import { openWithoutLinks } from "./run_files.ts";

/**
 * The fingerprint hashes the size and the first and last SAMPLE_BYTES of the image: enough to
 * tell one image from another (the compressed data differ from their first kilobytes on), while a
 * resume of many done jobs reads little of each.
 */
const SAMPLE_BYTES = 64 * 1024;

export interface ImageProof {
  bytes: number;
  fingerprint: string;
}

/** The proof of the regular file at `path` (never through a link), or null when there is none. */
export async function imageProof(path: string): Promise<ImageProof | null> {
  let file: Deno.FsFile | null;
  try {
    file = await openWithoutLinks(path, { read: true });
  } catch {
    return null;
  }
  if (file === null) return null;
  try {
    const { size } = await file.stat();
    const head = await readAt(file, 0, Math.min(size, SAMPLE_BYTES));
    const tailStart = Math.max(head.length, size - SAMPLE_BYTES);
    const tail = await readAt(file, tailStart, size - tailStart);
    const sample = new Uint8Array(8 + head.length + tail.length);
    new DataView(sample.buffer).setFloat64(0, size);
    sample.set(head, 8);
    sample.set(tail, 8 + head.length);
    return { bytes: size, fingerprint: await sha256Hex(sample) };
  } catch {
    return null;
  } finally {
    file.close();
  }
}

/**
 * Why the image recorded for a job cannot be believed, or null when it can: it must be a regular
 * file directly in the job's `outputDir`, named as that job's images are, and match the proof its
 * journal recorded.
 */
export async function disproof(
  path: string,
  outputDir: string,
  taskName: string,
  recorded: ImageProof | null,
): Promise<string | null> {
  const name = basename(path);
  if (path !== inFolder(outputDir, name) || !isImageNameOf(safeFileStem(taskName), name)) {
    return `The image "${path}" the journal names is not one of this job's`;
  }
  const found = await imageProof(path);
  if (found === null) return `The image "${path}" is gone`;
  if (recorded === null) return `The journal holds no proof of the image "${path}"`;
  if (found.bytes !== recorded.bytes || found.fingerprint !== recorded.fingerprint) {
    return `The image "${path}" is not the one the journal recorded`;
  }
  return null;
}

async function readAt(file: Deno.FsFile, offset: number, length: number): Promise<Uint8Array> {
  const bytes = new Uint8Array(length);
  await file.seek(offset, Deno.SeekMode.Start);
  let filled = 0;
  while (filled < length) {
    const read = await file.read(bytes.subarray(filled));
    if (read === null) break;
    filled += read;
  }
  return bytes.subarray(0, filled);
}
