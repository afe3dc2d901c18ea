/**
 * One run of `img2-batch`, from the command line to the result: read and validate every job,
 * check the plan against the run dir, resume from the journal, schedule, and write the result.
 */
import {
  absolutePath,
  basename,
  callContext,
  DEFAULT_OUTPUT_DIR,
  dirname,
  dryRunReport,
  errorMessage,
  type FailureResult,
  failureResult,
  generateValidated,
  GenerationError,
  type GenerationInput,
  inFolder,
  InputError,
  maskBaseUrl,
  maskedHeaderValues,
  parseJsonObject,
  readCapped,
  resolveFolder,
  utf8Text,
} from "../mod.ts";
import { recoverCutJob } from "./adopt.ts";
import { batchDryRun, batchRequest, keepAtProvider, runBatchApi } from "./batch_api_run.ts";
import { CONTACT_SHEET_FILE, writeContactSheet } from "./contact_sheet.ts";
import { openToRead, stoppedInputError } from "./input_files.ts";
import { JobInputError, type JobList, readJobs } from "./jobs.ts";
import { Journal, type JournaledJob, type JournalRead, replayJournalFile } from "./journal.ts";
import { Monitor } from "./monitor.ts";
import { type BatchOptions, parseBatchArgs } from "./options.ts";
import { paramsHash, planHash, sha256Hex } from "./plan.ts";
import { disproof, imageProof } from "./proof.ts";
import {
  refuseForeignFolder,
  refuseLinkOfAnother,
  refuseSharedOutputDir,
  selfUid,
} from "./run_files.ts";
import { Scheduler } from "./scheduler.ts";
import { type JobRecord, newRecord, StateFile, writeAtomically } from "./state.ts";
import { type BatchResult, batchResult, resultJsonPieces } from "./summary.ts";

export const JOURNAL_FILE = "journal.jsonl";
export const STATE_FILE = "state.json";
export const RESULT_FILE = "batch_result.json";
/** Far more than 100 000 jobs, and a bound on what `/dev/zero` given as the jobs can cost. */
export const MAX_JOBS_BYTES = 256 * 1024 * 1024;
export const JOBS_LIMIT = { bytes: MAX_JOBS_BYTES, label: "256 MiB, the limit for the jobs" };

export interface BatchIo {
  /** Standard input, read only when the jobs come from "-". */
  stdin(): ReadableStream<Uint8Array>;
  /** A stop signal (SIGINT, SIGTERM, SIGHUP, SIGQUIT): start nothing new, cancel what is in flight. */
  signal: AbortSignal;
  /** Told of things a person should know (a done job's image has gone). */
  warn(message: string): void;
}

export type BatchOutcome =
  | { kind: "help" }
  | { kind: "version" }
  | { kind: "input_error"; result: FailureResult & { line: number | null } }
  /** The run dir, the journal or the events file could not be written. */
  | { kind: "failed"; result: FailureResult }
  | { kind: "dry_run"; report: unknown }
  | { kind: "ran"; result: BatchResult };

export async function runBatch(argv: string[], io: BatchIo): Promise<BatchOutcome> {
  let setup: Setup;
  try {
    const options = parseBatchArgs(argv);
    if (options.help) return { kind: "help" };
    if (options.version) return { kind: "version" };
    setup = await prepare(options, io);
  } catch (error) {
    if (!(error instanceof InputError)) throw error;
    const job = error instanceof JobInputError ? error : null;
    const result = failureResult(
      stoppedInputError(error, io.signal),
      callContext(job?.input ?? {}),
    );
    return { kind: "input_error", result: { ...result, line: job?.line ?? null } };
  }
  if (setup.options.dryRun) return { kind: "dry_run", report: dryRun(setup) };
  try {
    const result = await execute(setup, io);
    await markInterrupted(result, io);
    return { kind: "ran", result };
  } catch (error) {
    if (error instanceof InputError) {
      return {
        kind: "input_error",
        result: {
          ...failureResult(stoppedInputError(error, io.signal), callContext(setup.shared)),
          line: null,
        },
      };
    }
    const failure = new GenerationError(
      "save",
      `Cannot write the files of the run: ${errorMessage(error)}`,
    );
    return { kind: "failed", result: failureResult(failure, callContext(setup.shared)) };
  }
}

