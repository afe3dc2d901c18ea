/**
 * The files of a run dir, kept to their owner: the folders are checked before anything in them
 * is read or written, and every file is opened without following a link, so that another user of
 * the machine can neither steer a run (a planted journal) nor make it write through a link.
 */
import { errorMessage, GenerationError, InputError, refuseSharedFolder } from "../mod.ts";

/** Permission bits: writable by group or others. */
const WRITABLE_BY_OTHERS = 0o022;

/**
 * This process's user, without asking for a permission to know it (Deno.uid() needs one, and
 * /proc/self all of them): the owner of a temporary file made for the purpose and removed at
 * once; null where none can be made (the owner checks are then left out).
 */
export async function selfUid(): Promise<number | null> {
  try {
    const probe = await Deno.makeTempFile({ prefix: ".img2-batch-uid-" });
    try {
      return (await Deno.lstat(probe)).uid;
    } finally {
      await Deno.remove(probe).catch(() => {});
    }
  } catch {
    return null;
  }
}

/**
 * Refuses, as an input error, a folder of the run (`label` names it) that is a link, not a
 * folder, owned by another user, or writable by group or others (a sticky bit does not help: the
 * run's files are its own). A folder that does not exist yet passes: it is created 0700.
 */
export async function refuseForeignFolder(
  path: string,
  label: string,
  self: number | null,
  { followLink = false }: { followLink?: boolean } = {},
): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = followLink ? await Deno.stat(path) : await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw new InputError(
      `Cannot check ${label === "output_dir" ? label : `the ${label}`} "${path}": ${
        errorMessage(error)
      }`,
    );
  }
  if (info.isSymlink) {
    throw new InputError(`Refusing the ${label} "${path}": it is a link; give a real folder`);
  }
  if (!info.isDirectory) {
    throw new InputError(`Refusing the ${label} "${path}": it is not a folder`);
  }
  if (self !== null && info.uid !== null && info.uid !== self) {
    throw new InputError(
      `Refusing the ${label} "${path}": it belongs to another user (uid ${info.uid}), who could change the run; use a folder of your own`,
    );
  }
  if (info.mode !== null && (info.mode & WRITABLE_BY_OTHERS) !== 0) {
    const mode = (info.mode & 0o7777).toString(8).padStart(4, "0");
    throw new InputError(
      `Refusing the ${label} "${path}": others may write in it (mode ${mode}); run chmod go-w on it or use another folder`,
    );
  }
}

/** Refuses a link at `path` that another user made: they could point it elsewhere at any time. */
export async function refuseLinkOfAnother(path: string, self: number | null): Promise<void> {
  const info = await Deno.lstat(path).catch(() => null);
  if (info === null || !info.isSymlink || self === null || info.uid === null) return;
  if (info.uid !== self && info.uid !== 0) {
    throw new InputError(
      `Refusing the run dir "${path}": it is a link of another user (uid ${info.uid}), who could point it elsewhere; use a folder of your own`,
    );
  }
}

/**
 * Refuses an --events file that another user owns (they would read every event), as an input
 * error; `file` is closed then.
 */
export async function refuseEventsOfAnother(
  file: Deno.FsFile,
  path: string,
  self: number | null,
): Promise<void> {
  const { uid } = await file.stat();
  if (self === null || uid === null || uid === self) return;
  file.close();
  throw new InputError(
    `Refusing the --events file "${path}": it belongs to another user (uid ${uid}), who would read every event; use a file of your own`,
  );
}

/** refuseSharedFolder() of the pipeline (as img2-generate refuses an output_dir), as an input error. */
export async function refuseSharedOutputDir(
  path: string,
  self: number | null,
  label = "output_dir",
): Promise<void> {
  try {
    await refuseSharedFolder(path, self);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    if (error instanceof GenerationError) {
      throw new InputError(
        label === "output_dir"
          ? error.message
          : error.message.replace(/^Refusing output_dir /, `Refusing the ${label} `),
      );
    }
    throw new InputError(
      `Cannot check ${label === "output_dir" ? label : `the ${label}`} "${path}": ${
        errorMessage(error)
      }`,
    );
  }
}

/**
 * Opens the file at `path` without following a link: a link, or anything but a regular file, is
 * refused, and the file opened must be the one looked at (a name swapped in between is refused).
 * `create` makes it (mode 0600) when it does not exist; `special` lets a FIFO or a device be
 * opened too. A FIFO opened to append is opened for reading as well, which never waits for a
 * reader to come (opening it only to write would, for ever if none does); its writes then wait
 * only once its buffer is full. Returns null for a file that does not exist when `create` is not
 * asked.
 */
export async function openWithoutLinks(
  path: string,
  options: { read?: boolean; append?: boolean; create?: boolean; special?: boolean },
): Promise<Deno.FsFile | null> {
  const { create = false, special = false, ...mode } = options;
  if (create) {
    try {
      return await Deno.open(path, { ...mode, write: mode.append, createNew: true, mode: 0o600 });
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    }
  }
  let before: Deno.FileInfo;
  try {
    before = await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound && !create) return null;
    throw error;
  }
  if (before.isSymlink || before.isDirectory || (!before.isFile && !special)) {
    const kind = before.isSymlink ? "a link" : before.isDirectory ? "a directory" : "not a file";
    throw new Error(`"${path}" is ${kind}`);
  }
  const file = await Deno.open(path, before.isFifo && mode.append ? { ...mode, read: true } : mode);
  try {
    const opened = await file.stat();
    if (opened.dev !== before.dev || opened.ino !== before.ino) {
      throw new Error(`"${path}" was replaced while it was opened`);
    }
  } catch (error) {
    file.close();
    throw error;
  }
  return file;
}
