/**
 * The two path operations the command needs, for POSIX paths. `node:path` would do, but loading
 * the Node compatibility layer costs more start-up time than the rest of the command.
 */

/** `path` made absolute against `cwd`, with "." and ".." segments resolved. */
export function absolutePath(path: string, cwd: string = Deno.cwd()): string {
  const segments: string[] = [];
  for (const segment of (path.startsWith("/") ? path : `${cwd}/${path}`).split("/")) {
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
