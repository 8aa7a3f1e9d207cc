/**
 * `compare`, `optimizers` and `final`: the study's Experiments 1, 2 and 4, each run end to end.
 *
 * @module
 */

import { join } from "node:path";
import type { FlagSpec } from "./args.ts";
import { experiment, type ExperimentName } from "./experiments.ts";
import type { ExperimentResult } from "./experiments.ts";
import { runExperiment } from "./experiment_runner.ts";
import { displayPath } from "./files.ts";
import { DATA_FLAGS, EPOCHS_OVERRIDE, HELP_FLAG, RUN_FLAGS } from "./flags.ts";
import { type CommandIo, type CommandSpec, runCommand, setupRun } from "./harness.ts";
import { INTERRUPTED_EXIT_CODE } from "./interrupt.ts";
import { resolveResume, RESUME_FLAG, writeCommandFile } from "./resume.ts";
import { readTunedConfigs } from "./tune_results.ts";
import { reportLateInterrupt } from "./unfinished.ts";
import {
  runSeededExperiment,
  type SeededExperimentResult,
  seedList,
  SEEDS_FLAG,
  splitFixed,
} from "./seeds.ts";

const TUNE_FLAG: FlagSpec = {
  name: "tune",
  kind: "string",
  metavar: "DIR",
  help: "take l1, lr and batch size from the best trials of this finished `tune` run",
  defaultText: "the study's configs",
};

const DESCRIPTIONS: Record<ExperimentName, string> = {
  compare: `
Experiment 1 of the study (Table 1, Fig. 6): trains the MLP, the CNN and CNN-BN with Adam
(lr 0.01, batch 128, 10 epochs), evaluates each on the test set, and writes the study's table
beside ours, one figure per model (loss and accuracy, train vs validation) and report.md.`,
  optimizers: `
Experiment 2 of the study (Table 2, Fig. 7): CNN-BN trained with Adam and with plain SGD
(lr 0.01, batch 128, 10 epochs), the study's table beside ours, figures and report.md.`,
  final: `
Experiment 4 of the study (Table 5, Fig. 8): the tuning CNN (l1 64) trained with Adam (batch 128,
lr 0.01, 30 epochs, StepLR(10, 0.1)) and SGD (batch 64, lr 0.01, 60 epochs, StepLR(35, 0.1)),
or with the best configs of a finished tune run (--tune DIR); table, figures and report.md.`,
};

/** The command spec of experiment `name`. */
function experimentCommandSpec(name: ExperimentName): CommandSpec {
  return {
    name,
    description: DESCRIPTIONS[name],
    flags: [
      EPOCHS_OVERRIDE,
      ...(name === "final" ? [TUNE_FLAG] : []),
      SEEDS_FLAG,
      ...RUN_FLAGS,
      ...DATA_FLAGS,
      RESUME_FLAG,
      HELP_FLAG,
    ],
  };
}

/** Exit code of a finished experiment: 130 interrupted, 1 if a run diverged, else 0. */
export function experimentExitCode(outcome: ExperimentResult): number {
  if (outcome.interrupted) return INTERRUPTED_EXIT_CODE;
  return outcome.results.some((r) => r.status !== "completed") ? 1 : 0;
}

/** Prints the table's gist and where the report is. */
export function printExperimentOutcome(outcome: ExperimentResult, io: CommandIo): void {
  for (const result of outcome.results) {
    const test = result.test;
    io.out(
      `${outcome.experiment.name}/${result.spec.name}: ` +
        (test
          ? `test accuracy ${test.accuracy.toFixed(4)}, mean NLL ${test.loss.toFixed(4)}`
          : result.status),
    );
  }
  io.out(`Report: ${join(displayPath(outcome.dir), "report.md")}`);
}

/** Exit code of a seeded experiment: 130 interrupted, 1 if a run diverged, else 0. */
export function seededExitCode(outcome: SeededExperimentResult): number {
  if (outcome.interrupted) return INTERRUPTED_EXIT_CODE;
  return Math.max(0, ...outcome.outcomes.map(experimentExitCode));
}

/** Prints the seeded table's gist (mean ± sd per row) and where the report is. */
export function printSeededOutcome(outcome: SeededExperimentResult, io: CommandIo): void {
  outcome.experiment.runs.forEach((run, i) => {
    const row = outcome.rows[i];
    const m = row.metrics;
    io.out(
      `${outcome.experiment.name}/${run.spec.name} over ${outcome.seeds.length} seeds: ` +
        (m
          ? `test accuracy ${m.accuracy.mean.toFixed(4)} ± ${(m.accuracy.sd ?? 0).toFixed(4)} ` +
            `(sd), mean NLL ${m.meanNll.mean.toFixed(4)} ± ${(m.meanNll.sd ?? 0).toFixed(4)}`
          : `${row.done} seeds done`),
    );
  });
  io.out(`Report: ${join(displayPath(outcome.dir), "report.md")}`);
}

/** Runs experiment `name` with its arguments; resolves to the exit code. */
export function experimentCommand(
  name: ExperimentName,
  args: readonly string[],
  io: CommandIo,
): Promise<number> {
  const spec = experimentCommandSpec(name);
  return runCommand(spec, args, io, async (given) => {
    const resumed = await resolveResume(name, spec.flags, given);
    const flags = resumed?.flags ?? given;
    const tuneDir = name === "final" ? flags.string("tune") : undefined;
    const tuned = tuneDir !== undefined ? await readTunedConfigs(name, tuneDir) : undefined;
    const seeds = seedList(name, flags);
    const make = (seed: number) =>
      experiment(name, { epochs: flags.number("epochs"), seed, tuned: tuned?.configs });
    const definition = make(flags.number("seed")!);
    const setup = await setupRun(name, resumed?.args ?? args, flags, io, {
      outDir: resumed?.dir,
      startedAt: resumed?.started,
      models: definition.runs.map((run) => run.spec),
    });
    try {
      if (!resumed) await writeCommandFile(setup.dir, name, args);
      if (seeds) {
        const seeded = await runSeededExperiment(make, seeds, setup, io, {
          fixedSplit: splitFixed(flags),
          notes: tuned?.notes,
          resume: resumed !== undefined,
        });
        printSeededOutcome(seeded, io);
        const told = seeded.outcomes.some((o) => o.results.some((r) => r.status === "interrupted"));
        if (setup.interrupt.signal.aborted && !told) {
          reportLateInterrupt(io, name, setup.dir);
          return INTERRUPTED_EXIT_CODE;
        }
        return seededExitCode(seeded);
      }
      const outcome = await runExperiment(definition, setup, io, {
        notes: tuned?.notes,
        resume: resumed !== undefined,
      });
      printExperimentOutcome(outcome, io);
      if (
        setup.interrupt.signal.aborted && outcome.results.every((r) => r.status !== "interrupted")
      ) {
        reportLateInterrupt(io, name, setup.dir);
        return INTERRUPTED_EXIT_CODE;
      }
      return experimentExitCode(outcome);
    } finally {
      setup.dispose();
    }
  });
}
