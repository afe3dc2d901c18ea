import { errorMessage, GenerationError } from "./errors.ts";
import { inFolder } from "./paths.ts";
import { SNIFF_BYTES } from "./image_type.ts";

/** File names stay under common file-system limits, counted in UTF-8 bytes. */
const MAX_TASK_NAME_BYTES = 180;
const MAX_NAME_ATTEMPTS = 1000;
/**
 * Writes smaller than this are gathered into one buffer of this size before they reach the
 * file: a download arrives in pieces of some 64 KiB, and each write to the file is a round trip
 * to a worker thread that costs more than copying the bytes.
 */
const GATHER_BYTES = 1 << 20;

/**
 * The image on its way to disk. It is written to a hidden temporary file in `output_dir` (opened
 * before any request, which proves the folder writable) and moved to its final name only once
 * complete, never over an existing file. Until then nothing shows under the final name, and
 * `discard()` leaves nothing behind.
 */
export class ImageFile {
  readonly dir: string;
  readonly #taskName: string;
  readonly #tempPath: string;
  #file: Deno.FsFile | null;
  #head = new Uint8Array(SNIFF_BYTES);
  #headLength = 0;
  #bytes = 0;
  #gathered: Uint8Array | null = null;
  #gatheredLength = 0;
  #finalPath: string | null = null;

  private constructor(dir: string, taskName: string, tempPath: string, file: Deno.FsFile) {
    this.dir = dir;
    this.#taskName = taskName;
    this.#tempPath = tempPath;
    this.#file = file;
  }

