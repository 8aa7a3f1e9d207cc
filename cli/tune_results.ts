/**
 * The tune command's combined results: one row per trial of every optimizer in the study's
 * columns (batch size, l1, lr, loss, accuracy) plus ours, the best config per optimizer, the
 * files `trials.csv` and `trials.json`, and reading them back for `final --tune DIR`.
 *
 * @module
 */

import { join } from "node:path";
import {
  encodeMetrics,
  type MetricsJson,
  type ResultGrid,
  type TrialStatus,
} from "../train/tune/mod.ts";
import { UsageError } from "./args.ts";
import { writeJson, writeText } from "./files.ts";

/** The optimizers tuned. */
export type TuneOptimizer = "adam" | "sgd";

/** One trial, flattened. */
export interface TrialRow {
  /** Which tuning run. */
  optimizer: TuneOptimizer;
  /** Trial id. */
  trialId: string;
  /** Where it stands. */
  status: TrialStatus;
  /** Epochs reported. */
  epochs: number;
  /** Batch size. */
  batchSize: number;
  /** Hidden width. */
  l1: number;
  /** Learning rate. */
  lr: number;
  /** Last validation loss (true mean NLL). */
  loss: number | null;
  /** Last validation accuracy. */
  accuracy: number | null;
  /** Last validation loss in the study's scaling (mean NLL / batch size). */
  lossStudy: number | null;
  /** Last training loss. */
  trainLoss: number | null;
  /** Last training accuracy. */
  trainAccuracy: number | null;
  /** Seconds the trial ran. */
  seconds: number;
  /** Validation loss after each epoch. */
  lossHistory: (number | null)[];
  /** Validation accuracy after each epoch. */
  accuracyHistory: (number | null)[];
  /** The error of an ERROR trial. */
  error: string | null;
}

/** A tuned config as `final` uses it. */
export interface TunedConfig {
  /** Hidden width. */
  l1: number;
  /** Learning rate. */
  lr: number;
  /** Batch size. */
  batchSize: number;
}

const finite = (value: number | undefined): number | null =>
  value !== undefined && Number.isFinite(value) ? value : null;

/** The rows of one optimizer's grid, in trial order. */
export function trialRows(optimizer: TuneOptimizer, grid: ResultGrid): TrialRow[] {
  return grid.trials.map((trial) => ({
    optimizer,
    trialId: trial.id,
    status: trial.status,
    epochs: trial.iterations,
    batchSize: Number(trial.config.batch_size),
    l1: Number(trial.config.l1),
    lr: Number(trial.config.lr),
    loss: finite(trial.lastResult?.loss),
    accuracy: finite(trial.lastResult?.accuracy),
    lossStudy: finite(trial.lastResult?.loss_study),
    trainLoss: finite(trial.lastResult?.train_loss),
    trainAccuracy: finite(trial.lastResult?.train_accuracy),
    seconds: trial.seconds,
    lossHistory: trial.history.map((r) => finite(r.loss)),
    accuracyHistory: trial.history.map((r) => finite(r.accuracy)),
    error: trial.error ?? null,
  }));
}

/** The best trial of a grid (Ray's rule: lowest last validation loss), as a row. */
export function bestRow(optimizer: TuneOptimizer, grid: ResultGrid): TrialRow | undefined {
  const best = grid.bestResult();
  return best ? trialRows(optimizer, grid).find((row) => row.trialId === best.id) : undefined;
}

const CSV_COLUMNS: readonly (keyof TrialRow)[] = [
  "optimizer",
  "trialId",
  "status",
  "epochs",
  "batchSize",
  "l1",
  "lr",
  "loss",
  "accuracy",
  "lossStudy",
  "trainLoss",
  "trainAccuracy",
  "seconds",
  "error",
];

/** The rows as CSV (histories left out; they are in trials.json). */
function trialsCsv(rows: readonly TrialRow[]): string {
  const lines = [CSV_COLUMNS.join(",")];
  for (const row of rows) {
    lines.push(CSV_COLUMNS.map((c) => csvCell(row[c] as string | number | null)).join(","));
  }
  return lines.join("\n") + "\n";
}

/** Writes `trials.csv` and `trials.json` of a tune run. */
export async function writeTrialFiles(
  dir: string,
  grids: Partial<Record<TuneOptimizer, ResultGrid>>,
): Promise<void> {
  const rows = Object.entries(grids).flatMap(([opt, grid]) =>
    trialRows(opt as TuneOptimizer, grid!)
  );
  await writeText(join(dir, "trials.csv"), trialsCsv(rows));
  const json: Record<string, unknown> = {};
  for (const [opt, grid] of Object.entries(grids)) {
    const best = bestRow(opt as TuneOptimizer, grid!);
    json[opt] = {
      metric: grid!.metric,
      mode: grid!.mode,
      best: best
        ? {
          trialId: best.trialId,
          config: { l1: best.l1, lr: best.lr, batchSize: best.batchSize },
          loss: best.loss,
          accuracy: best.accuracy,
        }
        : null,
      trials: grid!.trials.map((t) => ({
        id: t.id,
        config: t.config,
        status: t.status,
        iterations: t.iterations,
        seconds: t.seconds,
        error: t.error ?? null,
        history: t.history.map((r): MetricsJson => encodeMetrics(r)),
      })),
    };
  }
  await writeJson(join(dir, "trials.json"), { metric: "loss", mode: "min", optimizers: json });
}

/**
 * The best config of each optimizer from a finished tune run's `trials.json` (for
 * `final --tune DIR`), with notes for the report. Optimizers the run did not tune keep the
 * study's configs.
 */
export async function readTunedConfigs(
  command: string,
  dir: string,
): Promise<{ configs: Partial<Record<TuneOptimizer, TunedConfig>>; notes: string[] }> {
  let parsed: {
    optimizers?: Record<
      string,
      { best?: { trialId: string; config: TunedConfig; loss: number; accuracy: number } | null }
    >;
  };
  try {
    parsed = JSON.parse(await Deno.readTextFile(join(dir, "trials.json")));
  } catch (error) {
    throw new UsageError(
      `${command}: --tune ${dir}: cannot read trials.json of a tune run (${
        error instanceof Error ? error.message : error
      })`,
    );
  }
  const configs: Partial<Record<TuneOptimizer, TunedConfig>> = {};
  const notes: string[] = [];
  for (const opt of ["adam", "sgd"] as const) {
    const best = parsed.optimizers?.[opt]?.best;
    if (best) {
      configs[opt] = best.config;
      notes.push(
        `${opt}: l1 ${best.config.l1}, lr ${best.config.lr}, batch ${best.config.batchSize} from ` +
          `${dir} (${best.trialId}: validation loss ${best.loss?.toFixed(4)}, accuracy ` +
          `${best.accuracy?.toFixed(4)})`,
      );
    } else notes.push(`${opt}: not tuned in ${dir}; the study's config`);
  }
  return { configs, notes };
}

/** One CSV cell: quoted when it holds a quote, a comma or a line break. */
function csvCell(value: string | number | boolean | null | undefined): string {
  if (value === null || value === undefined) return "";
  const text = String(value);
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}