interface Setup {
  options: BatchOptions;
  jobsFile: string;
  jobsSha256: string;
  planHash: string;
  shared: GenerationInput;
  list: JobList;
  runDir: string;
  /** The journal as it was read: its size, and whether its last line was cut short. */
  journal: Omit<JournalRead, "replay">;
  replay: JournalRead["replay"];
}

/** Everything that can fail as an input error, checked before anything is written or sent. */
async function prepare(options: BatchOptions, io: BatchIo): Promise<Setup> {
  const jobsPath = options.jobsPath!;
  const shared: GenerationInput = {};
  if (options.defaultsPath !== null) {
    const source = `the --defaults file "${options.defaultsPath}"`;
    const text = await readSmallFile(options.defaultsPath, source, io.signal);
    Object.assign(shared, parseJsonObject(text, source));
  }
  Object.assign(shared, options.flags);
  if (options.apiKeyFile !== null) {
    // Taken as it is: the key's surrounding white space, a final newline included, is trimmed
    // where every key is validated.
    const source = `the --api-key-file "${options.apiKeyFile}"`;
    shared.api_key = await readSmallFile(options.apiKeyFile, source, io.signal);
  }
  delete shared.id;

  const jobsSource = jobsPath === "-"
    ? "the jobs from standard input"
    : `the jobs file "${jobsPath}"`;
  const bytes = await readCapped(
    await openInput(jobsPath, jobsSource, io),
    jobsSource,
    JOBS_LIMIT,
    io.signal,
  );
  const jobsSha256 = await sha256Hex(bytes);
  const stem = jobsPath === "-" ? "job" : fileStem(jobsPath);
  const list = readJobs(utf8Text(bytes, jobsSource), stem, shared, options);
  if (list.jobs.length + list.invalid.length === 0) {
    throw new JobInputError(`No jobs in ${jobsPath === "-" ? "standard input" : `"${jobsPath}"`}`);
  }

  const outputDir = resolveFolder("output_dir", shared.output_dir ?? DEFAULT_OUTPUT_DIR);
  const runDir = options.runDir !== null
    ? resolveFolder("--run-dir", options.runDir)
    : defaultRunDir(outputDir, jobsPath, jobsSha256);
  const plan = await planHash(jobsSha256, { ...shared, output_dir: outputDir });

  await refuseForeignRunDir(runDir, outputDir, options.runDir !== null);
  const { replay, ...journal } = await readJournal(runDir);
  const jobsFile = jobsPath === "-" ? jobsPath : absolutePath(jobsPath);
  if (replay.planHash !== null && replay.planHash !== plan && !options.force) {
    if (replay.jobsFile !== null && replay.jobsFile !== jobsFile) {
      throw new InputError(
        `Another jobs file, "${replay.jobsFile}", uses the run dir "${runDir}": ` +
          `give --run-dir for a separate run, or --force to run this one there instead`,
      );
    }
    throw new InputError(
      `The jobs or the shared settings changed since the last run in "${runDir}": ` +
        `give --force to run the new plan (done jobs whose parameters did not change are kept), ` +
        `or --run-dir for a separate run`,
    );
  }
  return {
    options,
    jobsFile,
    jobsSha256,
    planHash: plan,
    shared,
    list,
    runDir,
    journal,
    replay,
  };
}

function dryRun(setup: Setup): unknown {
  return {
    ok: true,
    dry_run: true,
    jobs_file: setup.jobsFile,
    jobs_sha256: setup.jobsSha256,
    plan_hash: setup.planHash,
    run_dir: setup.runDir,
    resumes: setup.replay.planHash !== null,
    jobs: setup.list.jobs.map((job) => {
      const { ok: _ok, dry_run: _dryRun, ...report } = dryRunReport(job.params);
      if (!setup.options.batchApi) return { id: job.id, line: job.line, ...report };
      // The line uploaded for the job, as masked as the request it stands for.
      const { request, ...rest } = report;
      return {
        id: job.id,
        line: job.line,
        batch_line: batchRequest(job.id, request.body as Record<string, unknown>),
        ...rest,
      };
    }),
    ...(setup.options.batchApi ? { batch_api: batchDryRun(setup.list.jobs) } : {}),
    invalid: setup.list.invalid.map((job) => ({
      id: job.id,
      line: job.line,
      error: (job.result as FailureResult).error,
    })),
  };
}

