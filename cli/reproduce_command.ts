/**
 * `reproduce`: every experiment of the study in order — compare, optimizers, tune, final (with
 * the tuned configs) — on data loaded once, each in its own folder, then one report with
 * Tables 1-5 beside the study's and every figure.
 *
 * @module
 */

import { join, relative } from "node:path";
import { gpu } from "../mod.ts";
import { suggestMaxConcurrent } from "../train/tune/mod.ts";
import type { FlagSpec } from "./args.ts";
import type { PreparedData } from "./data.ts";
import { environmentLines, type RunEnvironment } from "./environment.ts";
import { experimentTable } from "./experiment_report.ts";
import { type ExperimentResult, figureFile } from "./experiments.ts";
import { runExperiment } from "./experiment_runner.ts";
import { experimentExitCode, printExperimentOutcome } from "./experiment_command.ts";
import { experiment, type ExperimentName } from "./experiments.ts";
import { displayPath, writeJson, writeText } from "./files.ts";
import { DATA_FLAGS, EPOCHS_OVERRIDE, HELP_FLAG, RUN_FLAGS } from "./flags.ts";
import { type CommandIo, type CommandSpec, runCommand, setupRun } from "./harness.ts";
import { INTERRUPTED_EXIT_CODE } from "./interrupt.ts";
import { reportLateInterrupt } from "./unfinished.ts";
import { duration } from "./markdown.ts";
import { dataLines, LOSS_NOTE, quickRunNotice, SPLIT_NOTE } from "./report.ts";
import type { RunResult } from "./run_training.ts";
import { resolveResume, RESUME_FLAG, writeCommandFile } from "./resume.ts";
import { printTuneOutcome, runTune, type TuneFile, type TuneOutcome } from "./tune_command.ts";
import { bestConfigsTable, plotFile, type TuneSettings } from "./tune_report.ts";
import {
  runSeededExperiment,
  seedDataLines,
  type SeededExperimentResult,
  seededSectionLines,
  seedList,
  SEEDS_FLAG,
  splitFixed,
} from "./seeds.ts";
import { printSeededOutcome, seededExitCode } from "./experiment_command.ts";

const REPRODUCE_FLAGS: readonly FlagSpec[] = [
  {
    ...EPOCHS_OVERRIDE,
    help: "every run for N epochs, and tuning with max_t N, instead of the study's (quick runs)",
  },
  { name: "samples", kind: "integer", min: 1, default: 27, help: "tuning: configs per optimizer" },
];

/** The `reproduce` command. */
export const REPRODUCE_COMMAND: CommandSpec = {
  name: "reproduce",
  description: `
Runs every experiment of the study in order, on data loaded once: compare (Table 1, Fig. 6),
optimizers (Table 2, Fig. 7; its Adam run is compare's CNN-BN, same settings and seed), tune
(Tables 3-4), final with the tuned configs (Table 5, Fig. 8). Each writes its own folder and
report; report.md at the top gathers every table beside the study's, with the figures.
With --seeds, compare, optimizers and final run once per seed (tune searches once) and the report
gives mean ± sd over the seeds. Quick check: --epochs 1 --limit 2000.`,
  flags: [...REPRODUCE_FLAGS, SEEDS_FLAG, ...RUN_FLAGS, ...DATA_FLAGS, RESUME_FLAG, HELP_FLAG],
};

interface Stage {
  name: string;
  seconds: number;
}

