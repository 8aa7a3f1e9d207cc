/**
 * `--seeds N` (or `--seeds 0,1,2`): every run repeated once per seed, each in its own sub-folder
 * (`seed-0/`, `seed-1/`, ...), then the spread over the seeds: mean, sample standard deviation,
 * min and max of test accuracy and mean NLL, the per-seed values beside the study's number,
 * paired t intervals for the study's comparisons, and figures with a mean curve and a min-max band.
 *
 * A seed sets the weights, dropout, batch order and (unless `--split-seed` is given) the split.
 * Resuming reads every finished seed back and continues at the first unfinished one.
 *
 * @module
 */

import { join, relative } from "node:path";
import { type Flags, type FlagSpec, UsageError } from "./args.ts";
import { seedCurvesSvg } from "./curves.ts";
import { GpuData, prepareData, type PreparedData } from "./data.ts";
import { environmentLines } from "./environment.ts";
import { type Experiment, type ExperimentResult, figureFile, STUDY_EPOCHS } from "./experiments.ts";
import { runExperiment } from "./experiment_runner.ts";
import { displayPath, writeJson, writeText } from "./files.ts";
import type { CommandIo, RunSetup } from "./harness.ts";
import { duration, fixed, table } from "./markdown.ts";
import { dataLines, LOSS_NOTE, quickRunNotice, SPLIT_NOTE, trainReport } from "./report.ts";
import {
  describeSpec,
  interruptedIfAborted,
  type RunResult,
  type RunSpec,
  runSummary,
  runTraining,
} from "./run_training.ts";
import { INTERRUPTED_EXIT_CODE } from "./interrupt.ts";
import { reportUnfinished } from "./unfinished.ts";
import { type PairedInterval, pairedTInterval, type SeedSpread, spread } from "./seed_stats.ts";
import { type StudyRow, TARGETS } from "./study.ts";

/** `--seeds N|LIST`. */
export const SEEDS_FLAG: FlagSpec = {
  name: "seeds",
  kind: "string",
  metavar: "N|LIST",
  help: "repeat every run once per seed, in sub-folders seed-<s>/: N seeds (--seed, --seed + 1, " +
    "...) or a list such as 0,1,2; each seed sets the weights, dropout, batch order and split " +
    "(unless --split-seed is given); reports give mean, sd, min/max over the seeds",
  defaultText: "one run with --seed",
};

/** How the statistics are computed, for reports and `summary.json`. */
export const SEED_STATS_NOTE: string =
  "sd: sample standard deviation over the seeds (divides by n - 1); min/max over the seeds; " +
  "intervals: 95% paired t intervals of the difference of means, pairs = runs with the same seed " +
  "(t quantile with n - 1 degrees of freedom).";

/** The seeds `--seeds` asks for, or undefined without it. */
export function seedList(command: string, flags: Flags): number[] | undefined {
  if (!flags.declared("seeds") || !flags.has("seeds")) return undefined;
  const text = flags.string("seeds")!.trim();
  const bad = (why: string) =>
    new UsageError(
      `${command}: --seeds ${text}: ${why}; give a count (--seeds 3: seeds --seed, --seed + 1, ` +
        "--seed + 2) or a list of distinct seeds (--seeds 0,1,2)",
    );
  if (/^\d+$/.test(text)) {
    const count = Number(text);
    if (count < 1 || count > 1000) throw bad("the count must be 1 to 1000");
    const base = flags.number("seed") ?? 0;
    if (base + count > 2 ** 32) throw bad("the seeds would pass 2^32 - 1");
    return Array.from({ length: count }, (_, i) => base + i);
  }
  const parts = text.split(",").map((s) => s.trim());
  if (!parts.every((s) => /^\d+$/.test(s) && Number(s) < 2 ** 32)) {
    throw bad("each seed must be an integer in [0, 2^32)");
  }
  const seeds = parts.map(Number);
  if (new Set(seeds).size !== seeds.length) throw bad("a seed is repeated");
  if (flags.has("seed")) {
    throw new UsageError(`${command}: --seed does not apply with a list of --seeds (${text})`);
  }
  return seeds;
}

