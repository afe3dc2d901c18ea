/** The most characters a piece gathers before it is given out. */
const PIECE_CHARS = 64 * 1024;

/**
 * `JSON.stringify({...head, [listKey]: items}, null, indent)` and a newline, given out in pieces
 * of some 64 KiB instead of as one string: for a run of 100 000 jobs the whole text is tens of
 * megabytes, and a file and standard output made from one would each hold it, and its bytes,
 * at once.
 */
export function* jsonPieces(
  head: Record<string, unknown>,
  listKey: string,
  items: Iterable<unknown>,
  indent: number,
): Generator<string> {
  const { [listKey]: _ignored, ...rest } = head;
  const empty = JSON.stringify({ ...rest, [listKey]: [] }, null, indent);
  const pad = " ".repeat(indent);
  let piece = "";
  let first = true;
  for (const item of items) {
    piece += first ? empty.slice(0, -"]\n}".length) + "\n" : ",\n";
    piece += pad + pad + JSON.stringify(item, null, indent).replaceAll("\n", `\n${pad}${pad}`);
    first = false;
    if (piece.length >= PIECE_CHARS) {
      yield piece;
      piece = "";
    }
  }
  yield first ? `${empty}\n` : `${piece}\n${pad}]\n}\n`;
}
