/**
 * What the benchmark ran on: CPU, cores, memory, OS and the versions of every tool measured.
 *
 * Deno guards /proc behind --allow-all, so the CPU model (which node:os reads from
 * /proc/cpuinfo), the memory and the kernel come through --allow-sys=cpus,systemMemoryInfo,osRelease.
 */
import { cpus } from "node:os";

export interface Machine {
  cpu: string;
  cores: number;
  memory_gib: number;
  os: string;
  kernel: string;
  deno: string;
  v8: string;
  python: string | null;
  curl: string | null;
  jq: string | null;
}

export async function describeMachine(env: Record<string, string>): Promise<Machine> {
  const osRelease = await readOr("/etc/os-release");
  const processors = cpus();
  return {
    cpu: processors[0]?.model.trim() || "unknown",
    cores: processors.length || navigator.hardwareConcurrency,
    memory_gib: Math.round(Deno.systemMemoryInfo().total / 2 ** 30 * 10) / 10,
    os: /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(osRelease)?.[1] ?? Deno.build.os,
    kernel: Deno.osRelease(),
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    python: firstLine(await versionOf(["python3", "--version"], env)),
    curl:
      firstLine(await versionOf(["curl", "--version"], env))?.split(" ").slice(0, 2).join(" ") ??
        null,
    jq: firstLine(await versionOf(["jq", "--version"], env)),
  };
}

/** One line for docs/benchmarks.md: "AMD EPYC, 2 cores, 23.5 GiB, Debian 12; Deno 2.9.6, …". */
export function machineLine(machine: Machine): string {
  const tools = [
    `Deno ${machine.deno} (V8 ${machine.v8})`,
    machine.python ?? "no Python",
    machine.curl ?? "no curl",
    machine.jq ?? "no jq",
  ];
  return `${machine.cpu}, ${machine.cores} cores, ${machine.memory_gib} GiB RAM, ${machine.os} ` +
    `(Linux ${machine.kernel}); ${tools.join(", ")}`;
}

/** The output of `argv`, or null when the program is missing or fails. */
export async function versionOf(
  argv: readonly string[],
  env: Record<string, string>,
): Promise<string | null> {
  try {
    const output = await new Deno.Command(argv[0]!, {
      args: argv.slice(1),
      clearEnv: true,
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!output.success) return null;
    const decoder = new TextDecoder();
    return (decoder.decode(output.stdout) || decoder.decode(output.stderr)).trim();
  } catch {
    return null;
  }
}

function firstLine(text: string | null): string | null {
  return text === null ? null : text.split("\n")[0]!.trim();
}

async function readOr(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return "";
  }
}