/** The data lines of a seeded report: the split line names each run's seed unless it is fixed. */
export function seedDataLines(data: PreparedData, fixedSplit: boolean): string[] {
  return dataLines(data).map((line) =>
    fixedSplit ? line : line.replace(/split seed \d+/, "split seed = each run's seed")
  );
}

/** The folder of seed `seed` inside `dir`. */
export function seedDir(dir: string, seed: number): string {
  return join(dir, `seed-${seed}`);
}

/** Whether `--split-seed` holds the split fixed across seeds. */
export function splitFixed(flags: Flags): boolean {
  return flags.has("split-seed");
}

/**
 * Runs `body` with the data split by `seed` (or the command's own data when the split is fixed
 * or already split that way); data prepared here is freed afterwards.
 */
export async function withSeedData<T>(
  setup: RunSetup,
  seed: number,
  fixedSplit: boolean,
  io: CommandIo,
  body: (data: GpuData) => Promise<T>,
): Promise<T> {
  if (fixedSplit || setup.choice.splitSeed === seed) return await body(setup.data);
  const prepared = await prepareData({ ...setup.choice, splitSeed: seed }, io.err);
  const data = new GpuData(prepared);
  try {
    return await body(data);
  } finally {
    data.dispose();
  }
}

/** Test metrics of one row over the seeds (completed runs only). */
export interface SeedMetrics {
  /** Test accuracy. */
  accuracy: SeedSpread;
  /** Test mean NLL per sample. */
  meanNll: SeedSpread;
  /** The study's loss scaling (mean NLL / batch size). */
  studyLoss: SeedSpread;
}

/** The spread of `results`' test metrics, or null unless every run completed. */
export function seedMetrics(results: readonly (RunResult | undefined)[]): SeedMetrics | null {
  if (results.length === 0 || results.some((r) => !r?.test)) return null;
  const tests = results.map((r) => r!.test!);
  return {
    accuracy: spread(tests.map((t) => t.accuracy)),
    meanNll: spread(tests.map((t) => t.loss)),
    studyLoss: spread(tests.map((t) => t.studyLoss)),
  };
}

/** `0.8463 ± 0.0042`. */
export function meanSd(s: SeedSpread | undefined): string {
  if (!s) return "—";
  return s.sd === null ? fixed(s.mean) : `${fixed(s.mean)} ± ${fixed(s.sd)}`;
}

/** `0.8416 – 0.8500`. */
function minMax(s: SeedSpread | undefined): string {
  return s ? `${fixed(s.min)} – ${fixed(s.max)}` : "—";
}

/** `0.8416, 0.8500`. */
function perSeed(s: SeedSpread | undefined): string {
  return s ? s.values.map((v) => fixed(v)).join(", ") : "—";
}

/** One row of a seeded table. */
export interface SeedRow {
  /** Row label. */
  label: string;
  /** The study's row, if any. */
  study?: StudyRow;
  /** The metrics (null: not every seed completed). */
  metrics: SeedMetrics | null;
  /** The accuracy target, if any. */
  target?: number;
  /** Seeds that completed / all. */
  done: string;
}

/** The table of `rows`: the study's numbers beside mean ± sd, min-max and per-seed values. */
export function seedTable(header: string, rows: readonly SeedRow[]): string {
  return table(
    [
      header,
      "study accuracy",
      "our accuracy: mean ± sd",
      "min – max",
      "per seed",
      "target (mean)",
      "study loss",
      "our loss (study scaling): mean ± sd",
      "our mean NLL: mean ± sd",
      "min – max",
      "per seed",
      "seeds done",
    ],
    rows.map((row) => {
      const m = row.metrics;
      return [
        row.label,
        row.study ? String(row.study.accuracy) : "—",
        meanSd(m?.accuracy),
        minMax(m?.accuracy),
        perSeed(m?.accuracy),
        row.target === undefined
          ? "—"
          : m
          ? `≥ ${row.target} ${m.accuracy.mean >= row.target ? "✓" : "✗"}`
          : `≥ ${row.target}`,
        row.study ? String(row.study.loss) : "—",
        meanSd(m?.studyLoss),
        meanSd(m?.meanNll),
        minMax(m?.meanNll),
        perSeed(m?.meanNll),
        row.done,
      ];
    }),
  );
}

