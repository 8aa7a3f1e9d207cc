/**
 * Runs an experiment's training runs one after another, each in its own folder, then writes the
 * experiment's combined files: `history.csv` (all runs, with a `run` column), `history.json`,
 * `summary.json`, one SVG per figure panel (`fig6a_mlp.svg`...) and `report.md`.
 *
 * @module
 */

import { join } from "node:path";
import { historyToCsv } from "../train/history.ts";
import { curvesSvg } from "./curves.ts";
import { type Experiment, type ExperimentResult, figureFile, STUDY_EPOCHS } from "./experiments.ts";
import { writeJson, writeText } from "./files.ts";
import type { CommandIo, RunSetup } from "./harness.ts";
import { experimentReport } from "./experiment_report.ts";
import { type RunResult, type RunSpec, runSummary, runTraining } from "./run_training.ts";
import { reportUnfinished } from "./unfinished.ts";

/** A key identifying what a run computes (name and title aside). */
function specKey(spec: RunSpec): string {
  const { name: _name, title: _title, ...rest } = spec;
  return JSON.stringify(
    Object.entries(rest).filter(([, v]) => v !== undefined).sort(([a], [b]) => a.localeCompare(b)),
  );
}

/**
 * Runs every run of `experiment` in `dir/<run name>/` (unless `reuse` holds an identical finished
 * run), then writes the combined files. Stops after a run interrupted by Ctrl-C.
 */
export async function runExperiment(
  experiment: Experiment,
  setup: RunSetup,
  io: CommandIo,
  options: {
    dir?: string;
    reuse?: Map<string, RunResult>;
    notes?: string[];
    resume?: boolean;
    command?: string;
  } = {},
): Promise<ExperimentResult> {
  const dir = options.dir ?? setup.dir;
  const results: RunResult[] = [];
  const reused: Record<string, string> = {};
  let interrupted = false;
  for (const run of experiment.runs) {
    const previous = options.reuse?.get(specKey(run.spec));
    if (previous && previous.status === "completed") {
      io.err(`[${run.spec.name}] same settings as ${previous.dir}: reusing its result`);
      results.push({ ...previous, spec: run.spec });
      reused[run.spec.name] = previous.dir;
      continue;
    }
    const runDir = join(dir, run.spec.name);
    await Deno.mkdir(runDir, { recursive: true });
    io.err(
      `[${run.spec.name}] ${run.spec.title}, ${run.spec.epochs} epoch${
        run.spec.epochs === 1 ? "" : "s"
      }`,
    );
    const result = await runTraining(run.spec, {
      data: setup.data,
      dir: runDir,
      evalBatchSize: setup.evalBatchSize,
      progress: setup.progress,
      signal: setup.interrupt.signal,
      log: io.err,
      resume: options.resume,
    });
    results.push(result);
    options.reuse?.set(specKey(run.spec), result);
    if (result.test) {
      io.err(
        `[${run.spec.name}] test accuracy ${result.test.accuracy.toFixed(4)}, mean NLL ` +
          `${result.test.loss.toFixed(4)}`,
      );
    } else if (result.error) io.err(`[${run.spec.name}] ${result.error}`);
    if (result.status !== "completed") {
      reportUnfinished(result, io, options.command ?? experiment.name, setup.dir);
    }
    if (result.status === "interrupted") {
      interrupted = true;
      break;
    }
  }
  // Ctrl-C after the last run finished: the combined files say interrupted, --resume rewrites them.
  interrupted ||= setup.interrupt.signal.aborted;
  const outcome: ExperimentResult = { experiment, dir, results, reused, interrupted };
  await writeExperimentFiles(outcome, setup, options.notes ?? []);
  return outcome;
}

/** Writes the combined files of an experiment (see the module notes). */
async function writeExperimentFiles(
  outcome: ExperimentResult,
  setup: RunSetup,
  notes: string[],
): Promise<void> {
  const { experiment, dir, results } = outcome;
  const csv = results.map((r, i) => {
    const text = historyToCsv(r.history, { run: r.spec.name });
    return i === 0 ? text : text.slice(text.indexOf("\n") + 1);
  }).join("");
  await writeText(join(dir, "history.csv"), csv || historyToCsv([], { run: "" }));
  await writeJson(join(dir, "history.json"), {
    experiment: experiment.name,
    runs: Object.fromEntries(results.map((r) => [r.spec.name, r.history])),
  });
  for (const run of experiment.runs) {
    const result = results.find((r) => r.spec.name === run.spec.name);
    if (result) {
      await writeText(join(dir, figureFile(run)), curvesSvg(result.history, run.spec.title));
    }
  }
  await writeJson(join(dir, "summary.json"), {
    command: experiment.name,
    title: experiment.title,
    environment: setup.env,
    data: { source: setup.data.prepared.source, split: setup.data.prepared.split },
    interrupted: outcome.interrupted,
    reused: outcome.reused,
    table: experiment.runs.map((run) => {
      const result = results.find((r) => r.spec.name === run.spec.name);
      return {
        row: run.study.row,
        study: { loss: run.study.loss, accuracy: run.study.accuracy },
        ours: result?.test
          ? {
            studyLoss: result.test.studyLoss,
            accuracy: result.test.accuracy,
            meanNll: result.test.loss,
          }
          : null,
        studyEpochs: STUDY_EPOCHS[`${experiment.name}/${run.spec.name}`],
      };
    }),
    runs: results.map((r) => ({ ...runSummary(r), dir: r.dir })),
  });
  await writeText(
    join(dir, "report.md"),
    experimentReport({ outcome, env: setup.env, data: setup.data.prepared, notes }),
  );
}