async function execute(setup: Setup, io: BatchIo): Promise<BatchResult> {
  const startedAt = performance.now();
  const { options, runDir } = setup;
  // Prompts and results are the caller's own: the folders made here (output_dir among them,
  // when the run dir is inside it) and every file of the run are for the caller alone.
  await Deno.mkdir(runDir, { recursive: true, mode: 0o700 });
  // Again, now that the folders exist: one made meanwhile by someone else is refused too.
  await refuseForeignRunDir(
    runDir,
    resolveFolder("output_dir", setup.shared.output_dir ?? DEFAULT_OUTPUT_DIR),
    options.runDir !== null,
  );
  const journal = await Journal.open(`${runDir}/${JOURNAL_FILE}`, setup.journal);
  await removeTemporaryFiles(runDir);
  const { records, adopted } = await resumeRecords(setup, io);
  if (!options.batchApi) keepAtProvider(records, setup.journal.batchLines.join("\n"));
  const monitor = await Monitor.open(options.eventsPath, true, io);
  const state = new StateFile(
    `${runDir}/${STATE_FILE}`,
    {
      mode: options.batchApi ? "batch-api" : "sync",
      jobs_file: setup.jobsFile,
      jobs_sha256: setup.jobsSha256,
      plan_hash: setup.planHash,
      settings: settingsOf(setup),
    },
    records,
    (header, records) => writeContactSheet(`${runDir}/${CONTACT_SHEET_FILE}`, header, records),
  );
  try {
    await journal.append({
      event: "run",
      time: Date.now(),
      plan_hash: setup.planHash,
      jobs_sha256: setup.jobsSha256,
      jobs_file: setup.jobsFile,
    });
    for (const record of adopted) await journalEnd(journal, record);

    let scheduler: Scheduler | null = null;
    // Counted only when the line is drawn, a few times a second: not per job event.
    const progress = (force = false) =>
      monitor.progress(() => ({
        done: records.filter((r) => r.status === "done").length,
        failed: records.filter((r) => r.status === "failed").length,
        running: scheduler?.running ?? 0,
        queued: scheduler?.queued ?? 0,
        concurrency: scheduler?.limit.current ?? options.concurrency,
      }), force);
    // --batch-api: through the provider's Batch API instead of the scheduler.
    const batchApi = options.batchApi
      ? await runBatchApi({
        options,
        runDir,
        records,
        journal,
        journalText: setup.journal.batchLines.join("\n"),
        monitor,
        state,
        signal: io.signal,
        journalEnd: (record) => journalEnd(journal, record),
        journalStart: (record) =>
          journal.append({
            event: "start",
            time: Date.now(),
            id: record.id,
            attempt: record.attempts + 1,
          }),
        journalFile: (record, { name, dev, ino }) =>
          journal.append({ event: "file", time: Date.now(), id: record.id, part: name, dev, ino }),
      })
      : null;
    const toRun = records.filter((record) => record.status === "pending" && batchApi === null);
    scheduler = new Scheduler(toRun, options, {
      generate: (params, signal, record) =>
        generateValidated(params, {
          signal,
          onFile: ({ name, dev, ino }) =>
            journal.append({
              event: "file",
              time: Date.now(),
              id: record.id,
              part: name,
              dev,
              ino,
            }),
        }),
      onStart: (record) =>
        journal.append({
          event: "start",
          time: Date.now(),
          id: record.id,
          attempt: record.attempts + 1,
        }),
      onEnd: (record) => journalEnd(journal, record),
      onEvent: (event) => monitor.emit(event),
      onChange: () => {
        state.changed();
        progress();
      },
    }, io.signal);
    const outcome = batchApi === null
      ? await scheduler.run()
      : { ...batchApi, rateLimitedResponses: 0 };
    if (io.signal.aborted) monitor.emit({ event: "stopped", reason: "signal" });
    progress(true);

    const result = batchResult(records, {
      runDir,
      interrupted: io.signal.aborted,
      stoppedReason: outcome.stoppedReason,
      elapsedMs: performance.now() - startedAt,
      doneNow: outcome.doneNow,
      rateLimitedResponses: outcome.rateLimitedResponses,
      journalError: outcome.journalFailure === null
        ? null
        : `Cannot write the journal, so the run stopped: ${errorMessage(outcome.journalFailure)}`,
      ...(batchApi === null ? {} : { batchApi }),
    });
    try {
      await writeAtomically(`${runDir}/${RESULT_FILE}`, resultJsonPieces(result));
    } catch (error) {
      // The result on standard output is then the only record of the jobs the journal missed.
      if (outcome.journalFailure === null) throw error;
      io.warn(`Cannot write ${RESULT_FILE}: ${errorMessage(error)}`);
    }
    return result;
  } finally {
    await state.flush();
    await journal.close();
    await monitor.close();
  }
}