/** A difference of means between two rows, with its paired t interval. */
export interface SeedComparison {
  /** The row that should be better. */
  a: string;
  /** The row it is compared with. */
  b: string;
  /** mean(a) - mean(b) of test accuracy, 95% paired t interval. */
  accuracy: PairedInterval;
  /** mean(a) - mean(b) of test mean NLL, 95% paired t interval. */
  meanNll: PairedInterval;
  /** The study's difference of accuracies, when both rows have one. */
  studyAccuracy: number | null;
}

/** The comparisons of the study's Tables 1 and 2, as run names (a vs b). */
export const COMPARISONS: Readonly<Record<string, readonly (readonly [string, string])[]>> = {
  compare: [["cnn", "mlp"], ["cnn-bn", "cnn"], ["cnn-bn", "mlp"]],
  optimizers: [["adam", "sgd"]],
};

/** Paired intervals of the `pairs` whose rows completed with every seed. */
export function seedComparisons(
  pairs: readonly (readonly [string, string])[],
  rows: ReadonlyMap<string, { label: string; metrics: SeedMetrics | null; study?: StudyRow }>,
): SeedComparison[] {
  const out: SeedComparison[] = [];
  for (const [a, b] of pairs) {
    const ra = rows.get(a), rb = rows.get(b);
    if (!ra?.metrics || !rb?.metrics) continue;
    out.push({
      a: ra.label,
      b: rb.label,
      accuracy: pairedTInterval(ra.metrics.accuracy.values, rb.metrics.accuracy.values),
      meanNll: pairedTInterval(ra.metrics.meanNll.values, rb.metrics.meanNll.values),
      studyAccuracy: ra.study && rb.study
        ? Math.round((ra.study.accuracy - rb.study.accuracy) * 1e6) / 1e6
        : null,
    });
  }
  return out;
}

function signed(value: number | null): string {
  if (value === null) return "—";
  return `${value >= 0 ? "+" : "−"}${Math.abs(value).toFixed(4)}`;
}

function interval(ci: PairedInterval): string {
  return ci.low === null ? "— (one seed)" : `[${signed(ci.low)}, ${signed(ci.high)}]`;
}

/** What an interval says: whether it excludes 0. */
function verdict(ci: PairedInterval, better: "higher" | "lower"): string {
  if (ci.low === null || ci.high === null) return "one seed: no interval";
  if (ci.low > 0) return better === "higher" ? "a better (CI above 0)" : "a worse (CI above 0)";
  if (ci.high < 0) return better === "higher" ? "a worse (CI below 0)" : "a better (CI below 0)";
  return "not resolved (CI holds 0)";
}

/** The comparisons as a Markdown table and its note. */
export function comparisonLines(comparisons: readonly SeedComparison[]): string[] {
  if (comparisons.length === 0) return [];
  return [
    table(
      [
        "a vs b",
        "study: accuracy a − b",
        "ours: accuracy a − b (mean)",
        "95% CI (paired t)",
        "accuracy",
        "ours: mean NLL a − b",
        "95% CI (paired t)",
        "mean NLL",
      ],
      comparisons.map((c) => [
        `${c.a} vs ${c.b}`,
        signed(c.studyAccuracy),
        signed(c.accuracy.difference),
        interval(c.accuracy),
        verdict(c.accuracy, "higher"),
        signed(c.meanNll.difference),
        interval(c.meanNll),
        verdict(c.meanNll, "lower"),
      ]),
    ),
    "",
    `Differences of means over ${comparisons[0].accuracy.n} seeds, a − b. Each interval is a ` +
    "95% paired t interval: the pairs are a's and b's runs with the same seed (same split and " +
    `batch order), d = a − b, mean(d) ± t(0.975, n − 1) · sd(d) / √n` +
    (comparisons[0].accuracy.t !== null
      ? `, t(0.975, ${comparisons[0].accuracy.df}) = ${comparisons[0].accuracy.t.toFixed(6)}`
      : "") +
    '. A claim such as "a beats b" holds at that level when the interval excludes 0.',
  ];
}

