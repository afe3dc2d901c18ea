/**
 * What the journal keeps of a --batch-api run: its parts, each known the moment it is (the
 * input file uploaded, the batch created, its final status, its collection), so that a run
 * killed anywhere is taken up where it stood and no part is submitted twice.
 */
import type { Category } from "../mod.ts";

/** A batch as the provider last described it, as state.json and the result show it. */
export interface BatchSummary {
  id: string;
  status: string;
  input_file_id: string | null;
  output_file_id: string | null;
  error_file_id: string | null;
  request_counts: { total: number; completed: number; failed: number } | null;
  created_at: number | null;
  completed_at: number | null;
}

export type BatchJournalEvent =
  /** A part is made, before its upload: its jobs in the order of its lines. */
  | { event: "batch_part"; time: number; part: string; run: string; ids: string[] }
  | { event: "batch_upload"; time: number; part: string; input_file_id: string }
  | { event: "batch_created"; time: number; part: string; batch_id: string; adopted?: true }
  /** The batch reached a final status. */
  | { event: "batch_final"; time: number; part: string; batch: BatchSummary }
  /** Its files were read: the part is closed, its jobs unanswered back to pending. */
  | { event: "batch_collected"; time: number; part: string; released: number };

/** One part of the run, as the journal tells it. */
export interface PartRecord {
  part: string;
  ids: string[];
  inputFileId: string | null;
  /** When the upload was journaled (epoch ms): a batch of this part was created after it. */
  uploadedAt: number | null;
  batchId: string | null;
  batch: BatchSummary | null;
  final: boolean;
  collected: boolean;
}

/** A part made of the jobs `ids`, not yet uploaded. */
export function newPart(part: string, ids: string[]): PartRecord {
  return {
    part,
    ids,
    inputFileId: null,
    uploadedAt: null,
    batchId: null,
    batch: null,
    final: false,
    collected: false,
  };
}

export interface BatchReplay {
  /** The run's name in the batches' metadata; null before its first part. */
  run: string | null;
  parts: Map<string, PartRecord>;
}

const BATCH_EVENT = '{"event":"batch_';

/** The parts, from the journal's text; only lines of batch events are parsed. */
export function replayBatchParts(text: string): BatchReplay {
  const replay: BatchReplay = { run: null, parts: new Map() };
  for (let at = text.indexOf(BATCH_EVENT); at !== -1; at = text.indexOf(BATCH_EVENT, at + 1)) {
    if (at > 0 && text[at - 1] !== "\n") continue; // inside another event's line
    const end = text.indexOf("\n", at);
    let event: BatchJournalEvent;
    try {
      event = JSON.parse(text.slice(at, end === -1 ? text.length : end));
    } catch {
      continue; // cut short by a crash
    }
    applyBatchEvent(replay, event);
  }
  return replay;
}

export function applyBatchEvent(replay: BatchReplay, event: BatchJournalEvent): void {
  if (event.event === "batch_part") {
    replay.run ??= event.run;
    replay.parts.set(event.part, newPart(event.part, event.ids));
    return;
  }
  const part = replay.parts.get(event.part);
  if (part === undefined) return;
  switch (event.event) {
    case "batch_upload":
      part.inputFileId = event.input_file_id;
      part.uploadedAt = event.time;
      return;
    case "batch_created":
      part.batchId = event.batch_id;
      return;
    case "batch_final":
      part.batch = event.batch;
      part.final = true;
      return;
    case "batch_collected":
      part.collected = true;
      return;
  }
}

/** What a --batch-api run tells of itself in its events (--events), beside the jobs' own. */
export type BatchApiEvent =
  | { event: "batch_submitted"; part: string; batch_id: string; jobs: number; adopted: boolean }
  | {
    event: "batch_status";
    part: string;
    batch_id: string;
    status: string;
    request_counts: BatchSummary["request_counts"];
  }
  | {
    event: "batch_collected";
    part: string;
    batch_id: string;
    status: string;
    done: number;
    failed: number;
    pending: number;
  }
  | {
    /** A look at a batch failed in a way that may pass (429, 5xx, no answer): the next one waits. */
    event: "batch_poll_retry";
    part: string;
    batch_id: string;
    category: Category;
    http_status: number | null;
    delay_ms: number;
  }
  | {
    event: "batch_line_ignored";
    part: string;
    batch_id: string;
    line: number;
    custom_id: string | null;
    reason: string;
  };
