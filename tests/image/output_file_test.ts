import assert from "node:assert/strict";
import { join } from "node:path";
import { GenerationError } from "../../lib/failure/errors.ts";
import {
  ABANDONED_AFTER_MS,
  ImageFile,
  isImageNameOf,
  isPartNameOf,
  MAX_LISTED_PER_SWEEP,
  MAX_SWEPT_PER_RUN,
  removeIfUnlocked,
  safeFileStem,
  timestamp,
} from "../../lib/image/output_file.ts";
import { generateImage } from "../../lib/mod.ts";
import { inputFor, startFakeUpstream } from "../_fake_upstream.ts";
import { concat, failure, withTempDir } from "../_helpers.ts";

const encoder = new TextEncoder();
/** 2025-03-04 05:06:07 local time. */
const NOW = new Date(2025, 2, 4, 5, 6, 7);
const PNG_HEAD = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]);

async function namesIn(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

/** The GenerationError that `promise` must reject with. */
async function failureOf(promise: Promise<unknown>): Promise<GenerationError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof GenerationError, `expected a GenerationError, got ${error}`);
    return error;
  }
  assert.fail("expected a failure");
}

const utf8Bytes = (text: string) => encoder.encode(text).length;

/** The pieces copied as they come: each is a view of a buffer that the next one reuses. */
async function readBack(file: ImageFile, size: number): Promise<Uint8Array> {
  const pieces: Uint8Array[] = [];
  for await (const piece of file.pieces(size)) pieces.push(piece.slice());
  return concat(pieces);
}

Deno.test("safeFileStem() keeps Chinese and other Unicode", () => {
  assert.equal(safeFileStem("橘猫-海报"), "橘猫-海报");
  assert.equal(safeFileStem("café poster №5"), "café poster №5");
  assert.equal(safeFileStem("猫🐱"), "猫🐱");
});

Deno.test("safeFileStem() trims surrounding spaces", () => {
  assert.equal(safeFileStem("  cat  "), "cat");
});

Deno.test("safeFileStem() turns path separators into underscores", () => {
  assert.equal(safeFileStem("a/b\\c"), "a_b_c");
  assert.equal(safeFileStem("/etc/passwd"), "_etc_passwd");
});

Deno.test("safeFileStem() turns reserved characters into underscores", () => {
  assert.equal(safeFileStem('a:b*c?d"e<f>g|h'), "a_b_c_d_e_f_g_h");
});

Deno.test("safeFileStem() turns control and format characters into underscores", () => {
  assert.equal(safeFileStem("a\nb\tc\u0000d\u007fe"), "a_b_c_d_e");
  assert.equal(safeFileStem("evil\u202egnp.exe"), "evil_gnp.exe");
  assert.equal(safeFileStem("zero\u200bwidth"), "zero_width");
});

Deno.test("safeFileStem() neutralises ..", () => {
  assert.equal(safeFileStem(".."), "_");
  assert.equal(safeFileStem("../../etc/passwd"), "____etc_passwd");
  assert.equal(safeFileStem("a..b"), "a_b");
  assert.equal(safeFileStem("a...b"), "a_b");
});

Deno.test("safeFileStem() replaces leading dots so the file is not hidden", () => {
  assert.equal(safeFileStem(".hidden"), "_hidden");
  assert.equal(safeFileStem("."), "_");
  assert.equal(safeFileStem(". x"), "_ x");
});

Deno.test("safeFileStem() drops trailing dots and spaces", () => {
  assert.equal(safeFileStem("name."), "name");
  assert.equal(safeFileStem("name. ."), "name");
  assert.equal(safeFileStem("v1.2"), "v1.2");
});

Deno.test("safeFileStem() falls back to image when nothing is left", () => {
  assert.equal(safeFileStem(""), "image");
  assert.equal(safeFileStem("   "), "image");
});

Deno.test("safeFileStem() never yields a name that leaves the folder", () => {
  const names = ["..", "../x", "..\\x", "a/../b", "/", "//", ".", "./x", "\u0000", "x/.."];
  for (const name of names) {
    const stem = safeFileStem(name);
    assert.ok(!stem.includes("/") && !stem.includes("\\"), `${name} gave ${stem}`);
    assert.ok(!stem.includes("..") && !stem.startsWith("."), `${name} gave ${stem}`);
    assert.ok(stem.length > 0);
  }
});