/** What a seeded experiment produced. */
export interface SeededExperimentResult {
  /** The experiment of the first seed (titles, rows). */
  experiment: Experiment;
  /** The folder holding `seed-<s>/`. */
  dir: string;
  /** The seeds asked for. */
  seeds: number[];
  /** One outcome per seed that started, in order. */
  outcomes: ExperimentResult[];
  /** The rows' metrics and comparisons. */
  rows: SeedRow[];
  /** Paired intervals (Tables 1 and 2). */
  comparisons: SeedComparison[];
  /** True when Ctrl-C stopped it. */
  interrupted: boolean;
}

/** Runs experiment `make(seed)` for every seed in `dir/seed-<s>/`, then the combined files. */
export async function runSeededExperiment(
  make: (seed: number) => Experiment,
  seeds: readonly number[],
  setup: RunSetup,
  io: CommandIo,
  options: {
    dir?: string;
    fixedSplit: boolean;
    reuse?: Map<string, RunResult>;
    notes?: string[];
    resume?: boolean;
    command?: string;
  },
): Promise<SeededExperimentResult> {
  const dir = options.dir ?? setup.dir;
  const outcomes: ExperimentResult[] = [];
  let interrupted = false;
  for (const [i, seed] of seeds.entries()) {
    if (setup.interrupt.signal.aborted) {
      interrupted = true;
      break;
    }
    io.err(`-- ${make(seed).name}: seed ${seed} (${i + 1} of ${seeds.length}) --`);
    const outcome = await withSeedData(
      setup,
      seed,
      options.fixedSplit,
      io,
      (data) =>
        runExperiment(make(seed), { ...setup, data }, io, {
          dir: seedDir(dir, seed),
          reuse: options.reuse,
          notes: options.notes,
          resume: options.resume,
          command: options.command,
        }),
    );
    outcomes.push(outcome);
    if (outcome.interrupted) {
      interrupted = true;
      break;
    }
  }
  interrupted ||= setup.interrupt.signal.aborted;
  const experiment = make(seeds[0]);
  const byName = new Map<string, SeedRow & { study?: StudyRow }>();
  const rows = experiment.runs.map((run) => {
    const results = outcomes.map((o) => o.results.find((r) => r.spec.name === run.spec.name));
    const complete = outcomes.length === seeds.length ? results : [];
    const row: SeedRow = {
      label: run.study.row,
      study: run.study,
      metrics: seedMetrics(complete),
      target: TARGETS[`${experiment.name}/${run.spec.name}`],
      done: `${results.filter((r) => r?.test).length}/${seeds.length}`,
    };
    byName.set(run.spec.name, row);
    return row;
  });
  const comparisons = seedComparisons(COMPARISONS[experiment.name] ?? [], byName);
  const result: SeededExperimentResult = {
    experiment,
    dir,
    seeds: [...seeds],
    outcomes,
    rows,
    comparisons,
    interrupted,
  };
  await writeSeededFiles(result, setup, options.fixedSplit, options.notes ?? []);
  return result;
}

