/**
 * scripts/build/install.ts, run as `deno task install` runs it: what it installs, the Python shim it
 * writes, and that the shim answers exactly as the installed command does.
 */
import assert from "node:assert/strict";
import { delimiter, dirname, join } from "node:path";
import { ROOT } from "../../scripts/build/build.ts";
import {
  commandMissingResult,
  compileFailureReason,
  denoMissingResult,
  pythonShim,
  SHIM_MARKER,
} from "../../scripts/build/install.ts";
import { encodePng } from "../../scripts/mock/png.ts";
import { VERSION } from "../../lib/shared/version.ts";

const INSTALL_SCRIPT = join(ROOT, "scripts", "build", "install.ts");
const INSTALL_PERMISSIONS = ["--allow-run", "--allow-read", "--allow-write", "--allow-env"];

/** The absolute path of python3, for runs under a PATH that does not have it; null without one. */
const PYTHON = (() => {
  try {
    const output = new Deno.Command("python3", {
      args: ["-c", "import sys; print(sys.executable if sys.version_info[0] == 3 else '')"],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    const path = new TextDecoder().decode(output.stdout).trim();
    return output.success && path !== "" ? path : null;
  } catch {
    return null;
  }
})();
const HAS_PYTHON = PYTHON !== null;

const DENORT = Deno.env.get("DENORT_BIN");
const HAS_DENORT = DENORT !== undefined && (() => {
  try {
    return Deno.statSync(DENORT).isFile;
  } catch {
    return false;
  }
})();

/** Deno first on PATH, as a developer has it; local servers never through a proxy. */
const CHILD_ENV = {
  PATH: [dirname(Deno.execPath()), Deno.env.get("PATH") ?? ""].join(delimiter),
  NO_PROXY: "127.0.0.1,localhost",
  no_proxy: "127.0.0.1,localhost",
};

interface RunOutput {
  code: number;
  stdout: string;
  stderr: string;
}

interface RunOptions {
  stdin?: string;
  env?: Record<string, string>;
  /** Only `env`, nothing inherited: an agent's narrow environment. */
  clearEnv?: boolean;
}

async function run(argv: string[], options: RunOptions = {}): Promise<RunOutput> {
  const [program, ...args] = argv as [string, ...string[]];
  const child = new Deno.Command(program, {
    args,
    cwd: ROOT,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    clearEnv: options.clearEnv === true,
    env: options.clearEnv ? options.env : { ...CHILD_ENV, ...options.env },
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const output = await child.output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

function runInstall(args: string[], env: Record<string, string> = {}): Promise<RunOutput> {
  return run([Deno.execPath(), "run", ...INSTALL_PERMISSIONS, INSTALL_SCRIPT, ...args], { env });
}

interface Installation {
  dir: string;
  command: string;
  shim: string;
  output: RunOutput;
}

/** Installs the bundle and a shim at `<tmp>/old/img2_generate_only.py`, then runs `fn`. */
async function withInstallation(fn: (installation: Installation) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "img2-install-test-" });
  try {
    const shim = join(dir, "old", "img2_generate_only.py");
    const output = await runInstall(["--to", join(dir, "bin"), "--bundle", "--python-shim", shim]);
    assert.equal(output.code, 0, output.stderr);
    await fn({ dir, command: join(dir, "bin", "img2-generate"), shim, output });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function readText(path: string): Promise<string> {
  return await Deno.readTextFile(path);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

Deno.test("install.ts --bundle installs a runnable img2-generate and a Python shim", async () => {
  await withInstallation(async ({ dir, command, shim, output }) => {
    assert.match(output.stderr, /Installing the single-file bundle .*--bundle was given/);
    assert.match(output.stdout, new RegExp(`at ${RegExp.escape(command)}\n`));
    assert.match(output.stdout, new RegExp(`Python shim at ${RegExp.escape(shim)} runs it\n`));
    // The temporary folder is not on PATH, so the summary says how to put it there.
    assert.match(output.stdout, new RegExp(`export PATH="${RegExp.escape(join(dir, "bin"))}:`));

    const info = await Deno.stat(command);
    assert.equal(info.mode! & 0o111, 0o111, "the command is executable");
    assert.ok(
      (await readText(command)).startsWith(
        `#!/bin/sh\n// 2>/dev/null; deno='${Deno.execPath()}'; [ -x "$deno" ] && exec "$deno" run `,
      ),
      "the bundle starts with lines that run it with this Deno, by its absolute path",
    );
    const version = await run([command, "--version"]);
    assert.deepEqual(version, { code: 0, stdout: `img2-generate ${VERSION}\n`, stderr: "" });

    const script = await readText(shim);
    assert.equal(script, pythonShim(command));
    assert.ok(script.includes(SHIM_MARKER));
    assert.ok(script.includes(JSON.stringify(command)), "the shim names the absolute path");
    assert.equal((await Deno.stat(shim)).mode! & 0o111, 0o111, "the shim is executable");
    assert.equal(await exists(`${shim}.bak`), false, "nothing to back up on a fresh path");
    // No staging files are left beside what was installed.
    const leftovers = [];
    for await (const entry of Deno.readDir(join(dir, "bin"))) leftovers.push(entry.name);
    for await (const entry of Deno.readDir(join(dir, "old"))) leftovers.push(entry.name);
    assert.deepEqual(leftovers.sort(), ["img2-batch", "img2-generate", "img2_generate_only.py"]);
    const batchVersion = await run([join(dir, "bin", "img2-batch"), "--version"]);
    assert.deepEqual(batchVersion, { code: 0, stdout: `img2-batch ${VERSION}\n`, stderr: "" });
  });
});

/** Both outputs with what differs from run to run replaced by placeholders. */
function normalise(stdout: string): string {
  return stdout
    .replace(/"image_path": "[^"]*"/g, '"image_path": "<image_path>"')
    .replace(/"elapsed_ms": \d+/g, '"elapsed_ms": 0')
    .replace(/^MEDIA:.*$/gm, "MEDIA:<image_path>");
}

interface Form {
  name: string;
  args: string[];
  stdin?: string;
}

/** The three input forms of the same parameters: one JSON argument, JSON on stdin, flags. */
function forms(params: Record<string, string | number | boolean>, extraFlags: string[] = []) {
  const json = JSON.stringify(params);
  const flags = Object.entries(params).flatMap(([name, value]) => [
    `--${name.replaceAll("_", "-")}`,
    String(value),
  ]);
  return [
    { name: "JSON argument", args: [json] },
    { name: "JSON on stdin", args: ["-"], stdin: json },
    { name: "flags", args: [...flags, ...extraFlags] },
  ] satisfies Form[];
}

/** Runs each form directly and through the shim, and checks that both answer alike. */
async function compareShim(
  installation: Installation,
  cases: Form[],
  check: (direct: RunOutput, form: Form) => Promise<void> | void,
): Promise<void> {
  for (const form of cases) {
    const direct = await run([installation.command, ...form.args], { stdin: form.stdin });
    const shimmed = await run(["python3", installation.shim, ...form.args], { stdin: form.stdin });
    assert.equal(shimmed.code, direct.code, `${form.name}: exit code through the shim`);
    assert.equal(
      normalise(shimmed.stdout),
      normalise(direct.stdout),
      `${form.name}: stdout through the shim`,
    );
    await check(direct, form);
    await check(shimmed, form);
  }
}

Deno.test({
  name: "the Python shim answers invalid input exactly as the command does (exit 2)",
  ignore: !HAS_PYTHON,
  fn: async () => {
    await withInstallation(async (installation) => {
      const params = {
        prompt: "一只毛茸茸的橘猫",
        base_url: "http://127.0.0.1:9/v1",
        api_key: "sk-never-sent",
        model: "gpt-image-2",
        size: "big",
        task_name: "shim-invalid",
        timeout: 1000,
      };
      await compareShim(installation, forms(params), (output, form) => {
        assert.equal(output.code, 2, `${form.name}: ${output.stderr}`);
        const result = JSON.parse(output.stdout);
        assert.equal(result.ok, false);
        assert.equal(result.stage, "input");
        assert.equal(result.diagnosis.category, "invalid_input");
        assert.match(result.error, /Unknown parameter "timeout": did you mean "timeout_ms"\?/);
        // Flags stop at the unknown one; JSON is checked whole.
        if (form.name !== "flags") assert.match(result.error, /Invalid size "big"/);
        assert.ok(!output.stdout.includes("sk-never-sent"));
      });
    });
  },
});

const PNG = encodePng(4, 3, new Uint8Array(4 * 3 * 3).fill(200));

/** The parameters of one image from the local upstream listening on `port`. */
function generationParams(port: number, taskName: string, outputDir: string) {
  return {
    prompt: "一只毛茸茸的橘猫坐在窗边,无文字",
    base_url: `http://127.0.0.1:${port}/v1`,
    api_key: "sk-install-test-0123456789",
    model: "gpt-image-2",
    size: "1024x1024",
    task_name: taskName,
    timeout_ms: 20000,
    output_dir: outputDir,
  };
}

Deno.test({
  name: "the Python shim generates exactly as the command does, with stdin passed through",
  ignore: !HAS_PYTHON,
  fn: async () => {
    const prompts: unknown[] = [];
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      async (request) => {
        const body = await request.json();
        prompts.push(body.prompt);
        return Response.json({ data: [{ b64_json: PNG.toBase64() }] });
      },
    );
    try {
      await withInstallation(async (installation) => {
        const outputDir = join(installation.dir, "images");
        const params = generationParams(server.addr.port, "shim-check", outputDir);
        const paths = new Set<string>();
        await compareShim(
          installation,
          forms(params, ["--media-line"]),
          async (output, form) => {
            assert.equal(output.code, 0, `${form.name}: ${output.stdout}${output.stderr}`);
            const [json, media] = splitMediaLine(output.stdout, form.name === "flags");
            const result = JSON.parse(json);
            assert.equal(result.ok, true);
            assert.equal(result.stage, "done");
            assert.equal(result.bytes, PNG.length);
            assert.equal(dirname(result.image_path), outputDir);
            assert.deepEqual(await Deno.readFile(result.image_path), PNG);
            if (media !== null) assert.equal(media, result.image_path);
            paths.add(result.image_path);
            assert.ok(!output.stdout.includes(params.api_key));
          },
        );
        assert.equal(paths.size, 6, "each run saved its own file");
        assert.deepEqual(prompts, Array(6).fill(params.prompt), "the prompt arrived unchanged");
      });
    } finally {
      await server.shutdown();
    }
  },
});

/** The JSON object, and the path of the MEDIA line that follows it when one is expected. */
function splitMediaLine(stdout: string, expectMedia: boolean): [string, string | null] {
  const match = /\nMEDIA:(.*)\n$/.exec(stdout);
  assert.equal(match !== null, expectMedia, `MEDIA line ${expectMedia ? "missing" : "unexpected"}`);
  if (match === null) return [stdout, null];
  return [stdout.slice(0, match.index + 1), match[1]!];
}

/** An agent's environment: nothing inherited, and a PATH where no deno (nor anything) is. */
function narrowEnv(dir: string): RunOptions {
  return { clearEnv: true, env: { PATH: join(dir, "empty-path") } };
}

Deno.test({
  name:
    "the installed bundle and the Python shim run without deno on PATH, and say so in JSON when Deno is gone",
  ignore: !HAS_PYTHON,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "img2-install-test-" });
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      async (request) => {
        await request.text();
        return Response.json({ data: [{ b64_json: PNG.toBase64() }] });
      },
    );
    try {
      // A Deno of its own, at a path that needs quoting in sh, so that the test can take it away.
      const deno = join(dir, "Deno's bin", "deno");
      await Deno.mkdir(dirname(deno));
      await Deno.symlink(Deno.execPath(), deno);
      const command = join(dir, "bin", "img2-generate");
      const shim = join(dir, "old", "img2_generate_only.py");
      const installed = await runInstall([
        "--to",
        join(dir, "bin"),
        "--bundle",
        "--python-shim",
        shim,
        "--deno",
        deno,
      ]);
      assert.equal(installed.code, 0, installed.stderr);
      assert.ok(installed.stdout.includes(`(runs with the Deno at ${deno})`), installed.stdout);

      const narrow = narrowEnv(dir);
      for (const argv of [[command], [PYTHON!, shim]]) {
        const version = await run([...argv, "--version"], narrow);
        assert.deepEqual(version, { code: 0, stdout: `img2-generate ${VERSION}\n`, stderr: "" });
        const params = generationParams(server.addr.port, "narrow-path", join(dir, "images"));
        const generated = await run([...argv, "-"], { ...narrow, stdin: JSON.stringify(params) });
        assert.equal(generated.code, 0, generated.stdout + generated.stderr);
        assert.deepEqual(await Deno.readFile(JSON.parse(generated.stdout).image_path), PNG);
      }
      // The command's own answer to an input it cannot use, for the shape of the answers below.
      const invalid = await run([command, "{}"], narrow);
      assert.equal(invalid.code, 2);
      const invalidResult = JSON.parse(invalid.stdout);

      await Deno.remove(deno);
      for (const argv of [[command], [PYTHON!, shim]]) {
        const output = await run([...argv, "{}"], narrow);
        assert.equal(output.code, 2, output.stdout + output.stderr);
        assert.equal(output.stderr, "");
        assert.equal(output.stdout, JSON.stringify(denoMissingResult(deno), null, 2) + "\n");
        const result = JSON.parse(output.stdout);
        assert.deepEqual(Object.keys(result), Object.keys(invalidResult));
        assert.deepEqual(Object.keys(result.diagnosis), Object.keys(invalidResult.diagnosis));
        assert.equal(result.ok, false);
        assert.equal(result.stage, "input");
        assert.ok(result.error.includes(`Deno is not at "${deno}"`), result.error);
      }
    } finally {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "the Python shim answers with a failure JSON, exit code 2, when the command is gone",
  ignore: !HAS_PYTHON,
  fn: async () => {
    await withInstallation(async ({ dir, command, shim }) => {
      await Deno.remove(command);
      const output = await run([PYTHON!, shim, "{}"], narrowEnv(dir));
      assert.equal(output.code, 2, output.stdout + output.stderr);
      assert.equal(output.stdout, JSON.stringify(commandMissingResult(command), null, 2) + "\n");
      assert.equal(JSON.parse(output.stdout).stage, "input");
      assert.match(output.stderr, /^Cannot run .*img2-generate: \[Errno 2\]/);
    });
  },
});

Deno.test("install.ts backs up a foreign file at the shim path, never an earlier backup", async () => {
  const dir = await Deno.makeTempDir({ prefix: "img2-install-test-" });
  try {
    const bin = join(dir, "bin");
    const shim = join(dir, "scripts", "img2_generate_only.py");
    const original = "#!/usr/bin/env python3\nprint('the old generator')\n";
    await Deno.mkdir(dirname(shim));
    await Deno.writeTextFile(shim, original);

    const first = await runInstall(["--to", bin, "--bundle", "--python-shim", shim]);
    assert.equal(first.code, 0, first.stderr);
    assert.ok(first.stderr.includes(`Kept the file that was at "${shim}" as "${shim}.bak"`));
    assert.ok(first.stdout.includes(`(the previous file is kept at ${shim}.bak)`));
    assert.equal(await readText(`${shim}.bak`), original);
    assert.equal(await readText(shim), pythonShim(join(bin, "img2-generate")));

    // Our own shim is replaced without a backup.
    const second = await runInstall(["--to", bin, "--bundle", "--python-shim", shim]);
    assert.equal(second.code, 0, second.stderr);
    assert.ok(!second.stderr.includes("Kept the file"));
    assert.equal(await readText(`${shim}.bak`), original);
    assert.equal(await exists(`${shim}.bak.1`), false);

    // A second foreign file does not overwrite the first backup.
    await Deno.writeTextFile(shim, "print('another script')\n");
    const third = await runInstall(["--to", bin, "--bundle", "--python-shim", shim]);
    assert.equal(third.code, 0, third.stderr);
    assert.ok(third.stderr.includes(`as "${shim}.bak.1"`));
    assert.equal(await readText(`${shim}.bak`), original);
    assert.equal(await readText(`${shim}.bak.1`), "print('another script')\n");
    assert.equal(await readText(shim), pythonShim(join(bin, "img2-generate")));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("install.ts falls back to the bundle when deno compile fails or its binary does not work", async () => {
  const dir = await Deno.makeTempDir({ prefix: "img2-install-test-" });
  try {
    const command = join(dir, "bin", "img2-generate");
    const cases = [
      // No runtime base at all.
      { denort: join(dir, "no-such-denort"), reason: /deno compile failed \(.*no-such-denort/ },
      // The full deno as the base: compile succeeds, but the result is deno, not our command.
      { denort: Deno.execPath(), reason: /compiled binary does not work .*not the img2-generate/ },
    ];
    for (const { denort, reason } of cases) {
      await Deno.remove(command).catch(() => {});
      const output = await runInstall(["--to", join(dir, "bin")], { DENORT_BIN: denort });
      assert.equal(output.code, 0, output.stderr);
      assert.match(output.stderr, /Installing the single-file bundle instead of a compiled binary/);
      assert.match(output.stderr, reason);
      assert.match(output.stderr, /DENORT_BIN/);
      assert.ok(
        output.stdout.includes(`the single-file bundle (runs with the Deno at ${Deno.execPath()})`),
      );
      assert.ok((await readText(command)).startsWith("#!/bin/sh\n"));
      const version = await run([command, "--version"]);
      assert.equal(version.stdout, `img2-generate ${VERSION}\n`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "install.ts installs the compiled binary when DENORT_BIN names a working denort",
  ignore: !HAS_DENORT,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "img2-install-test-" });
    try {
      const output = await runInstall(["--to", dir]);
      assert.equal(output.code, 0, output.stderr);
      assert.match(output.stderr, /Installing the compiled binary/);
      assert.match(output.stdout, /the compiled binary, at /);
      const command = join(dir, "img2-generate");
      const head = (await Deno.readFile(command)).subarray(0, 2);
      assert.notDeepEqual(head, new TextEncoder().encode("#!"), "a binary, not a script");
      const version = await run([command, "--version"]);
      assert.equal(version.stdout, `img2-generate ${VERSION}\n`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("install.ts explains its usage and refuses incomplete or clashing options", async () => {
  const help = await runInstall(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: deno task install -- --to DIR/);

  const missing = await runInstall([]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /Missing --to DIR/);

  const unknown = await runInstall(["--to", "/nowhere", "--shim", "x"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /--shim/);

  // `deno task install -- --to DIR` passes the "--" on; it is not a positional argument.
  const dashes = await runInstall(["--", "--help"]);
  assert.equal(dashes.code, 0);

  const dir = await Deno.makeTempDir({ prefix: "img2-install-test-" });
  try {
    const clash = await runInstall([
      "--to",
      dir,
      "--bundle",
      "--python-shim",
      join(dir, "img2-generate"),
    ]);
    assert.equal(clash.code, 1);
    assert.match(clash.stderr, /Cannot write the Python shim at ".*": the command goes there/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("compileFailureReason() picks the cause that names the download", () => {
  const message = [
    "deno compile failed.",
    "\x1b[1m\x1b[31merror\x1b[0m: Writing deno compile executable to temporary file '/x.tmp'",
    "",
    "Caused by:",
    "    0: Setting up base binary.",
    "    1: error sending request for url (https://dl.deno.land/release/v2.9.6/denort.zip): dns error",
    "    2: client error (Connect)",
    "",
    "Stack backtrace:",
    "   0: <unknown>",
  ].join("\n");
  const reason = compileFailureReason(message);
  assert.match(reason, /^deno compile failed \(error sending request for url \(https:/);
  assert.match(reason, /DENORT_BIN/);
  assert.ok(!reason.includes("\x1b"));
  assert.match(compileFailureReason("deno compile failed.\nerror: disk full"), /\(disk full\)/);
});
