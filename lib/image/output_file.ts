import { errorMessage, GenerationError } from "../failure/errors.ts";
import { basename, dirname, inFolder } from "../shared/paths.ts";
import { type ImageInfo, SNIFF_BYTES } from "./image_type.ts";
import { writeAll } from "../shared/bytes.ts";

/** File names stay under common file-system limits, counted in UTF-8 bytes. */
const MAX_TASK_NAME_BYTES = 180;
const MAX_NAME_ATTEMPTS = 1000;
/**
 * Writes smaller than this are gathered into one buffer before they reach the file: a download
 * arrives in pieces of some 64 KiB, and each write to the file is a round trip to a worker thread
 * that costs more than copying the bytes. The buffer starts small and grows each time it fills,
 * so that a small image (a batch holds many at once) costs little.
 */
const GATHER_BYTES = 1 << 20;
const FIRST_GATHER_BYTES = 64 << 10;
/** Temporary files are `.{stem}.{8 hex digits}.img2-part`, so that a sweep knows them for ours. */
const PART_SUFFIX = ".img2-part";
const PART_NAME = /^\..*\.[0-9a-f]{8}\.img2-part$/;
const PART_TAIL = /^\.[0-9a-f]{8}\.img2-part$/;
/** What follows `{stem}-` in the name commit() gives: `{YYYYMMDD-HHMMSS}[-N].{extension}`. */
const IMAGE_EXTENSIONS = ["png", "jpg", "webp", "gif"] as const satisfies ImageInfo["extension"][];
const IMAGE_TAIL = new RegExp(`^\\d{8}-\\d{6}(?:-\\d+)?\\.(?:${IMAGE_EXTENSIONS.join("|")})$`);
/**
 * A temporary file is swept only when it is older than this AND no process holds its lock. The
 * lock is what tells a live run (a stalled upstream may keep one waiting for as long as
 * timeout_ms, up to 24 days); the age covers the moment between creating a file and locking it,
 * and file systems where locks are not shared between processes.
 */
export const ABANDONED_AFTER_MS = 24 * 60 * 60 * 1000;
/**
 * A folder is swept at most this often by one process: listing it for every image would make a
 * batch of N images into one folder cost O(N²). What turns abandoned meanwhile is a day old.
 */
const SWEEP_EVERY_MS = 60_000;
/** When this process last swept each folder. */
const sweptAt = new Map<string, number>();
/**
 * A sweep looks at no more than this many of the temporary files it finds, picked at random so
 * that a folder full of them is cleared over several runs, each at a small cost.
 */
export const MAX_SWEPT_PER_RUN = 64;
/**
 * Nor does it list more than this many entries of the folder: a folder of a million files takes
 * seconds to list, and the call's end waits for its sweep.
 */
export const MAX_LISTED_PER_SWEEP = 1024;
/** Permission bits: writable by group or others; the sticky bit. */
const WRITABLE_BY_OTHERS = 0o022;
const STICKY = 0o1000;

/** A temporary file of the pipeline: its name in output_dir, and its device and inode. */
export interface TemporaryFile {
  name: string;
  dev: number;
  ino: number | null;
}

/**
 * The image on its way to disk. It is written to a hidden temporary file in `output_dir` (opened
 * before any request, which proves the folder writable) and moved to its final name only once
 * complete, never over an existing file. Until then nothing shows under the final name, and
 * `discard()` leaves nothing behind. The file stays open after the move, so that the bytes read
 * back are the bytes written, whatever is done to the name meanwhile.
 */
export class ImageFile {
  readonly dir: string;
  readonly #stem: string;
  readonly #tempPath: string;
  #file: Deno.FsFile | null;
  #head = new Uint8Array(SNIFF_BYTES);
  #headLength = 0;
  #bytes = 0;
  #gathered: Uint8Array | null = null;
  #gatheredLength = 0;
  #finalPath: string | null = null;
  /** The sweep of the folder, which runs beside the request and is awaited by discard(). */
  #sweep: Promise<void> | null = null;