Deno.test("safeFileStem() bounds an ASCII name to 180 bytes", () => {
  assert.equal(safeFileStem("a".repeat(180)), "a".repeat(180));
  assert.equal(safeFileStem("a".repeat(500)), "a".repeat(180));
});

Deno.test("safeFileStem() bounds a Chinese name to 180 UTF-8 bytes without cutting a character", () => {
  const stem = safeFileStem("猫".repeat(100));
  assert.equal(stem, "猫".repeat(60));
  assert.equal(utf8Bytes(stem), 180);
  const mixed = safeFileStem("a" + "猫".repeat(100));
  assert.equal(mixed, "a" + "猫".repeat(59));
  assert.equal(utf8Bytes(mixed), 178);
});

Deno.test("safeFileStem() bounds an emoji name without splitting a surrogate pair", () => {
  const stem = safeFileStem("🐱".repeat(100));
  assert.equal(stem, "🐱".repeat(45));
  assert.equal(stem.isWellFormed(), true);
});

Deno.test("safeFileStem() makes a name with lone surrogates well-formed", () => {
  assert.equal(safeFileStem("\ud800cat\udfff"), "\ufffdcat\ufffd");
  assert.equal(safeFileStem("猫".repeat(59) + "\ud83d"), "猫".repeat(59) + "\ufffd");
});

Deno.test("safeFileStem() drops a trailing dot or space left by the length bound", () => {
  assert.equal(safeFileStem("a".repeat(179) + ". b"), "a".repeat(179));
  assert.equal(safeFileStem("a".repeat(178) + " .b"), "a".repeat(178));
});

Deno.test("safeFileStem() names 50 000 characters of dots, spaces and Chinese as expected", () => {
  // Cut to "a . . … . ", whose trailing dots and spaces all go.
  assert.equal(safeFileStem("a" + " .".repeat(25000) + "b"), "a");
  assert.equal(safeFileStem("ab" + " .".repeat(25000) + "b"), "ab");
  assert.equal(safeFileStem("猫".repeat(50000)), "猫".repeat(60));
  assert.equal(safeFileStem(" x".repeat(25000)), "x" + " x".repeat(89));
});

Deno.test("timestamp() writes local time as YYYYMMDD-HHMMSS", () => {
  assert.equal(timestamp(NOW), "20250304-050607");
  assert.equal(timestamp(new Date(1999, 11, 31, 23, 59, 59, 999)), "19991231-235959");
  assert.equal(timestamp(new Date(2024, 0, 1, 0, 0, 0)), "20240101-000000");
});

Deno.test("ImageFile.commit() names the file {stem}-{YYYYMMDD-HHMMSS}.{ext}", async () => {
  await withTempDir(async (dir) => {
    const file = await ImageFile.create(dir, "橘猫 海报");
    await file.write(PNG_HEAD);
    const path = await file.commit("png", NOW);
    assert.equal(path, join(dir, "橘猫 海报-20250304-050607.png"));
    assert.deepEqual(await Deno.readFile(path), PNG_HEAD);
    assert.deepEqual(await namesIn(dir), ["橘猫 海报-20250304-050607.png"]);
    await file.discard();
    assert.deepEqual(await namesIn(dir), ["橘猫 海报-20250304-050607.png"]);
  });
});

Deno.test("ImageFile.commit() uses the safe stem of the task name", async () => {
  await withTempDir(async (dir) => {
    const file = await ImageFile.create(dir, "../../escape");
    await file.write(PNG_HEAD);
    assert.equal(await file.commit("jpg", NOW), join(dir, "____escape-20250304-050607.jpg"));
    await file.discard();
  });
});

Deno.test("ImageFile.commit() adds -2 for a second image in the same second", async () => {
  await withTempDir(async (dir) => {
    const first = await ImageFile.create(dir, "cat");
    const second = await ImageFile.create(dir, "cat");
    const third = await ImageFile.create(dir, "cat");
    try {
      await first.write(new Uint8Array([1]));
      await second.write(new Uint8Array([2]));
      await third.write(new Uint8Array([3]));
      assert.equal(await first.commit("png", NOW), join(dir, "cat-20250304-050607.png"));
      assert.equal(await second.commit("png", NOW), join(dir, "cat-20250304-050607-2.png"));
      assert.equal(await third.commit("png", NOW), join(dir, "cat-20250304-050607-3.png"));
      assert.deepEqual(await Deno.readFile(join(dir, "cat-20250304-050607.png")), Uint8Array.of(1));
      assert.deepEqual(
        await Deno.readFile(join(dir, "cat-20250304-050607-2.png")),
        Uint8Array.of(2),
      );
      assert.deepEqual(await namesIn(dir), [
        "cat-20250304-050607-2.png",
        "cat-20250304-050607-3.png",
        "cat-20250304-050607.png",
      ]);
    } finally {
      await first.discard();
      await second.discard();
      await third.discard();
    }
  });
});

