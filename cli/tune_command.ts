/**
 * `tune`: the study's Experiment 3 — ASHA over the tuning CNN's l1, lr and batch size, for Adam
 * and for SGD — on top of the `train/tune/` runner, with live progress, trials.csv/json, plots
 * and report.md; `--resume DIR` continues an interrupted run exactly.
 *
 * @module
 */

import { join } from "node:path";
import { gpu, init } from "../mod.ts";
import { formatDuration } from "../data/mod.ts";
import {
  AshaScheduler,
  checkStorage,
  choice,
  decodeMetrics,
  type JsonValue as Json,
  type MetricsJson,
  type ParamSpace,
  readSharedStudy,
  ResultGrid,
  StorageError,
  type StorageEvent,
  suggestMaxConcurrent,
  type TrialResult,
  tune,
  type TuneOptions,
  type TuneProgress,
} from "../train/tune/mod.ts";
import { type Flags, type FlagSpec, UsageError } from "./args.ts";
import { type DataChoice, dataChoice } from "./data.ts";
import { displayPath, prepareOutDir, type RunDirClaim, writeJson, writeText } from "./files.ts";
import { DATA_FLAGS, HELP_FLAG, RUN_FLAGS } from "./flags.ts";
import {
  type CommandIo,
  type CommandSpec,
  runCommand,
  type RunSetup,
  setupRun,
} from "./harness.ts";
import { INTERRUPTED_EXIT_CODE } from "./interrupt.ts";
import { writtenAt } from "./resume.ts";
import { TrainingProgress } from "./progress.ts";
import { plotFile, tunePlotSvg, tuneReport, type TuneSettings } from "./tune_report.ts";
import {
  bestRow,
  type TrialRow,
  trialRows,
  type TuneOptimizer,
  writeTrialFiles,
} from "./tune_results.ts";
import { tuneTrainable } from "./tune_trainable.ts";

/** The study's search space. */
export const SEARCH_SPACE: ParamSpace = {
  l1: choice([64, 128, 256]),
  lr: choice([1e-4, 1e-3, 1e-2]),
  batch_size: choice([32, 64, 128]),
};

const TUNE_FLAGS: readonly FlagSpec[] = [
  {
    name: "optimizer",
    kind: "choice",
    choices: ["adam", "sgd", "both"],
    default: "both",
    help: "tune with Adam, SGD, or both one after the other (the study)",
  },
  { name: "samples", kind: "integer", min: 1, default: 27, help: "configs sampled per optimizer" },
  { name: "max-epochs", kind: "integer", min: 1, default: 10, help: "ASHA max_t: epochs at most" },
  { name: "grace-period", kind: "integer", min: 1, default: 1, help: "ASHA grace period (epochs)" },
  {
    name: "reduction-factor",
    kind: "number",
    min: 1,
    minExclusive: true,
    default: 2,
    help: "ASHA reduction factor",
  },
  {
    name: "concurrency",
    kind: "integer",
    min: 1,
    metavar: "N",
    help: "trials at once",
    defaultText: "1 on a software adapter, 2 on a GPU",
  },
  {
    name: "resume",
    kind: "string",
    metavar: "DIR",
    help: "continue the interrupted tune run in DIR (its settings are reused)",
  },
  {
    name: "storage",
    kind: "string",
    metavar: "URL",
    help: "share the search with other machines through PostgreSQL " +
      "(postgres://user:password@host:port/db); run the same command on each",
  },
  {
    name: "study",
    kind: "string",
    metavar: "NAME",
    help: "the shared study's name in --storage (the first worker creates it, others join)",
  },
  {
    name: "lease-seconds",
    kind: "number",
    min: 0,
    minExclusive: true,
    default: 30,
    help: "with --storage: a dead worker's trial is taken over after this long",
  },
  {
    name: "max-failures",
    kind: "integer",
    min: 0,
    default: 3,
    help: "with --storage: lost workers a trial survives before it counts as failed",
  },
];

const SHARED_FLAGS = ["storage", "study", "lease-seconds", "max-failures"];