/**
 * Makes `result` say it was interrupted, in batch_result.json too, when a stop signal has come
 * since it was made: while the last files were written, or while it was printed and the printing
 * was given up. `interrupted` then agrees with the exit code, which is the signal's.
 */
export async function markInterrupted(
  result: BatchResult,
  io: Pick<BatchIo, "signal" | "warn">,
): Promise<void> {
  if (!io.signal.aborted || result.interrupted) return;
  result.interrupted = true;
  try {
    await writeAtomically(`${result.run_dir}/${RESULT_FILE}`, resultJsonPieces(result));
  } catch (error) {
    io.warn(`Cannot write ${RESULT_FILE}: ${errorMessage(error)}`);
  }
}

/**
 * Each job's starting point for this run, from what the journal says of it; `adopted` are the
 * jobs whose image was found made, to be journaled as done.
 */
async function resumeRecords(
  setup: Setup,
  io: BatchIo,
): Promise<{ records: JobRecord[]; adopted: JobRecord[] }> {
  const { options, replay } = setup;
  const planChanged = replay.planHash !== null && replay.planHash !== setup.planHash;
  const records: JobRecord[] = [];
  const adopted: JobRecord[] = [];
  for (const job of setup.list.jobs) {
    const record = newRecord(job);
    records.push(record);
    const past = replay.jobs.get(job.id);
    if (past === undefined) continue;
    record.attempts = past.attempts;
    if (planChanged && past.paramsHash !== await paramsHash(job.params)) continue;
    if (await resumeRecord(record, past, options, io)) adopted.push(record);
  }
  for (const invalid of setup.list.invalid) {
    records.push({
      ...newRecord(null),
      id: invalid.id,
      line: invalid.line,
      taskName: invalid.taskName,
      status: "failed",
      category: "invalid_input",
      result: invalid.result,
    });
  }
  return { records, adopted };
}

async function resumeRecord(
  record: JobRecord,
  past: JournaledJob,
  options: BatchOptions,
  io: BatchIo,
): Promise<boolean> {
  const params = record.job!.params;
  Object.assign(record, {
    category: past.category,
    retryable: past.retryable,
    startedAt: past.startedAt,
    endedAt: past.endedAt,
    result: past.result,
    adopted: past.adopted,
  });
  if (past.status === "done") {
    record.imagePath = past.imagePath;
    const why = past.imagePath === null
      ? "The journal names no image"
      : await disproof(past.imagePath, params.output_dir, params.task_name, past.proof);
    if (why === null) {
      record.status = "done";
    } else if (!options.redoMissing) {
      record.status = "missing";
      record.reason = `${why}: give --redo-missing to make it again`;
      io.warn(`job "${record.id}": ${record.reason}`);
    }
  } else if (past.status === "failed") {
    if (!past.retryable && !options.retryFailed) record.status = "failed";
  } else {
    const image = await recoverCutJob(
      params.output_dir,
      params.task_name,
      past.startedAt,
      past.file,
    );
    if (image !== null) {
      Object.assign(record, {
        status: "done",
        imagePath: image.path,
        adopted: true,
        category: null,
        result: null,
        endedAt: Date.now(),
      });
      return true;
    }
  }
  return false;
}