Deno.test("ImageFile.commit() never overwrites an existing file", async () => {
  await withTempDir(async (dir) => {
    const taken = join(dir, "cat-20250304-050607.png");
    await Deno.writeTextFile(taken, "someone else's image");
    const file = await ImageFile.create(dir, "cat");
    await file.write(PNG_HEAD);
    assert.equal(await file.commit("png", NOW), join(dir, "cat-20250304-050607-2.png"));
    assert.equal(await Deno.readTextFile(taken), "someone else's image");
    await file.discard();
  });
});

Deno.test("ImageFile.commit() does not take a name held by a folder", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(join(dir, "cat-20250304-050607.webp"));
    const file = await ImageFile.create(dir, "cat");
    await file.write(PNG_HEAD);
    assert.equal(await file.commit("webp", NOW), join(dir, "cat-20250304-050607-2.webp"));
    await file.discard();
  });
});

Deno.test("ImageFile.commit() gives a different extension its own name", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "cat-20250304-050607.png"), "x");
    const file = await ImageFile.create(dir, "cat");
    await file.write(PNG_HEAD);
    assert.equal(await file.commit("gif", NOW), join(dir, "cat-20250304-050607.gif"));
    await file.discard();
  });
});

Deno.test("ImageFile shows nothing under the final name before commit", async () => {
  await withTempDir(async (dir) => {
    const file = await ImageFile.create(dir, "cat");
    try {
      await file.write(PNG_HEAD);
      const names = await namesIn(dir);
      assert.equal(names.length, 1);
      assert.match(names[0]!, /^\.cat\.[0-9a-f]{8}\.img2-part$/);
    } finally {
      await file.discard();
    }
  });
});

Deno.test("ImageFile.discard() leaves no file at all", async () => {
  await withTempDir(async (dir) => {
    const file = await ImageFile.create(dir, "cat");
    await file.write(PNG_HEAD);
    await file.discard();
    assert.deepEqual(await namesIn(dir), []);
  });
});

Deno.test("ImageFile.discard() can be called twice", async () => {
  await withTempDir(async (dir) => {
    const file = await ImageFile.create(dir, "cat");
    await file.discard();
    await file.discard();
    assert.deepEqual(await namesIn(dir), []);
  });
});

Deno.test("ImageFile counts the bytes and keeps the head", async () => {
  await withTempDir(async (dir) => {
    const file = await ImageFile.create(dir, "cat");
    try {
      assert.equal(file.bytes, 0);
      assert.deepEqual(file.head, new Uint8Array());
      await file.write(PNG_HEAD.subarray(0, 4));
      await file.write(PNG_HEAD.subarray(4));
      assert.equal(file.bytes, PNG_HEAD.length);
      assert.deepEqual(file.head, PNG_HEAD);
      assert.equal(file.dir, dir);
    } finally {
      await file.discard();
    }
  });
});

Deno.test("ImageFile keeps only the first 256 KiB as its head", async () => {
  await withTempDir(async (dir) => {
    const file = await ImageFile.create(dir, "big");
    try {
      const big = new Uint8Array(300 * 1024).map((_, i) => i % 251);
      await file.write(big.subarray(0, 200 * 1024));
      await file.write(big.subarray(200 * 1024));
      assert.equal(file.bytes, 300 * 1024);
      assert.equal(file.head.length, 256 * 1024);
      assert.deepEqual(file.head, big.subarray(0, 256 * 1024));
      const path = await file.commit("png", NOW);
      assert.deepEqual(await Deno.readFile(path), big);
      assert.deepEqual(await readBack(file, 3 * 1024), big);
    } finally {
      await file.discard();
    }
  });
});