/** The combined files of a seeded experiment: summary.json, report.md and the band figures. */
async function writeSeededFiles(
  result: SeededExperimentResult,
  setup: RunSetup,
  fixedSplit: boolean,
  notes: string[],
): Promise<void> {
  const { experiment, dir, outcomes, seeds } = result;
  for (const run of experiment.runs) {
    const histories = outcomes.map((o) => o.results.find((r) => r.spec.name === run.spec.name))
      .filter((r) => r !== undefined).map((r) => r.history);
    if (histories.length > 0) {
      await writeText(
        join(dir, figureFile(run)),
        seedCurvesSvg(histories, run.spec.title),
      );
    }
  }
  await writeJson(join(dir, "summary.json"), {
    command: experiment.name,
    title: experiment.title,
    seeds,
    splitSeeds: fixedSplit ? seeds.map(() => setup.choice.splitSeed) : seeds,
    statistics: SEED_STATS_NOTE,
    environment: setup.env,
    data: { source: setup.data.prepared.source, split: setup.data.prepared.split },
    interrupted: result.interrupted,
    table: experiment.runs.map((run, i) => ({
      row: run.study.row,
      name: run.spec.name,
      study: { loss: run.study.loss, accuracy: run.study.accuracy },
      studyEpochs: STUDY_EPOCHS[`${experiment.name}/${run.spec.name}`],
      seedsDone: result.rows[i].done,
      ours: result.rows[i].metrics,
    })),
    comparisons: result.comparisons,
    runs: outcomes.map((o, i) => ({
      seed: seeds[i],
      dir: relative(dir, o.dir),
      interrupted: o.interrupted,
      results: o.results.map((r) => ({
        name: r.spec.name,
        status: r.status,
        test: r.test
          ? { accuracy: r.test.accuracy, meanNll: r.test.loss, studyLoss: r.test.studyLoss }
          : null,
      })),
    })),
  });
  const cut = experiment.runs.some((run) =>
    run.spec.epochs < STUDY_EPOCHS[`${experiment.name}/${run.spec.name}`]
  );
  const lines = [
    `# ${experiment.title}: the study's ${experiment.table} and ${experiment.figure}, ` +
    `${seeds.length} seeds`,
    "",
    ...environmentLines(setup.env),
    ...seedDataLines(setup.data.prepared, fixedSplit),
    `- Seeds: ${seeds.join(", ")} (weights, dropout, batch order${
      fixedSplit ? `; split seed ${setup.choice.splitSeed} for all` : ", and the split"
    })`,
    ...(result.interrupted
      ? ["- **Interrupted** by Ctrl-C: the statistics cover only rows every seed finished."]
      : []),
    "",
  ];
  const notice = quickRunNotice(setup.data.prepared, cut);
  if (notice) lines.push(notice, "");
  lines.push(...seededSectionLines(result, dir), "");
  for (const note of [...experiment.notes, ...notes]) lines.push(`- ${note}`);
  lines.push(
    "",
    LOSS_NOTE,
    "",
    SPLIT_NOTE,
    "",
    "## Files",
    "",
    "- `report.md` (this file), `summary.json` (the statistics, the comparisons and every seed's " +
      "test numbers, for programs)",
    `- ${
      experiment.runs.map((run) => `\`${figureFile(run)}\``).join(", ")
    }: mean curves with a min-max band over the seeds`,
    "- `seed-<s>/`: each seed's experiment as a single run writes it (report, summary, history, " +
      "figures, and a folder per run with its weights and checkpoint)",
    "",
  );
  await writeText(join(dir, "report.md"), lines.join("\n"));
}

/** The table, the comparisons, the figures and the per-seed links of a seeded experiment. */
export function seededSectionLines(result: SeededExperimentResult, from: string): string[] {
  const { experiment, outcomes } = result;
  const folder = relative(from, result.dir);
  const prefix = folder ? `${folder}/` : "";
  const lines = [
    `### ${experiment.table}: test set over ${result.seeds.length} seeds, the study beside ours`,
    "",
    seedTable(experiment.rowHeader, result.rows),
    "",
    `${SEED_STATS_NOTE} *target*: this project's bar for the mean accuracy (full runs).`,
    "",
  ];
  if (result.comparisons.length > 0) {
    lines.push(
      `### ${experiment.table}: which differences are real`,
      "",
      ...comparisonLines(result.comparisons),
      "",
    );
  }
  lines.push(
    `### ${experiment.figure}: mean curves over the seeds, min-max band`,
    "",
    ...experiment.runs.filter((run) =>
      outcomes.some((o) => o.results.some((r) => r.spec.name === run.spec.name))
    ).flatMap((run) => [`![${run.spec.title}](${prefix}${figureFile(run)})`, ""]),
    `Per seed: ${
      outcomes.map((o, i) =>
        `[seed ${result.seeds[i]}](${prefix}${relative(result.dir, o.dir)}/report.md)`
      ).join(", ")
    }.`,
  );
  return lines;
}