/** The flags of `tune report`. */
const TUNE_REPORT_FLAGS: readonly FlagSpec[] = [
  {
    name: "storage",
    kind: "string",
    metavar: "URL",
    help: "the PostgreSQL URL the workers use (postgres://user:password@host:port/db)",
  },
  { name: "study", kind: "string", metavar: "NAME", help: "the shared study's name" },
  {
    name: "out",
    kind: "string",
    metavar: "DIR",
    help: "output folder; its report files are replaced, so run it as often as you like",
    defaultText: "a new results/tune-report/<timestamp>",
  },
  HELP_FLAG,
];

/** `tune report`: the tables, plots and report.md of a shared study, from any machine. */
export const TUNE_REPORT_COMMAND: CommandSpec = {
  name: "tune report",
  description: `
Writes trials.csv, trials.json, the plots and report.md of a shared study (tune --storage URL
--study NAME) from its journal in PostgreSQL, while it runs or after; needs no GPU and no data.`,
  flags: TUNE_REPORT_FLAGS,
};

/** A shared study's settings (tune --storage). */
export interface SharedStudy {
  /** The PostgreSQL URL. */
  storage: string;
  /** The study's name (one tuner study per optimizer: NAME/adam, NAME/sgd). */
  study: string;
  /** Lease seconds. */
  leaseSeconds: number;
  /** Lost workers a trial survives. */
  maxFailures: number;
}

/** The `tune` command. */
export const TUNE_COMMAND: CommandSpec = {
  name: "tune",
  description: `
Experiment 3 of the study (Tables 3 and 4): samples configs of the tuning CNN (l1 in
{64,128,256}, lr in {1e-4,1e-3,1e-2}, batch size in {32,64,128}) and trains them under ASHA
(max_t 10, grace period 1, reduction factor 2), minimising the validation loss, for Adam and for
SGD. Writes trials.csv, trials.json, one plot per optimizer (every trial's validation curves,
stopped ones dashed) and report.md with the study's tables beside ours. Ctrl-C stops cleanly;
--resume DIR continues where it stopped. With --storage postgres://... --study NAME, every
machine running the same command works on one shared search (see the README: "Tuning on several
machines"); \`tune report --storage URL --study NAME\` writes its report from anywhere.`,
  flags: [...TUNE_FLAGS, ...RUN_FLAGS, ...DATA_FLAGS, HELP_FLAG],
};

/** What tune.json holds. */
export interface TuneFile {
  settings: TuneSettings;
  data: DataChoice;
  evalBatchSize: number;
}

/** The outcome of a tune run. */
export interface TuneOutcome {
  /** The run folder. */
  dir: string;
  /** Settings. */
  settings: TuneSettings;
  /** Rows per optimizer. */
  rows: Partial<Record<TuneOptimizer, TrialRow[]>>;
  /** Best row per optimizer. */
  best: Partial<Record<TuneOptimizer, TrialRow>>;
  /** True when Ctrl-C stopped it. */
  interrupted: boolean;
  /** Wall seconds. */
  seconds: number;
}