Deno.test("ImageFile.reset() empties the file for another attempt", async () => {
  await withTempDir(async (dir) => {
    const file = await ImageFile.create(dir, "cat");
    await file.write(new Uint8Array(1000).fill(7));
    await file.reset();
    assert.equal(file.bytes, 0);
    assert.deepEqual(file.head, new Uint8Array());
    await file.write(PNG_HEAD);
    assert.deepEqual(file.head, PNG_HEAD);
    const path = await file.commit("png", NOW);
    assert.deepEqual(await Deno.readFile(path), PNG_HEAD);
    await file.discard();
  });
});

Deno.test("ImageFile.pieces() reads the temporary file before commit", async () => {
  await withTempDir(async (dir) => {
    const file = await ImageFile.create(dir, "cat");
    try {
      await file.write(PNG_HEAD);
      assert.deepEqual(await readBack(file, 4), PNG_HEAD);
    } finally {
      await file.discard();
    }
  });
});

Deno.test("ImageFile.pieces() reads what was written, not what the name holds now", async () => {
  await withTempDir(async (dir) => {
    const secret = join(dir, "secret.txt");
    await Deno.writeTextFile(secret, "not the image");
    const file = await ImageFile.create(dir, "cat");
    try {
      await file.write(PNG_HEAD);
      const path = await file.commit("png", NOW);
      await Deno.remove(path);
      await Deno.symlink(secret, path);
      assert.deepEqual(await readBack(file, 3), PNG_HEAD);
    } finally {
      await file.discard();
    }
  });
});

Deno.test("ImageFile.withdraw() removes the committed image, but not a name swapped since", async () => {
  await withTempDir(async (dir) => {
    const file = await ImageFile.create(dir, "cat");
    await file.write(PNG_HEAD);
    await file.commit("png", NOW);
    await file.withdraw();
    await file.discard();
    assert.deepEqual(await namesIn(dir), []);

    const swapped = await ImageFile.create(dir, "cat");
    await swapped.write(PNG_HEAD);
    const path = await swapped.commit("png", NOW);
    await Deno.remove(path);
    await Deno.writeTextFile(path, "someone else's");
    await swapped.withdraw();
    await swapped.discard();
    assert.equal(await Deno.readTextFile(path), "someone else's");
  });
});

Deno.test("ImageFile refuses to write or commit after commit", async () => {
  await withTempDir(async (dir) => {
    const file = await ImageFile.create(dir, "cat");
    await file.write(PNG_HEAD);
    await file.commit("png", NOW);
    const write = await failureOf(file.write(PNG_HEAD));
    assert.equal(write.stage, "save");
    assert.equal(write.message, "The image file is already committed");
    assert.equal((await failureOf(file.commit("png", NOW))).stage, "save");
    await file.discard();
    assert.deepEqual(await namesIn(dir), ["cat-20250304-050607.png"]);
  });
});

Deno.test("ImageFile.create() makes output_dir with its parents", async () => {
  await withTempDir(async (dir) => {
    const nested = join(dir, "a", "b", "c");
    const file = await ImageFile.create(nested, "cat");
    await file.discard();
    assert.equal((await Deno.stat(nested)).isDirectory, true);
    assert.deepEqual(await namesIn(nested), []);
  });
});

Deno.test("ImageFile.create() makes output_dir and its parents private (0700), the file 0600", async () => {
  await withTempDir(async (dir) => {
    const nested = join(dir, "a", "b");
    const file = await ImageFile.create(nested, "cat");
    try {
      assert.equal((await Deno.stat(join(dir, "a"))).mode! & 0o777, 0o700);
      assert.equal((await Deno.stat(nested)).mode! & 0o777, 0o700);
      const [temp] = await namesIn(nested);
      assert.match(temp!, /^\.cat\.[0-9a-f]{8}\.img2-part$/);
      assert.equal((await Deno.stat(join(nested, temp!))).mode! & 0o777, 0o600);
    } finally {
      await file.discard();
    }
  });
});

Deno.test("ImageFile.create() refuses a folder others may write in without the sticky bit", async () => {
  await withTempDir(async (dir) => {
    for (const mode of [0o777, 0o775, 0o757]) {
      await Deno.chmod(dir, mode);
      const failure = await failureOf(ImageFile.create(dir, "cat"));
      assert.equal(failure.stage, "save");
      assert.match(
        failure.message,
        /^Refusing output_dir "[^"]+": others may write in it \(mode 0\d{3}\) without the sticky bit/,
      );
      assert.deepEqual(await namesIn(dir), []);
    }
    await Deno.chmod(dir, 0o1777);
    await (await ImageFile.create(dir, "cat")).discard();
    await Deno.chmod(dir, 0o755);
    await (await ImageFile.create(dir, "cat")).discard();
  });
});

