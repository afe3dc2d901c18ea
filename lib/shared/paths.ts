/**
 * The path operations the commands need, for POSIX paths. `node:path` would do, but loading
 * the Node compatibility layer costs more start-up time than the rest of the command.
 */

/** `path` made absolute against `cwd`, with "." and ".." segments resolved. */
export function absolutePath(path: string, cwd?: string): string {
  const segments: string[] = [];
  // The working folder is asked for only when needed: a system call for each of many jobs.
  for (const segment of (path.startsWith("/") ? path : `${cwd ?? Deno.cwd()}/${path}`).split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") segments.pop();
    else segments.push(segment);
  }
  return `/${segments.join("/")}`;
}

/** A file name inside a folder. */
export function inFolder(dir: string, name: string): string {
  return dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}

/** The last segment of `path`: the name of the file or folder. */
export function basename(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/** The folder that holds `path`: "." for a bare name, "/" for a name at the root. */
export function dirname(path: string): string {
  const slash = path.lastIndexOf("/");
  if (slash === -1) return ".";
  return path.slice(0, slash) || "/";
}
