import { sniffImage } from "./image_type.ts";
import type { ImageFile } from "./output_file.ts";
import { basename } from "../shared/paths.ts";

interface KeptPartial {
  file: ImageFile;
  index: number;
  extension: string;
}

/**
 * The partial images of a stream that are to be saved (save_partials). Each is copied out of the
 * image file when its event ends, into a temporary file of its own, and named only once the
 * final image has its name, as `{that name}.partial-{i}.{ext}`: a call that fails leaves none.
 */
export class PartialImages {
  readonly #limit: number;
  #kept: KeptPartial[] = [];

  /** Keeps at most `limit` of them (the partial images asked for); 0 keeps none. */
  constructor(limit: number) {
    this.#limit = limit;
  }

  /**
   * `file` holds a partial image: a copy is kept when wanted, and the file is emptied. A partial
   * image is a courtesy: one that cannot be copied (a full disk, a folder gone) is left out,
   * never failing the generation.
   */
  async take(file: ImageFile, index: number): Promise<void> {
    if (file.bytes === 0) return;
    const info = sniffImage(file.head);
    if (info !== null && this.#kept.length < this.#limit) {
      const copy = await file.copy().catch(() => null);
      if (copy !== null) this.#kept.push({ file: copy, index, extension: info.extension });
    }
    await file.reset();
  }

  /** Names the kept images after the final image at `finalPath`; returns their paths. */
  async commitBeside(finalPath: string): Promise<string[]> {
    const name = basename(finalPath);
    const stem = name.slice(0, name.lastIndexOf("."));
    const paths: string[] = [];
    for (const partial of this.#kept) {
      try {
        paths.push(
          await partial.file.commitAs(`${stem}.partial-${partial.index}`, partial.extension),
        );
      } catch {
        // The final image is saved: a partial one that cannot be is left out, not a failure.
      }
    }
    return paths;
  }

  /** Takes the named ones back, with the final image whose success could not be reported. */
  async withdraw(): Promise<void> {
    for (const partial of this.#kept) await partial.file.withdraw();
  }

  /** Closes them all and removes the copies not named yet, as after a failed attempt. Never throws. */
  async discard(): Promise<void> {
    const kept = this.#kept;
    this.#kept = [];
    for (const partial of kept) await partial.file.discard();
  }
}