Deno.test({
  name: "ImageFile.create() refuses a folder that belongs to another user",
  ignore: Deno.build.os === "windows" || Deno.uid() !== 0,
  fn: async () => {
    await withTempDir(async (dir) => {
      const theirs = join(dir, "theirs");
      await Deno.mkdir(theirs, { mode: 0o755 });
      await Deno.chown(theirs, 4242, 4242);
      const failure = await failureOf(ImageFile.create(theirs, "cat"));
      assert.equal(failure.stage, "save");
      assert.match(failure.message, /belongs to another user \(uid 4242\)/);
      assert.deepEqual(await namesIn(theirs), []);
    });
  },
});

const DAY_MS = 24 * 60 * 60 * 1000;

/** A file named as a temporary file of ours, last changed `ageMs` ago. */
async function partFile(dir: string, name: string, ageMs: number): Promise<string> {
  const path = join(dir, name);
  await Deno.writeFile(path, PNG_HEAD);
  const then = new Date(Date.now() - ageMs);
  await Deno.utime(path, then, then);
  return path;
}

Deno.test("ImageFile.create() sweeps temporary files abandoned by killed runs", async () => {
  await withTempDir(async (dir) => {
    await partFile(dir, ".cat.0123abcd.img2-part", 2 * DAY_MS);
    await partFile(dir, ".dog.89abcdef.img2-part", ABANDONED_AFTER_MS + 60_000);
    const file = await ImageFile.create(dir, "cat");
    await file.discard();
    assert.deepEqual(await namesIn(dir), []);
  });
});

Deno.test("ImageFile.create() keeps what the sweep cannot prove abandoned, and follows no link", async () => {
  await withTempDir(async (dir) => {
    const outside = join(dir, "outside");
    await Deno.mkdir(outside);
    const target = await partFile(outside, ".x.00000000.img2-part", 2 * DAY_MS);
    const out = join(dir, "out");
    await Deno.mkdir(out, { mode: 0o700 });
    await partFile(out, ".recent.0123abcd.img2-part", ABANDONED_AFTER_MS - 60_000);
    await partFile(out, ".cat.part", 2 * DAY_MS);
    await partFile(out, "cat-20250304-050607.png", 2 * DAY_MS);
    await partFile(out, ".cat.0123abcg.img2-part", 2 * DAY_MS);
    await Deno.symlink(target, join(out, ".link.0123abcd.img2-part"));
    await Deno.mkdir(join(out, ".folder.0123abcd.img2-part"));
    // A live run holds the lock of its temporary file however long its upstream stalls.
    const live = await partFile(out, ".live.0123abcd.img2-part", 2 * DAY_MS);
    using holder = await Deno.open(live, { read: true });
    await holder.lock(true);
    const before = await namesIn(out);
    const file = await ImageFile.create(out, "cat");
    await file.discard();
    assert.deepEqual(await namesIn(out), before);
    assert.deepEqual(await Deno.readFile(target), PNG_HEAD);
  });
});

Deno.test("ImageFile.create() looks at no more than MAX_SWEPT_PER_RUN temporary files", async () => {
  await withTempDir(async (dir) => {
    const total = MAX_SWEPT_PER_RUN + 10;
    for (let i = 0; i < total; i++) {
      await partFile(dir, `.old.${i.toString(16).padStart(8, "0")}.img2-part`, 2 * DAY_MS);
    }
    await (await ImageFile.create(dir, "cat")).discard();
    assert.equal((await namesIn(dir)).length, total - MAX_SWEPT_PER_RUN);
  });
});

Deno.test("ImageFile.create() does not wait for the sweep, which stops when the signal fires", async () => {
  await withTempDir(async (dir) => {
    await partFile(dir, ".old.0123abcd.img2-part", 2 * DAY_MS);
    const controller = new AbortController();
    const file = await ImageFile.create(dir, "cat", controller.signal);
    controller.abort();
    await file.discard();
    assert.deepEqual(await namesIn(dir), [".old.0123abcd.img2-part"]);
  });
});

/**
 * Runs `fn` on an image file whose temporary file someone renamed: a name given by someone else
 * is theirs, and stays.
 */