function reproduceReport(init: {
  dir: string;
  env: RunEnvironment;
  data: PreparedData;
  experiments: ExperimentResult[];
  tune?: TuneOutcome;
  stages: Stage[];
  interrupted: boolean;
  epochs?: number;
  seed: number;
  seeded: SeededExperimentResult[];
  seeds?: number[];
  fixedSplit: boolean;
}): string {
  const { dir, experiments, tune } = init;
  const total = init.stages.reduce((sum, s) => sum + s.seconds, 0);
  const lines = [
    '# Reproducing "CNNs for image classification" (FashionMNIST) with wgtorch',
    "",
    ...environmentLines(init.env),
    ...(init.seeds ? seedDataLines(init.data, init.fixedSplit) : dataLines(init.data)),
    init.seeds
      ? `- Seeds: ${init.seeds.join(", ")} for compare, optimizers and final (weights, dropout, ` +
        `batch order, and the split unless --split-seed is given); tuning: one search per ` +
        `optimizer with seed ${init.seed} (trial i uses seed + i)`
      : `- Seed: ${init.seed} (weights, dropout, batch order; tuning trial i uses seed + i)`,
    `- Wall time${init.env.resumed ? " since resuming" : ""}: ${duration(total)} (${
      init.stages.map((s) => `${s.name} ${duration(s.seconds)}`).join(", ")
    })`,
    timeInRuns([...experiments, ...init.seeded.flatMap((s) => s.outcomes)], tune),
    ...(init.interrupted ? ["- **Interrupted** by Ctrl-C: what finished is below."] : []),
    "",
  ];
  const notice = quickRunNotice(init.data, init.epochs !== undefined);
  if (notice) lines.push(notice, "");
  const section = (name: ExperimentName) => experiments.find((e) => e.experiment.name === name);
  const emitSeeded = (name: ExperimentName) => {
    const outcome = init.seeded.find((e) => e.experiment.name === name);
    if (!outcome) return;
    const e = outcome.experiment;
    lines.push(
      `## ${e.table} — ${e.title}`,
      "",
      ...seededSectionLines(outcome, dir),
      "",
      ...e.notes.map((note) => `- ${note}`),
      "",
    );
  };
  const emit = (outcome: ExperimentResult | undefined) => {
    if (!outcome) return;
    const e = outcome.experiment;
    const folder = relative(dir, outcome.dir);
    lines.push(
      `## ${e.table} — ${e.title}`,
      "",
      experimentTable(outcome),
      "",
      ...e.notes.map((note) => `- ${note}`),
      ...Object.entries(outcome.reused).map(([name, from]) =>
        `- ${name}: same settings and seed as \`${relative(dir, from)}\`; its result is reused.`
      ),
      "",
      `Details: [${folder}/report.md](${folder}/report.md).`,
      "",
      ...e.runs.filter((run) => outcome.results.some((r) => r.spec.name === run.spec.name))
        .flatMap((run) => [`![${run.spec.title}](${folder}/${figureFile(run)})`, ""]),
    );
  };
  emit(section("compare"));
  emitSeeded("compare");
  emit(section("optimizers"));
  emitSeeded("optimizers");
  if (tune) {
    const folder = relative(dir, tune.dir);
    lines.push(
      "## Tables 3 and 4 — Experiment 3: hyperparameter tuning",
      "",
      bestConfigsTable(tune.settings.optimizers, tune.best),
      "",
      `Every trial beside the study's tables: [${folder}/report.md](${folder}/report.md).`,
      "",
      ...tune.settings.optimizers.flatMap((
        opt,
      ) => [`![${opt} trials](${folder}/${plotFile(opt)})`, ""]),
    );
  }
  emit(section("final"));
  emitSeeded("final"); // each seeded table carries the statistics note
  lines.push(LOSS_NOTE, "", SPLIT_NOTE, "");
  return lines.join("\n");
}

/**
 * The time each experiment's runs took, summed from their own records (so it holds across
 * `--resume`); a reused run counts once, tuning counts its trials.
 */
function timeInRuns(experiments: ExperimentResult[], tune: TuneOutcome | undefined): string {
  // With --seeds an experiment has one result per seed: summed under its name.
  const parts: { name: string; seconds: number }[] = [];
  for (const e of experiments) {
    const seconds = e.results.filter((r) => !(r.spec.name in e.reused))
      .reduce((sum, r) => sum + r.wallSeconds, 0);
    const part = parts.find((p) => p.name === e.experiment.name);
    if (part) part.seconds += seconds;
    else parts.push({ name: e.experiment.name, seconds });
  }
  if (tune) {
    const seconds = Object.values(tune.rows).flat()
      .reduce((sum, row) => sum + (row?.seconds ?? 0), 0);
    parts.splice(Math.min(2, parts.length), 0, { name: "tune (trials)", seconds });
  }
  const total = parts.reduce((sum, p) => sum + p.seconds, 0);
  return `- Time in runs: ${duration(total)} (${
    parts.map((p) => `${p.name} ${duration(p.seconds)}`).join(", ")
  })`;
}