  static async create(dir: string, taskName: string): Promise<ImageFile> {
    try {
      await Deno.mkdir(dir, { recursive: true });
    } catch (error) {
      throw new GenerationError(
        "save",
        `Cannot create output_dir "${dir}": ${errorMessage(error)}`,
      );
    }
    const safeName = safeFileStem(taskName);
    const tempPath = inFolder(dir, `.${safeName}.${crypto.randomUUID().slice(0, 8)}.part`);
    try {
      const file = await Deno.open(tempPath, { createNew: true, write: true, read: true });
      return new ImageFile(dir, safeName, tempPath, file);
    } catch (error) {
      throw new GenerationError(
        "save",
        `Cannot write in output_dir "${dir}": ${errorMessage(error)}`,
      );
    }
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** The first bytes written, enough to tell the image type. */
  get head(): Uint8Array {
    return this.#head.subarray(0, this.#headLength);
  }

  readonly write = async (bytes: Uint8Array): Promise<void> => {
    const file = this.#open();
    if (this.#headLength < SNIFF_BYTES) {
      const take = Math.min(bytes.length, SNIFF_BYTES - this.#headLength);
      this.#head.set(bytes.subarray(0, take), this.#headLength);
      this.#headLength += take;
    }
    if (bytes.length >= GATHER_BYTES) {
      await this.#flush(file);
      await writeAll(file, bytes);
    } else {
      if (this.#gatheredLength + bytes.length > GATHER_BYTES) await this.#flush(file);
      this.#gathered ??= new Uint8Array(GATHER_BYTES);
      this.#gathered.set(bytes, this.#gatheredLength);
      this.#gatheredLength += bytes.length;
    }
    this.#bytes += bytes.length;
  };

  /** Writes the gathered bytes to the file. */
  async #flush(file: Deno.FsFile): Promise<void> {
    if (this.#gatheredLength === 0) return;
    const length = this.#gatheredLength;
    this.#gatheredLength = 0;
    await writeAll(file, this.#gathered!.subarray(0, length));
  }

  /** Empties the file for another attempt. */
  async reset(): Promise<void> {
    const file = this.#open();
    this.#gatheredLength = 0;
    await file.truncate(0);
    await file.seek(0, Deno.SeekMode.Start);
    this.#headLength = 0;
    this.#bytes = 0;
  }

  async readAll(): Promise<Uint8Array> {
    if (this.#file !== null) await this.#flush(this.#file);
    return await Deno.readFile(this.#finalPath ?? this.#tempPath);
  }

  /** Moves the finished image to `{task_name}-{YYYYMMDD-HHMMSS}[-N].{extension}` and returns that path. */
  async commit(extension: string, now = new Date()): Promise<string> {
    const file = this.#open();
    try {
      await this.#flush(file);
      await file.sync();
    } finally {
      file.close();
      this.#file = null;
    }
    const stem = `${this.#taskName}-${timestamp(now)}`;
    for (let n = 1; n <= MAX_NAME_ATTEMPTS; n++) {
      const candidate = inFolder(this.dir, `${stem}${n === 1 ? "" : `-${n}`}.${extension}`);
      try {
        if (await placeWithoutClobbering(this.#tempPath, candidate)) {
          this.#finalPath = candidate;
          return candidate;
        }
      } catch (error) {
        throw new GenerationError(
          "save",
          `Cannot save the image as "${candidate}": ${errorMessage(error)}`,
        );
      }
    }
    throw new GenerationError(
      "save",
      `Cannot find a free file name for "${stem}" in "${this.dir}"`,
    );
  }

  /** Removes the temporary file unless the image was committed. Never throws. */
  async discard(): Promise<void> {
    try {
      this.#file?.close();
    } catch { /* already closed */ }
    this.#file = null;
    this.#gathered = null;
    this.#gatheredLength = 0;
    if (this.#finalPath !== null) return;
    await Deno.remove(this.#tempPath).catch(() => {});
  }

  #open(): Deno.FsFile {
    if (this.#file === null) throw new GenerationError("save", "The image file is already closed");
    return this.#file;
  }
}

/**
 * A hard link fails when the name is taken, which makes "create unless it exists" atomic. Where
 * links are not supported, the name is reserved with an exclusive create and then replaced by a
 * rename (an empty file shows under the name for that moment, and is removed if the rename fails).
 */
async function placeWithoutClobbering(from: string, to: string): Promise<boolean> {
  try {
    await Deno.link(from, to);
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) return false;
    return await reserveAndRename(from, to);
  }
  // The image is in place; a temporary name left behind by a failed remove is only a second link.
  await Deno.remove(from).catch(() => {});
  return true;
}

async function reserveAndRename(from: string, to: string): Promise<boolean> {
  try {
    (await Deno.open(to, { createNew: true, write: true })).close();
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) return false;
    throw error;
  }
  try {
    await Deno.rename(from, to);
  } catch (error) {
    await Deno.remove(to).catch(() => {});
    throw error;
  }
  return true;
}

/**
 * A task name as a file-name stem: path separators, control and reserved characters become "_",
 * ".." and leading dots are neutralised, and the length is bounded. Other Unicode is kept.
 */
export function safeFileStem(taskName: string): string {
  let stem = taskName.trim()
    .replace(/[\p{Cc}\p{Cf}/\\:*?"<>|]/gu, "_")
    .replace(/\.{2,}/g, "_")
    .replace(/^\.+/, "_")
    .replace(/[. ]+$/, "");
  const encoder = new TextEncoder();
  while (encoder.encode(stem).length > MAX_TASK_NAME_BYTES) stem = [...stem].slice(0, -1).join("");
  return stem === "" ? "image" : stem;
}

/** Local time as YYYYMMDD-HHMMSS. */
export function timestamp(date: Date): string {
  const pad = (value: number) => String(value).padStart(2, "0");
  return `${date.getFullYear()}${pad(date.getMonth() + 1)}${pad(date.getDate())}-` +
    `${pad(date.getHours())}${pad(date.getMinutes())}${pad(date.getSeconds())}`;
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  try {
    while (offset < bytes.length) offset += await file.write(bytes.subarray(offset));
  } catch (error) {
    throw new GenerationError("save", `Cannot write the image: ${errorMessage(error)}`);
  }
}