async function withTemporaryRenamed(fn: (file: ImageFile) => Promise<void>): Promise<void> {
  await withTempDir(async (dir) => {
    const file = await ImageFile.create(dir, "cat");
    try {
      await file.write(PNG_HEAD);
      const [temp] = await namesIn(dir);
      await Deno.rename(join(dir, temp!), join(dir, "renamed"));
      await fn(file);
    } finally {
      await file.discard();
    }
    assert.deepEqual(await namesIn(dir), ["renamed"]);
  });
}

/** An image file written in `{dir}/out`, then that folder renamed `moved` and `out` made anew. */
async function movedAway(dir: string): Promise<{ file: ImageFile; out: string; moved: string }> {
  const out = join(dir, "out");
  const moved = join(dir, "moved");
  const file = await ImageFile.create(out, "cat");
  await file.write(PNG_HEAD);
  await Deno.rename(out, moved);
  await Deno.mkdir(out, { mode: 0o700 });
  return { file, out, moved };
}

Deno.test("ImageFile.copy() reads the image through the open file, not its name", async () => {
  await withTemporaryRenamed(async (file) => {
    const copy = await file.copy();
    assert.equal(copy.bytes, PNG_HEAD.length);
    assert.deepEqual(copy.head, PNG_HEAD);
    assert.deepEqual(await readBack(copy, 4), PNG_HEAD);
    await copy.discard();
  });
});

Deno.test("ImageFile.commit() fails at stage save when its temporary file was taken away", async () => {
  await withTemporaryRenamed(async (file) => {
    const failure = await failureOf(file.commit("png", NOW));
    assert.equal(failure.stage, "save");
    assert.match(
      failure.message,
      /^Cannot save the image: its temporary file "[^"]+" was moved or removed during the call$/,
    );
  });
});

Deno.test({
  name: "ImageFile.commit() saves the image in its folder moved meanwhile",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    await withTempDir(async (dir) => {
      const { file, out, moved } = await movedAway(dir);
      try {
        assert.equal(await file.commit("png", NOW), join(moved, "cat-20250304-050607.png"));
        assert.deepEqual(await namesIn(moved), ["cat-20250304-050607.png"]);
        assert.deepEqual(await namesIn(out), []);
      } finally {
        await file.discard();
      }
    });
  },
});

Deno.test({
  name: "ImageFile.discard() removes the temporary file from its folder moved meanwhile",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    await withTempDir(async (dir) => {
      const { file, out, moved } = await movedAway(dir);
      // A file of the same name in the new folder is not the one to remove.
      const [temp] = await namesIn(moved);
      await Deno.writeFile(join(out, temp!), PNG_HEAD);
      await file.discard();
      assert.deepEqual(await namesIn(moved), []);
      assert.deepEqual(await namesIn(out), [temp]);
    });
  },
});

Deno.test({
  name: "ImageFile.create() leaves another user's temporary files alone",
  ignore: Deno.build.os === "windows" || Deno.uid() !== 0,
  fn: async () => {
    await withTempDir(async (dir) => {
      const theirs = await partFile(dir, ".cat.0123abcd.img2-part", 2 * DAY_MS);
      await Deno.chown(theirs, 4242, 4242);
      await (await ImageFile.create(dir, "cat")).discard();
      assert.deepEqual(await namesIn(dir), [".cat.0123abcd.img2-part"]);
    });
  },
});

Deno.test("ImageFile.create() fails at stage save for a folder under a regular file", async () => {
  await withTempDir(async (dir) => {
    const regular = join(dir, "file.txt");
    await Deno.writeTextFile(regular, "x");
    const target = join(regular, "images");
    const failure = await failureOf(ImageFile.create(target, "cat"));
    assert.equal(failure.stage, "save");
    assert.match(failure.message, /^Cannot create output_dir "[^"]+\/file\.txt\/images": /);
    assert.deepEqual(await namesIn(dir), ["file.txt"]);
  });
});

Deno.test("ImageFile.create() fails at stage save when output_dir is a regular file", async () => {
  await withTempDir(async (dir) => {
    const regular = join(dir, "file.txt");
    await Deno.writeTextFile(regular, "x");
    const failure = await failureOf(ImageFile.create(regular, "cat"));
    assert.equal(failure.stage, "save");
    assert.match(failure.message, /^Cannot (create|write in) output_dir "[^"]+\/file\.txt": /);
    assert.equal(await Deno.readTextFile(regular), "x");
  });
});