/**
 * `train --seeds`: `spec` once per seed in `seed-<s>/` (each with its own summary.json and
 * report.md, as a single run writes them), then the spread over the seeds at the top: summary.json,
 * report.md and curves.svg (mean with a min-max band). Resolves to the exit code.
 */
export async function runSeededTrain(
  spec: RunSpec,
  seeds: readonly number[],
  setup: RunSetup,
  io: CommandIo,
  options: {
    fixedSplit: boolean;
    resume: boolean;
    study?: { table: string; row: StudyRow; epochs: number };
  },
): Promise<number> {
  const results: RunResult[] = [];
  let code = 0;
  for (const [i, seed] of seeds.entries()) {
    if (setup.interrupt.signal.aborted) break;
    const dir = seedDir(setup.dir, seed);
    await Deno.mkdir(dir, { recursive: true });
    const seeded = { ...spec, seed };
    io.err(
      `-- seed ${seed} (${i + 1} of ${seeds.length}): ${spec.title}, ${spec.epochs} epoch${
        spec.epochs === 1 ? "" : "s"
      } --`,
    );
    const result = await withSeedData(setup, seed, options.fixedSplit, io, async (data) => {
      const trained = await runTraining(seeded, {
        data,
        dir,
        evalBatchSize: setup.evalBatchSize,
        progress: setup.progress,
        signal: setup.interrupt.signal,
        log: io.err,
        resume: options.resume,
      });
      const outcome = interruptedIfAborted(trained, setup.interrupt.signal);
      await writeJson(join(dir, "summary.json"), {
        command: "train",
        ...runSummary(outcome),
        environment: setup.env,
        data: { source: data.prepared.source, split: data.prepared.split },
        study: options.study ?? null,
      });
      await writeText(
        join(dir, "report.md"),
        trainReport({ result: outcome, env: setup.env, data: data.prepared, study: options.study }),
      );
      return outcome;
    });
    results.push(result);
    if (result.test) {
      io.err(
        `[seed ${seed}] test accuracy ${result.test.accuracy.toFixed(4)}, mean NLL ` +
          `${result.test.loss.toFixed(4)}`,
      );
    }
    if (result.status !== "completed") {
      if (result.error) io.err(`error: ${result.error}`);
      reportUnfinished(result, io, "train", setup.dir);
      if (result.status === "interrupted") break;
      code = 1;
    }
  }
  const interrupted = setup.interrupt.signal.aborted ||
    results.some((r) => r.status === "interrupted");
  const complete = results.length === seeds.length && results.every((r) => r.test);
  const metrics = complete ? seedMetrics(results) : null;
  const { seed: _seed, ...common } = spec;
  const top = setup.dir;
  if (results.length > 0) {
    await writeText(
      join(top, "curves.svg"),
      seedCurvesSvg(results.map((r) => r.history), spec.title),
    );
  }
  await writeJson(join(top, "summary.json"), {
    command: "train",
    status: interrupted ? "interrupted" : complete ? "completed" : "incomplete",
    seeds,
    splitSeeds: options.fixedSplit ? seeds.map(() => setup.choice.splitSeed) : seeds,
    statistics: SEED_STATS_NOTE,
    spec: common,
    test: metrics,
    study: options.study ?? null,
    environment: setup.env,
    data: { source: setup.data.prepared.source, split: setup.data.prepared.split },
    runs: results.map((r) => ({
      seed: r.spec.seed,
      dir: relative(top, r.dir),
      status: r.status,
      epochsDone: r.history.length,
      test: r.test
        ? { accuracy: r.test.accuracy, meanNll: r.test.loss, studyLoss: r.test.studyLoss }
        : null,
      wallSeconds: r.wallSeconds,
    })),
  });
  const study = options.study;
  const lines = [
    `# wgtorch train: ${spec.title}, ${seeds.length} seeds`,
    "",
    ...environmentLines(setup.env),
    ...seedDataLines(setup.data.prepared, options.fixedSplit),
    `- Run: ${describeSpec(spec).replace(/, seed \d+$/, "")}`,
    `- Seeds: ${seeds.join(", ")} (weights, dropout, batch order${
      options.fixedSplit ? `; split seed ${setup.choice.splitSeed} for all` : ", and the split"
    })`,
    `- Status: ${
      interrupted
        ? "**interrupted** (Ctrl-C)"
        : complete
        ? "completed"
        : "incomplete (a seed diverged)"
    }, ${results.filter((r) => r.test).length}/${seeds.length} seeds done, wall time ${
      duration(results.reduce((sum, r) => sum + r.wallSeconds, 0))
    }`,
    "",
  ];
  const notice = quickRunNotice(setup.data.prepared, study ? spec.epochs < study.epochs : false);
  if (notice) lines.push(notice, "");
  lines.push(
    "## Test set over the seeds",
    "",
    seedTable("", [{
      label: study ? `${study.table}, ${study.row.row}` : "this run",
      study: study?.row,
      metrics,
      done: `${results.filter((r) => r.test).length}/${seeds.length}`,
    }]),
    "",
    SEED_STATS_NOTE.replace(/; intervals:.*$/, "."),
    "",
    study
      ? `The study's row is ${study.table}'s ${study.row.row} (same model and settings).`
      : "The study has no run with these settings.",
    "",
    "## Curves",
    "",
    "![mean loss and accuracy per epoch, min-max band over the seeds](curves.svg)",
    "",
    "## Per seed",
    "",
    table(
      ["seed", "status", "test accuracy", "mean NLL", "epochs", "wall time", "report"],
      results.map((r) => [
        r.spec.seed,
        r.status,
        fixed(r.test?.accuracy),
        fixed(r.test?.loss),
        `${r.history.length}/${r.spec.epochs}`,
        duration(r.wallSeconds),
        `[${relative(top, r.dir)}/report.md](${relative(top, r.dir)}/report.md)`,
      ]),
    ),
    "",
    LOSS_NOTE,
    "",
    SPLIT_NOTE,
    "",
  );
  await writeText(join(top, "report.md"), lines.join("\n"));
  if (interrupted) {
    if (!results.some((r) => r.status === "interrupted")) {
      io.err(`Interrupted between seeds; the run folder is ${displayPath(top)}`);
      io.err(`  continue:    deno run -A cli.ts train --resume ${displayPath(top)}`);
    }
    io.err(`Report: ${join(displayPath(top), "report.md")}`);
    return INTERRUPTED_EXIT_CODE;
  }
  if (metrics) {
    io.out(
      `Test accuracy over ${seeds.length} seeds: mean ${metrics.accuracy.mean.toFixed(4)}, sd ` +
        `${fixed(metrics.accuracy.sd)} (min ${metrics.accuracy.min.toFixed(4)}, max ` +
        `${metrics.accuracy.max.toFixed(4)}); mean NLL ${metrics.meanNll.mean.toFixed(4)} ± ` +
        `${fixed(metrics.meanNll.sd)}`,
    );
  }
  io.out(
    `Results in ${displayPath(top)}: report.md, summary.json, curves.svg, and seed-<s>/ per seed`,
  );
  return code;
}