async function readGrid(dir: string): Promise<ResultGrid | undefined> {
  let json: {
    metric: string;
    mode: "min" | "max";
    trials: (TrialResult & { lastResult: MetricsJson | null; history: MetricsJson[] })[];
  };
  try {
    json = JSON.parse(await Deno.readTextFile(join(dir, "trials.json")));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  const trials = json.trials.map((t) => ({
    ...t,
    lastResult: t.lastResult ? decodeMetrics(t.lastResult) : undefined,
    history: t.history.map(decodeMetrics),
  }));
  return new ResultGrid(trials, { metric: json.metric, mode: json.mode });
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

function progressLine(
  optimizer: TuneOptimizer,
  p: TuneProgress,
  maxEpochs: number,
  metrics?: Record<string, number>,
): string {
  const c = p.counts;
  const done = c.TERMINATED + c.STOPPED + c.ERROR;
  let what: string;
  if (p.event.kind === "result") {
    const m = metrics ?? {};
    what = `${p.event.trialId} epoch ${p.event.iteration}: val loss ${m.loss?.toFixed(4)} acc ` +
      `${m.accuracy?.toFixed(4)} → ${p.event.decision}` +
      (p.event.decision === "STOP" && (p.event.iteration ?? 0) >= maxEpochs ? " (max_t)" : "");
  } else {
    what = `${p.event.trialId} ended: ${p.event.status}${
      p.event.error ? ` (${p.event.error})` : ""
    }`;
  }
  const best = p.best
    ? ` · best ${p.best.trialId} ${p.best.value.toFixed(4)} (batch ${p.best.config.batch_size}, ` +
      `l1 ${p.best.config.l1}, lr ${p.best.config.lr})`
    : "";
  return `[${optimizer}] ${what} · ${done}/${p.total} done (${c.STOPPED} stopped, ${c.RUNNING} ` +
    `running, ${c.ERROR} failed)${best} · ${formatDuration(p.elapsedSeconds)}`;
}

/** Writes trials.csv/json, the plots and report.md from the optimizers' run folders. */
async function writeTuneFiles(
  dir: string,
  setup: RunSetup,
  settings: TuneSettings,
  seconds: number,
  interrupted: boolean,
): Promise<TuneOutcome> {
  const grids: Partial<Record<TuneOptimizer, ResultGrid>> = {};
  const rows: Partial<Record<TuneOptimizer, TrialRow[]>> = {};
  const best: Partial<Record<TuneOptimizer, TrialRow>> = {};
  for (const opt of settings.optimizers) {
    const grid = await readGrid(join(dir, opt));
    if (!grid) continue;
    grids[opt] = grid;
    rows[opt] = trialRows(opt, grid);
    best[opt] = bestRow(opt, grid);
    await writeText(join(dir, plotFile(opt)), tunePlotSvg(opt, rows[opt]!, best[opt]));
  }
  await writeTrialFiles(dir, grids);
  await writeText(
    join(dir, "report.md"),
    tuneReport({
      settings,
      rows,
      best,
      env: setup.env,
      data: setup.data.prepared,
      seconds,
      interrupted,
    }),
  );
  return { dir, settings, rows, best, interrupted, seconds };
}

/**
 * Runs (or resumes) the tuning of every optimizer of `settings` in `dir` (default `setup.dir`):
 * one tuner run folder per optimizer, then the combined files.
 */
export async function runTune(
  settings: TuneSettings,
  setup: RunSetup,
  io: CommandIo,
  runDir: string = setup.dir,
  shared?: SharedStudy,
): Promise<TuneOutcome> {
  const started = performance.now();
  let interrupted = false;
  for (const optimizer of settings.optimizers) {
    const dir = join(runDir, optimizer);
    const resume = !shared && await exists(join(dir, "experiment.json"));
    io.err(
      `[${optimizer}] ${
        resume ? "resuming" : shared ? `study ${shared.study}/${optimizer}` : "tuning"
      }: ${settings.samples} samples, ASHA ` +
        `max_t ${settings.maxEpochs}, grace ${settings.gracePeriod}, rf ${settings.reductionFactor}`,
    );
    const latest = new Map<string, Record<string, number>>();
    const locks: number[] = [];
    const trainable = tuneTrainable({
      data: setup.data,
      optimizer,
      maxEpochs: settings.maxEpochs,
      seed: settings.seed,
      evalBatchSize: setup.evalBatchSize,
      progress: (trialId) =>
        new TrainingProgress({ mode: setup.progress, label: `[${optimizer} ${trialId}] ` }),
      onMetrics: (trialId, metrics) => latest.set(trialId, metrics),
    });
    const show = setup.progress !== "none";
    const common = {
      trainable,
      dir,
      signal: setup.interrupt.signal,
      ...(shared ? sharedOptions(shared, optimizer, io, locks) : {}),
      onProgress: (p: TuneProgress) => {
        if (show) {
          io.err(progressLine(optimizer, p, settings.maxEpochs, latest.get(p.event.trialId)));
        }
      },
    };
    try {
      await tune(
        resume ? { ...common, resume: true } : {
          ...common,
          paramSpace: SEARCH_SPACE,
          numSamples: settings.samples,
          metric: "loss",
          mode: "min",
          scheduler: new AshaScheduler({
            maxT: settings.maxEpochs,
            gracePeriod: settings.gracePeriod,
            reductionFactor: settings.reductionFactor,
          }),
          maxConcurrent: settings.concurrency,
          seed: settings.seed,
          meta: shared ? sharedMeta(optimizer, settings, setup.choice) : { optimizer },
        },
      );
    } catch (error) {
      if (!setup.interrupt.signal.aborted) throw error;
      interrupted = true;
    }
    if (locks.length > 0) io.err(`[${optimizer}] ${lockSummary(locks)}`);
    if (interrupted) break;
  }
  const seconds = (performance.now() - started) / 1000;
  return await writeTuneFiles(runDir, setup, settings, seconds, interrupted);
}

/** What every worker of a shared study must agree on besides the search (no concurrency). */
function sharedMeta(optimizer: TuneOptimizer, settings: TuneSettings, data: DataChoice): Json {
  return {
    optimizer,
    samples: settings.samples,
    maxEpochs: settings.maxEpochs,
    gracePeriod: settings.gracePeriod,
    reductionFactor: settings.reductionFactor,
    seed: settings.seed,
    data: {
      limit: data.limit ?? null,
      testLimit: data.testLimit ?? null,
      valSplit: data.valSplit,
      swap: data.swap,
      splitSeed: data.splitSeed,
    },
  };
}

function sharedOptions(
  shared: SharedStudy,
  optimizer: TuneOptimizer,
  io: CommandIo,
  locks: number[],
): Partial<TuneOptions> {
  let waiting = false;
  return {
    storage: shared.storage,
    study: `${shared.study}/${optimizer}`,
    leaseSeconds: shared.leaseSeconds,
    maxFailures: shared.maxFailures,
    onStorage: (event: StorageEvent) => {
      if (event.kind === "retry") {
        if (!waiting) io.err(`[${optimizer}] database unreachable (${event.error}); retrying`);
        waiting = true;
      } else if (event.kind === "lock") {
        if (waiting) io.err(`[${optimizer}] database back`);
        waiting = false;
        locks.push(event.heldMs);
      } else if (event.kind === "lost") {
        io.err(
          `[${optimizer}] ${event.trialId}: lease lost (another worker took it over); aborted here`,
        );
      } else if (event.attempt > 1) {
        io.err(
          `[${optimizer}] ${event.trialId}: taken over from a lost worker (attempt ` +
            `${event.attempt}, from epoch ${event.from})`,
        );
      }
    },
  };
}

/** How long this worker held the study's lock (SELECT ... FOR UPDATE to COMMIT). */
function lockSummary(times: readonly number[]): string {
  const sorted = [...times].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return `study lock held ${sorted.length} times: median ${at(0.5).toFixed(1)} ms, p95 ` +
    `${at(0.95).toFixed(1)} ms, max ${sorted.at(-1)!.toFixed(1)} ms`;
}

function settingsFromFlags(flags: Flags, concurrency: number): TuneSettings {
  const which = flags.string("optimizer");
  const settings: TuneSettings = {
    optimizers: which === "both" ? ["adam", "sgd"] : [which as TuneOptimizer],
    samples: flags.number("samples")!,
    maxEpochs: flags.number("max-epochs")!,
    gracePeriod: flags.number("grace-period")!,
    reductionFactor: flags.number("reduction-factor")!,
    concurrency,
    seed: flags.number("seed")!,
  };
  if (settings.gracePeriod > settings.maxEpochs) {
    throw new UsageError(
      `tune: --grace-period ${settings.gracePeriod}: expected an integer from 1 to --max-epochs ` +
        `(${settings.maxEpochs})`,
    );
  }
  return settings;
}

/** Prints the best configs and where the report is. */
export function printTuneOutcome(outcome: TuneOutcome, io: CommandIo): void {
  for (const opt of outcome.settings.optimizers) {
    const b = outcome.best[opt];
    io.out(
      b
        ? `tune/${opt}: best ${b.trialId} batch ${b.batchSize}, l1 ${b.l1}, lr ${b.lr}: val loss ` +
          `${b.loss?.toFixed(4)}, accuracy ${b.accuracy?.toFixed(4)}`
        : `tune/${opt}: no finished trial`,
    );
  }
  io.out(`Report: ${join(displayPath(outcome.dir), "report.md")}`);
}

/** Turns a storage error into the CLI's one-line errors (usage: exit 2; otherwise exit 1). */
function storageErrors<T>(work: () => Promise<T>): Promise<T> {
  return work().catch((error) => {
    if (error instanceof StorageError) {
      if (error.usage) throw new UsageError(error.message);
      throw Object.assign(new Error(error.message), { code: "ESTORAGE" });
    }
    throw error;
  });
}

/** Reads the shared-study flags (undefined without --storage); checks the database is reachable. */
async function sharedFromFlags(flags: Flags): Promise<SharedStudy | undefined> {
  const storage = flags.string("storage");
  const study = flags.string("study");
  if (storage === undefined) {
    const given = SHARED_FLAGS.filter((name) => flags.has(name));
    if (given.length) throw new UsageError(`tune: --${given[0]} needs --storage`);
    return undefined;
  }
  if (study === undefined) throw new UsageError("tune: --storage needs --study NAME");
  if (flags.has("resume")) {
    throw new UsageError(
      "tune: --resume does not apply with --storage: run the same command again to rejoin the study",
    );
  }
  await storageErrors(() => checkStorage(storage));
  return {
    storage,
    study,
    leaseSeconds: flags.number("lease-seconds")!,
    maxFailures: flags.number("max-failures")!,
  };
}

/** `postgres://host:port/db` without the user and password. */
function withoutCredentials(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return "(storage)";
  }
}

/** Runs `tune report`: a shared study's files, from its journal. */
export function tuneReportCommand(args: readonly string[], io: CommandIo): Promise<number> {
  return runCommand(TUNE_REPORT_COMMAND, args, io, async (flags) => {
    const storage = flags.string("storage"), study = flags.string("study");
    if (storage === undefined || study === undefined) {
      throw new UsageError("tune report: --storage URL and --study NAME are required");
    }
    return await storageErrors(async () => {
      const grids: Partial<Record<TuneOptimizer, ResultGrid>> = {};
      const metas: Record<string, unknown>[] = [];
      let found = false;
      for (const optimizer of ["adam", "sgd"] as const) {
        const studied = await readSharedStudy(storage, `${study}/${optimizer}`);
        if (!studied) continue;
        found = true;
        grids[optimizer] = studied.grid;
        metas.push(studied.meta as Record<string, unknown>);
      }
      if (!found) {
        throw new UsageError(`tune report: no study ${JSON.stringify(study)} in the storage`);
      }
      const claim = await prepareOutDir("tune-report", flags.string("out"), {
        overwrite: true,
      });
      try {
        const meta = metas[0] as unknown as TuneSettings & { data: Record<string, unknown> };
        const optimizers = (["adam", "sgd"] as const).filter((o) => grids[o]);
        const settings: TuneSettings = {
          optimizers: [...optimizers],
          samples: meta.samples,
          maxEpochs: meta.maxEpochs,
          gracePeriod: meta.gracePeriod,
          reductionFactor: meta.reductionFactor,
          concurrency: 0,
          seed: meta.seed,
        };
        const rows: Partial<Record<TuneOptimizer, TrialRow[]>> = {};
        const best: Partial<Record<TuneOptimizer, TrialRow>> = {};
        for (const opt of optimizers) {
          const grid = grids[opt]!;
          await Deno.mkdir(join(claim.dir, opt), { recursive: true });
          await writeJson(join(claim.dir, opt, "trials.json"), grid);
          rows[opt] = trialRows(opt, grid);
          best[opt] = bestRow(opt, grid);
          await writeText(join(claim.dir, plotFile(opt)), tunePlotSvg(opt, rows[opt]!, best[opt]));
        }
        await writeTrialFiles(claim.dir, grids);
        const seconds = optimizers.reduce(
          (sum, o) => sum + grids[o]!.trials.reduce((s, t) => s + t.seconds, 0),
          0,
        );
        await writeText(
          join(claim.dir, "report.md"),
          tuneReport({
            settings,
            rows,
            best,
            shared: { study, storage: withoutCredentials(storage), data: meta.data },
            seconds,
            interrupted: false,
          }),
        );
        const counts = optimizers.map((o) => {
          const c = grids[o]!.counts();
          return `${o}: ${c.TERMINATED + c.STOPPED + c.ERROR}/${grids[o]!.trials.length} done ` +
            `(${c.RUNNING} running, ${c.ERROR} failed)`;
        });
        io.out(`study ${study}: ${counts.join("; ")}`);
        printTuneOutcome(
          { dir: claim.dir, settings, rows, best, interrupted: false, seconds },
          io,
        );
        return 0;
      } finally {
        claim.release();
      }
    });
  });
}

/** Runs `tune` (or `tune report ...`); resolves to the exit code. */
export function tuneCommand(args: readonly string[], io: CommandIo): Promise<number> {
  if (args[0] === "report") return tuneReportCommand(args.slice(1), io);
  return runCommand(TUNE_COMMAND, args, io, async (flags) => {
    const shared = await sharedFromFlags(flags);
    const resumeDir = flags.string("resume");
    let file: TuneFile, dir: string;
    let startedAt: string | undefined;
    let claim: RunDirClaim | undefined;
    if (resumeDir !== undefined) {
      const others = TUNE_COMMAND.flags.map((f) => f.name)
        .filter((name) => flags.has(name) && !["resume", "progress"].includes(name));
      if (others.length) {
        throw new UsageError(
          `tune: --resume takes its settings from ${resumeDir}/tune.json; drop --${
            others.join(", --")
          }`,
        );
      }
      try {
        file = JSON.parse(await Deno.readTextFile(join(resumeDir, "tune.json")));
      } catch {
        throw new UsageError(
          `tune: --resume ${resumeDir}: no tune.json there (not a tune run folder)`,
        );
      }
      dir = resumeDir;
      startedAt = await writtenAt(join(resumeDir, "tune.json"));
    } else {
      const choice = dataChoice("tune", flags);
      if (choice.valSplit === 0) {
        throw new UsageError("tune: --val-split 0: tuning needs a validation set");
      }
      await init();
      const concurrency = flags.number("concurrency") ?? suggestMaxConcurrent(gpu().adapter);
      const settings = settingsFromFlags(flags, concurrency);
      claim = await prepareOutDir("tune", flags.string("out"), {
        overwrite: flags.boolean("overwrite"),
      });
      dir = claim.dir;
      file = { settings, data: choice, evalBatchSize: flags.number("eval-batch-size")! };
      try {
        await writeJson(join(dir, "tune.json"), file);
      } catch (error) {
        claim.release();
        throw error;
      }
    }
    const setup = await setupRun("tune", args, flags, io, {
      claim,
      outDir: dir,
      startedAt,
      choice: file.data,
      evalBatchSize: file.evalBatchSize,
      models: [{ model: "tuning-cnn" }],
    });
    try {
      const outcome = await storageErrors(() =>
        runTune(file.settings, setup, io, setup.dir, shared)
      );
      printTuneOutcome(outcome, io);
      if (outcome.interrupted || setup.interrupt.signal.aborted) {
        io.err(
          shared
            ? "Interrupted. Run the same command again to rejoin the study (its trials were " +
              "handed back to the other workers)."
            : `Interrupted. Continue with: deno run -A cli.ts tune --resume ${displayPath(dir)}`,
        );
        return INTERRUPTED_EXIT_CODE;
      }
      return 0;
    } finally {
      setup.dispose();
    }
  });
}