Deno.test("isPartNameOf() and isImageNameOf() know the names ImageFile gives a stem, and no other", async () => {
  await withTempDir(async (dir) => {
    const stem = "a.b (c)+";
    const first = await ImageFile.create(dir, stem);
    const second = await ImageFile.create(dir, stem);
    const parts = await namesIn(dir);
    assert.equal(parts.length, 2);
    for (const name of parts) {
      assert.ok(isPartNameOf(stem, name), name);
      assert.ok(!isImageNameOf(stem, name), name);
      assert.ok(!isPartNameOf("a.b", name), name);
    }
    for (const file of [first, second]) {
      await file.write(PNG_HEAD);
      const name = (await file.commit("webp", NOW)).slice(dir.length + 1);
      assert.ok(isImageNameOf(stem, name), name);
      assert.ok(!isPartNameOf(stem, name), name);
      assert.ok(!isImageNameOf("a.b", name), name);
      await file.discard();
    }
    assert.deepEqual(await namesIn(dir), [
      `${stem}-20250304-050607-2.webp`,
      `${stem}-20250304-050607.webp`,
    ]);
  });
  for (
    const name of [
      "cat-20250304-050607.partial-1.png",
      "cat-20250304-050607.txt",
      "cat-x-20250304-050607.png",
      "cat-2025030-050607.png",
      "cat.png",
      ".cat.0123abcd.img2-part",
    ]
  ) assert.ok(!isImageNameOf("cat", name), name);
  for (
    const name of [
      ".catx.0123abcd.img2-part",
      ".cat.0123abcg.img2-part",
      ".cat.0123abcd.img2-part.png",
      "cat.0123abcd.img2-part",
      ".cat.part",
    ]
  ) assert.ok(!isPartNameOf("cat", name), name);
});

Deno.test("removeIfUnlocked() removes a temporary file unless a live run holds its lock", async () => {
  await withTempDir(async (dir) => {
    const path = await partFile(dir, ".cat.0123abcd.img2-part", 0);
    {
      using holder = await Deno.open(path, { read: true });
      await holder.lock(true);
      await removeIfUnlocked(path);
      assert.deepEqual(await namesIn(dir), [".cat.0123abcd.img2-part"]);
    }
    await removeIfUnlocked(path);
    assert.deepEqual(await namesIn(dir), []);
    await removeIfUnlocked(path);
  });
});

Deno.test("ImageFile.create() sweeps a folder once, not for every image saved in it", async () => {
  await withTempDir(async (dir) => {
    await (await ImageFile.create(dir, "first")).discard();
    await partFile(dir, ".cat.0123abcd.img2-part", 2 * DAY_MS);
    await (await ImageFile.create(dir, "second")).discard();
    assert.deepEqual(await namesIn(dir), [".cat.0123abcd.img2-part"]);
  });
});

Deno.test("generateImage() says the call stopped before the request while output_dir was prepared", async () => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const input = inputFor(upstream, "ok", dir);
    const result = failure(await generateImage(input, { signal: AbortSignal.abort() }));
    assert.equal(result.diagnosis.category, "cancelled");
    assert.equal(
      result.error,
      "Preparing output_dir: Cancelled by the caller, before the request was sent",
    );
    assert.equal(upstream.requests.length, 0);
    assert.deepEqual(await namesIn(dir), []);
  });
});

Deno.test("ImageFile.create() lists no more than MAX_LISTED_PER_SWEEP entries of the folder", async () => {
  await withTempDir(async (dir) => {
    const total = 2 * MAX_LISTED_PER_SWEEP;
    for (let i = 0; i < total; i += 256) {
      await Promise.all(
        Array.from(
          { length: 256 },
          (_, j) => Deno.writeFile(join(dir, `f${i + j}`), new Uint8Array()),
        ),
      );
    }
    for (let i = 0; i < MAX_SWEPT_PER_RUN; i++) {
      await partFile(dir, `.old.${i.toString(16).padStart(8, "0")}.img2-part`, 2 * DAY_MS);
    }
    await (await ImageFile.create(dir, "cat")).discard();
    const left = (await namesIn(dir)).filter((name) => name.endsWith(".img2-part")).length;
    // The listing order is the file system's: about half of them come within the cap, not all.
    assert.ok(left > 0, "the sweep listed the whole folder");
  });
});