async function journalEnd(journal: Journal, record: JobRecord): Promise<void> {
  const proof = record.status === "done" && record.imagePath !== null
    ? await imageProof(record.imagePath)
    : null;
  await journal.append({
    event: "end",
    time: record.endedAt ?? Date.now(),
    id: record.id,
    status: record.status === "done" ? "done" : "failed",
    attempts: record.attempts,
    category: record.category,
    retryable: record.retryable,
    image_path: record.imagePath,
    ...(proof === null ? {} : { image_bytes: proof.bytes, image_fingerprint: proof.fingerprint }),
    params_hash: await paramsHash(record.job!.params),
    ...(record.adopted ? { adopted: true } : {}),
    result: record.result,
  });
}

/** What a run killed while writing state.json or batch_result.json left; the lock makes it ours. */
async function removeTemporaryFiles(runDir: string): Promise<void> {
  const temporary = /^(?:state\.json|batch_result\.json|index\.html)\.[0-9a-f]{8}\.tmp$/;
  for await (const entry of Deno.readDir(runDir)) {
    if (entry.isFile && temporary.test(entry.name)) {
      await Deno.remove(`${runDir}/${entry.name}`).catch(() => {});
    }
  }
}

/** The settings as state.json shows them: shared parameters without the key. */
function settingsOf(setup: Setup): Record<string, unknown> {
  const { api_key: _key, ...shared } = setup.shared;
  if (typeof shared.base_url === "string") shared.base_url = maskBaseUrl(shared.base_url);
  if (typeof shared.extra_headers === "object" && shared.extra_headers !== null) {
    shared.extra_headers = maskedHeaderValues(shared.extra_headers);
  }
  const { options } = setup;
  return {
    concurrency: options.concurrency,
    rpm: options.rpm,
    max_attempts: options.maxAttempts,
    keep_going: options.keepGoing,
    shared,
  };
}

/** Standard input for "-", else the file; an input error when it cannot be opened. */
async function openInput(
  path: string,
  source: string,
  io: BatchIo,
): Promise<ReadableStream<Uint8Array>> {
  return path === "-" ? io.stdin() : await openToRead(path, source, io.signal);
}

/** A file of parameters, as UTF-8 text no larger than img2-generate takes its parameters. */
export async function readSmallFile(
  path: string,
  source: string,
  signal: AbortSignal,
): Promise<string> {
  const stream = await openToRead(path, source, signal);
  return utf8Text(await readCapped(stream, source, undefined, signal), source);
}

/** Where a run of `jobsPath` keeps its files when no --run-dir is given. */
export function defaultRunDir(outputDir: string, jobsPath: string, jobsSha256: string): string {
  const name = jobsPath === "-" ? `stdin-${jobsSha256.slice(0, 12)}` : fileStem(jobsPath);
  return inFolder(outputDir, `.img2-batch/${name}`);
}

/**
 * Refuses a run dir that another user could steer: the shared output_dir as img2-generate refuses
 * it, and the folders of the run (`.img2-batch` and the run dir, or the --run-dir given) unless
 * they are this user's alone. Nothing has been written or sent yet.
 */
async function refuseForeignRunDir(
  runDir: string,
  outputDir: string,
  given: boolean,
): Promise<void> {
  const self = await selfUid();
  await refuseSharedOutputDir(outputDir, self);
  if (given) {
    // The caller named this folder, a link of theirs included; another user's link, or a folder
    // where another user may rename it, would let them move the run's files elsewhere mid-run.
    await refuseSharedOutputDir(dirname(runDir), self, "folder of the run dir");
    await refuseLinkOfAnother(runDir, self);
    await refuseForeignFolder(runDir, "run dir", self, { followLink: true });
  } else {
    await refuseForeignFolder(dirname(runDir), "folder of the run dirs", self);
    await refuseForeignFolder(runDir, "run dir", self);
  }
}

/** The journal replayed as it is read, without following a link; empty for a new run dir. */
async function readJournal(runDir: string): Promise<JournalRead> {
  try {
    return await replayJournalFile(`${runDir}/${JOURNAL_FILE}`);
  } catch (error) {
    throw new InputError(`Cannot read the journal in "${runDir}": ${errorMessage(error)}`);
  }
}

/** "jobs/article.jsonl" → "article". */
function fileStem(path: string): string {
  const name = basename(path);
  const dot = name.lastIndexOf(".");
  return dot > 0 ? name.slice(0, dot) : name;
}