/** Runs `reproduce`; resolves to the exit code. */
export function reproduceCommand(args: readonly string[], io: CommandIo): Promise<number> {
  return runCommand(REPRODUCE_COMMAND, args, io, async (given) => {
    const resumed = await resolveResume("reproduce", REPRODUCE_COMMAND.flags, given);
    const flags = resumed?.flags ?? given;
    const setup = await setupRun("reproduce", resumed?.args ?? args, flags, io, {
      outDir: resumed?.dir,
      startedAt: resumed?.started,
      models: [{ model: "mlp" }, { model: "cnn" }, { model: "cnn-bn" }, { model: "tuning-cnn" }],
    });
    const epochs = flags.number("epochs");
    const seed = flags.number("seed")!;
    const seeds = seedList("reproduce", flags);
    const experiments: ExperimentResult[] = [];
    const seeded: SeededExperimentResult[] = [];
    const stages: Stage[] = [];
    const reuse = new Map<string, RunResult>();
    let tune: TuneOutcome | undefined;
    let interrupted = false;
    let code = 0;
    const stage = async <T>(name: string, body: () => Promise<T>): Promise<T> => {
      io.err(`== ${name} ==`);
      const started = performance.now();
      try {
        return await body();
      } finally {
        stages.push({ name, seconds: (performance.now() - started) / 1000 });
      }
    };
    const runOne = async (name: ExperimentName, tuned?: TuneOutcome) => {
      const configs = tuned
        ? Object.fromEntries(
          Object.entries(tuned.best).map((
            [opt, b],
          ) => [opt, { l1: b.l1, lr: b.lr, batchSize: b.batchSize }]),
        )
        : undefined;
      if (seeds) {
        const outcome = await stage(
          name,
          () =>
            runSeededExperiment(
              (s) => experiment(name, { epochs, seed: s, tuned: configs }),
              seeds,
              setup,
              io,
              {
                dir: join(setup.dir, name),
                fixedSplit: splitFixed(flags),
                reuse,
                resume: resumed !== undefined,
                command: "reproduce",
              },
            ),
        );
        seeded.push(outcome);
        printSeededOutcome(outcome, io);
        code = Math.max(code, seededExitCode(outcome) === 1 ? 1 : 0);
        interrupted ||= outcome.interrupted;
        return;
      }
      const outcome = await stage(
        name,
        () =>
          runExperiment(experiment(name, { epochs, seed, tuned: configs }), setup, io, {
            dir: join(setup.dir, name),
            reuse,
            resume: resumed !== undefined,
            command: "reproduce",
          }),
      );
      experiments.push(outcome);
      printExperimentOutcome(outcome, io);
      code = Math.max(code, experimentExitCode(outcome) === 1 ? 1 : 0);
      interrupted ||= outcome.interrupted;
    };
    try {
      if (!resumed) await writeCommandFile(setup.dir, "reproduce", args);
      await runOne("compare");
      if (!interrupted) await runOne("optimizers");
      if (!interrupted) {
        const settings: TuneSettings = {
          optimizers: ["adam", "sgd"],
          samples: flags.number("samples")!,
          maxEpochs: epochs ?? 10,
          gracePeriod: 1,
          reductionFactor: 2,
          concurrency: suggestMaxConcurrent(gpu().adapter),
          seed,
        };
        const dir = join(setup.dir, "tune");
        await Deno.mkdir(dir, { recursive: true });
        const file: TuneFile = {
          settings,
          data: setup.choice,
          evalBatchSize: setup.evalBatchSize,
        };
        await writeJson(join(dir, "tune.json"), file);
        tune = await stage("tune", () => runTune(settings, setup, io, dir));
        printTuneOutcome(tune, io);
        interrupted ||= tune.interrupted;
      }
      if (!interrupted) await runOne("final", tune);
      interrupted ||= setup.interrupt.signal.aborted;
      await writeText(
        join(setup.dir, "report.md"),
        reproduceReport({
          dir: setup.dir,
          env: setup.env,
          data: setup.data.prepared,
          experiments,
          tune,
          stages,
          interrupted,
          epochs,
          seed,
          seeded,
          seeds,
          fixedSplit: splitFixed(flags),
        }),
      );
      io.out(`Report: ${join(displayPath(setup.dir), "report.md")}`);
      const told = tune?.interrupted ||
        experiments.some((e) => e.results.some((r) => r.status === "interrupted")) ||
        seeded.some((s) =>
          s.outcomes.some((e) => e.results.some((r) => r.status === "interrupted"))
        );
      if (setup.interrupt.signal.aborted && !told) reportLateInterrupt(io, "reproduce", setup.dir);
      return interrupted || setup.interrupt.signal.aborted ? INTERRUPTED_EXIT_CODE : code;
    } finally {
      setup.dispose();
    }
  });
}