  private constructor(dir: string, stem: string, tempPath: string, file: Deno.FsFile) {
    this.dir = dir;
    this.#stem = stem;
    this.#tempPath = tempPath;
    this.#file = file;
  }

  /**
   * Creates `dir` (mode 0700, with its parents) and the temporary file (mode 0600) in it, refuses
   * a folder that others could change, and starts sweeping temporary files abandoned there by
   * killed runs. The sweep goes on beside the request (it stops when `signal` fires, and after
   * MAX_SWEPT_PER_RUN files; at most once every {@link SWEEP_EVERY_MS} per folder) and never fails
   * the call.
   */
  static async create(dir: string, taskName: string, signal?: AbortSignal): Promise<ImageFile> {
    try {
      await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    } catch (error) {
      throw new GenerationError(
        "save",
        `Cannot create output_dir "${dir}": ${errorMessage(error)}`,
      );
    }
    const image = await ImageFile.#open(dir, safeFileStem(taskName));
    let self: number | null;
    try {
      // The new file's owner is this process's user, without asking for a permission to know it.
      self = (await image.#file!.stat()).uid;
      await refuseSharedFolder(dir, self);
    } catch (error) {
      await image.discard();
      throw error;
    }
    const now = Date.now();
    if (now - (sweptAt.get(dir) ?? -Infinity) >= SWEEP_EVERY_MS) {
      sweptAt.set(dir, now);
      image.#sweep = sweepAbandonedParts(dir, basename(image.#tempPath), self, signal, now);
    }
    return image;
  }

  /** A new locked temporary file in `dir`, which must exist. */
  static async #open(dir: string, stem: string): Promise<ImageFile> {
    const tempPath = inFolder(dir, `.${stem}.${crypto.randomUUID().slice(0, 8)}${PART_SUFFIX}`);
    let file: Deno.FsFile;
    try {
      file = await Deno.open(tempPath, { createNew: true, write: true, read: true, mode: 0o600 });
    } catch (error) {
      throw new GenerationError(
        "save",
        `Cannot write in output_dir "${dir}": ${errorMessage(error)}`,
      );
    }
    // Held until the file is closed: it tells a sweep by another run that this one is alive.
    await file.lock(true).catch(() => {/* not supported here: the sweep's age still holds */});
    return new ImageFile(dir, stem, tempPath, file);
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** The temporary file's name and identity, which the image keeps once moved into place. */
  async identity(): Promise<TemporaryFile> {
    const { dev, ino } = await this.#opened().stat();
    return { name: basename(this.#tempPath), dev, ino };
  }

  /** The first bytes written, enough to tell the image type. */
  get head(): Uint8Array {
    return this.#head.subarray(0, this.#headLength);
  }

  readonly write = async (bytes: Uint8Array): Promise<void> => {
    const file = this.#writable();
    if (this.#headLength < SNIFF_BYTES) {
      const take = Math.min(bytes.length, SNIFF_BYTES - this.#headLength);
      this.#head.set(bytes.subarray(0, take), this.#headLength);
      this.#headLength += take;
    }
    if (bytes.length >= GATHER_BYTES) {
      await this.#flush(file);
      await writeToImage(file, bytes);
    } else {
      let gathered = this.#gathered ??= new Uint8Array(FIRST_GATHER_BYTES);
      if (this.#gatheredLength + bytes.length > gathered.length) {
        await this.#flush(file);
        // Full: the image is larger than the buffer, which grows for what follows.
        let size = Math.min(gathered.length * 4, GATHER_BYTES);
        while (size < bytes.length) size = Math.min(size * 4, GATHER_BYTES);
        if (size !== gathered.length) gathered = this.#gathered = new Uint8Array(size);
      }
      gathered.set(bytes, this.#gatheredLength);
      this.#gatheredLength += bytes.length;
    }
    this.#bytes += bytes.length;
  };

  /** Writes the gathered bytes to the file. */
  async #flush(file: Deno.FsFile): Promise<void> {
    if (this.#gatheredLength === 0) return;
    const length = this.#gatheredLength;
    this.#gatheredLength = 0;
    await writeToImage(file, this.#gathered!.subarray(0, length));
  }

  /** Empties the file for another attempt. */
  async reset(): Promise<void> {
    const file = this.#writable();
    this.#gatheredLength = 0;
    await file.truncate(0);
    await file.seek(0, Deno.SeekMode.Start);
    this.#headLength = 0;
    this.#bytes = 0;
  }

  /**
   * The image read back through the file written, never by its name: `size` bytes at a time
   * (the last piece may be shorter), each piece a view of one buffer that the next one reuses.
   */
  async *pieces(size: number): AsyncGenerator<Uint8Array> {
    const file = this.#opened();
    await this.#flush(file);
    await file.seek(0, Deno.SeekMode.Start);
    const buffer = new Uint8Array(size);
    while (true) {
      let filled = 0;
      while (filled < size) {
        const read = await file.read(buffer.subarray(filled));
        if (read === null) break;
        filled += read;
      }
      if (filled > 0) yield buffer.subarray(0, filled);
      if (filled < size) return;
    }
  }

  /** Moves the finished image to `{task_name}-{YYYYMMDD-HHMMSS}[-N].{extension}` and returns that path. */
  async commit(extension: string, now = new Date()): Promise<string> {
    return await this.commitAs(`${this.#stem}-${timestamp(now)}`, extension);
  }

  /**
   * Moves the finished file to `{stem}[-N].{extension}` in its folder and returns that path: the
   * folder it is in now, should output_dir have been moved meanwhile, so that the image paid for
   * is kept.
   */
  async commitAs(stem: string, extension: string): Promise<string> {
    const file = this.#writable();
    try {
      await this.#flush(file);
      await file.sync();
    } catch (error) {
      if (error instanceof GenerationError) throw error;
      throw new GenerationError("save", `Cannot write the image: ${errorMessage(error)}`);
    }
    const from = await pathNow(file, this.#tempPath);
    if (from === null) {
      throw new GenerationError(
        "save",
        `Cannot save the image: its temporary file "${this.#tempPath}" was moved or removed during the call`,
      );
    }
    const folder = dirname(from);
    for (let n = 1; n <= MAX_NAME_ATTEMPTS; n++) {
      const candidate = inFolder(folder, `${stem}${n === 1 ? "" : `-${n}`}.${extension}`);
      try {
        if (await placeWithoutClobbering(from, candidate)) {
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
      `Cannot find a free file name for "${stem}" in "${folder}"`,
    );
  }

  /**
   * A new temporary file in the same folder (where this one is now), holding the same bytes (a
   * partial image kept aside), read through this file rather than its name. It does not sweep the
   * folder again.
   */
  async copy(): Promise<ImageFile> {
    const here = await pathNow(this.#writable(), this.#tempPath);
    const copy = await ImageFile.#open(here === null ? this.dir : dirname(here), this.#stem);
    try {
      const copied = copy.#writable();
      for await (const piece of this.pieces(Math.min(Math.max(this.#bytes, 1), GATHER_BYTES))) {
        await writeAll(copied, piece);
      }
    } catch (error) {
      await copy.discard();
      throw new GenerationError("save", `Cannot copy the image: ${errorMessage(error)}`);
    }
    copy.#head.set(this.head);
    copy.#headLength = this.#headLength;
    copy.#bytes = this.#bytes;
    return copy;
  }

  /**
   * Takes a committed image back: removes its name, if the name still holds this file (a name
   * changed by someone else is theirs). Never throws.
   */
  async withdraw(): Promise<void> {
    const path = this.#finalPath;
    if (path === null || this.#file === null) return;
    try {
      const [mine, named] = await Promise.all([this.#file.stat(), Deno.lstat(path)]);
      if (mine.dev === named.dev && mine.ino === named.ino) await Deno.remove(path);
    } catch { /* gone already */ }
  }

  /**
   * Closes the file, and removes the temporary file unless the image was committed: under its
   * name, or wherever the file is now when its folder was moved meanwhile (found through the open
   * file, where the system tells it). Waits for the sweep. Never throws.
   */
  async discard(): Promise<void> {
    const file = this.#file;
    this.#file = null;
    this.#gathered = null;
    this.#gatheredLength = 0;
    if (file !== null) {
      if (this.#finalPath === null) {
        const path = await pathNow(file, this.#tempPath);
        if (path !== null) await Deno.remove(path).catch(() => {});
      }
      try {
        file.close();
      } catch { /* already closed */ }
    }
    const sweep = this.#sweep;
    this.#sweep = null;
    await sweep;
  }

  /** The open file, before or after commit. */
  #opened(): Deno.FsFile {
    if (this.#file === null) throw new GenerationError("save", "The image file is already closed");
    return this.#file;
  }

  /** The open file, while it may still be written. */
  #writable(): Deno.FsFile {
    if (this.#finalPath !== null) {
      throw new GenerationError("save", "The image file is already committed");
    }
    return this.#opened();
  }
}

/**
 * Refuses a folder where another user could replace the image or its name: one writable by group
 * or others without the sticky bit, or one owned by another user than this one or root (its owner
 * may rename anything in it, sticky bit or not).
 */
export async function refuseSharedFolder(dir: string, self: number | null): Promise<void> {
  const info = await Deno.stat(dir);
  if (self !== null && info.uid !== null && info.uid !== self && info.uid !== 0) {
    throw new GenerationError(
      "save",
      `Refusing output_dir "${dir}": it belongs to another user (uid ${info.uid}), who could replace the image; use a folder of your own`,
    );
  }
  if (info.mode !== null && (info.mode & WRITABLE_BY_OTHERS) !== 0 && (info.mode & STICKY) === 0) {
    const mode = (info.mode & 0o7777).toString(8).padStart(4, "0");
    throw new GenerationError(
      "save",
      `Refusing output_dir "${dir}": others may write in it (mode ${mode}) without the sticky bit, so they could replace the image; run chmod go-w on it or use another folder`,
    );
  }
}

/**
 * Where the open temporary file `file`, created as `tempPath`, is now: `tempPath` while that name
 * holds it; else, its folder having been moved, the path the system gives for the open file (on
 * Linux), if that path holds it; else null. Never throws.
 */
async function pathNow(file: Deno.FsFile, tempPath: string): Promise<string | null> {
  try {
    const mine = await file.stat();
    const holdsMine = async (path: string) => {
      const named = await Deno.lstat(path).catch(() => null);
      return named !== null && named.dev === mine.dev && named.ino === mine.ino;
    };
    if (await holdsMine(tempPath)) return tempPath;
    for (const path of await openedPathsNamed(basename(tempPath))) {
      if (await holdsMine(path)) return path;
    }
  } catch { /* closed */ }
  return null;
}

/**
 * The current paths of this process's open files named `name`, from /proc/self/fd (where a file
 * keeps its path as its folders are renamed); none where that does not exist.
 */
async function openedPathsNamed(name: string): Promise<string[]> {
  const paths: string[] = [];
  try {
    for await (const entry of Deno.readDir("/proc/self/fd")) {
      const path = await Deno.readLink(`/proc/self/fd/${entry.name}`).catch(() => "");
      if (basename(path) === name) paths.push(path);
    }
  } catch { /* not Linux */ }
  return paths;
}

/**
 * Removes temporary files that killed runs left in `dir` (`own` is this run's): regular files of this user, named like
 * ours, older than ABANDONED_AFTER_MS, whose lock no live run holds; at most MAX_SWEPT_PER_RUN
 * of them, a random sample of those found (so that one run costs little in a folder holding
 * thousands, and the next runs see others), stopping when `signal` fires. Symbolic links are
 * never followed (lstat, and a file only this user or root could have put there). Never throws.
 */
async function sweepAbandonedParts(
  dir: string,
  own: string,
  self: number | null,
  signal?: AbortSignal,
  now: number = Date.now(),
): Promise<void> {
  try {
    const sample: string[] = [];
    let seen = 0;
    let listed = 0;
    for await (const entry of Deno.readDir(dir)) {
      if (signal?.aborted || ++listed > MAX_LISTED_PER_SWEEP) break;
      if (entry.isSymlink || entry.isDirectory || !PART_NAME.test(entry.name)) continue;
      if (entry.name === own) continue;
      // Reservoir sampling: each name found has the same chance to be in the sample.
      const slot = seen < MAX_SWEPT_PER_RUN ? seen : Math.floor(Math.random() * (seen + 1));
      if (slot < MAX_SWEPT_PER_RUN) sample[slot] = entry.name;
      seen++;
    }
    for (const name of sample) {
      if (signal?.aborted) return;
      await removeIfAbandoned(inFolder(dir, name), self, now);
    }
  } catch { /* a sweep is a courtesy: it never fails the run */ }
}

async function removeIfAbandoned(path: string, self: number | null, now: number): Promise<void> {
  try {
    const info = await Deno.lstat(path);
    if (!info.isFile || info.uid !== self || info.mtime === null) return;
    if (now - info.mtime.getTime() < ABANDONED_AFTER_MS) return;
  } catch {
    return;
  }
  // Its age tells it abandoned where locks are not supported.
  await removeIfUnlocked(path, { withoutLocks: true });
}

/**
 * Removes the temporary file at `path` unless a live run holds its lock. Where locks are not
 * supported, nothing tells whether one does: it is kept unless `withoutLocks` says to remove it.
 * Never throws.
 */
export async function removeIfUnlocked(
  path: string,
  { withoutLocks = false }: { withoutLocks?: boolean } = {},
): Promise<void> {
  try {
    using file = await Deno.open(path, { read: true });
    const unlocked = await file.tryLock(true).catch(() => withoutLocks);
    if (unlocked) await Deno.remove(path);
  } catch { /* gone, or not ours to remove */ }
}

/** Whether `name` is one commit() gives an image of file stem `stem` (see safeFileStem()). */
export function isImageNameOf(stem: string, name: string): boolean {
  return name.startsWith(`${stem}-`) && IMAGE_TAIL.test(name.slice(stem.length + 1));
}

/** Whether `name` is one of the temporary files made for an image of file stem `stem`. */
export function isPartNameOf(stem: string, name: string): boolean {
  return name.startsWith(`.${stem}`) && PART_TAIL.test(name.slice(stem.length + 1));
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
 * A task name as a file-name stem: lone surrogates become U+FFFD (so the name printed is the
 * name on disk), path separators, control and reserved characters become "_", ".." and leading
 * dots are neutralised, and the length is bounded. Other Unicode is kept. Linear in the length.
 */
export function safeFileStem(taskName: string): string {
  const replaced = taskName.toWellFormed().trim()
    .replace(/[\p{Cc}\p{Cf}/\\:*?"<>|]/gu, "_")
    .replace(/\.{2,}/g, "_")
    .replace(/^\.+/, "_");
  const stem = withoutTrailingDotsAndSpaces(utf8Prefix(replaced, MAX_TASK_NAME_BYTES));
  return stem === "" ? "image" : stem;
}

/** The longest prefix of whole characters that fits in `maxBytes` of UTF-8. */
function utf8Prefix(text: string, maxBytes: number): string {
  let bytes = 0;
  let end = 0;
  for (const char of text) {
    const code = char.codePointAt(0)!;
    bytes += code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
    if (bytes > maxBytes) break;
    end += char.length;
  }
  return text.slice(0, end);
}

/** A regular expression anchored at the end would retry from every dot and space: quadratic. */
function withoutTrailingDotsAndSpaces(text: string): string {
  let end = text.length;
  while (end > 0 && (text[end - 1] === "." || text[end - 1] === " ")) end--;
  return text.slice(0, end);
}

/** Local time as YYYYMMDD-HHMMSS. */
export function timestamp(date: Date): string {
  const pad = (value: number) => String(value).padStart(2, "0");
  return `${date.getFullYear()}${pad(date.getMonth() + 1)}${pad(date.getDate())}-` +
    `${pad(date.getHours())}${pad(date.getMinutes())}${pad(date.getSeconds())}`;
}

async function writeToImage(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  try {
    await writeAll(file, bytes);
  } catch (error) {
    throw new GenerationError("save", `Cannot write the image: ${errorMessage(error)}`);
  }
}
