/**
 * report.md and plots of the tune command: the study's Tables 3 and 4 beside ours (same columns,
 * trial order), the best config per optimizer, and every trial's validation curve with the
 * trials ASHA stopped drawn dashed.
 *
 * @module
 */

import type { PreparedData } from "./data.ts";
import { environmentLines, type RunEnvironment } from "./environment.ts";
import { duration, fixed, significant, table } from "./markdown.ts";
import { dataLines, LOSS_NOTE, quickRunNotice, SPLIT_NOTE } from "./report.ts";
import { STUDY_BEST, type StudyTuneRow, TABLE_3, TABLE_4 } from "./study.ts";
import { PALETTE, type Panel, renderFigure, type Series } from "./svg_plot.ts";
import type { TrialRow, TuneOptimizer } from "./tune_results.ts";

/** The tune run's settings, as saved in tune.json. */
export interface TuneSettings {
  /** Optimizers tuned, in order. */
  optimizers: TuneOptimizer[];
  /** Samples per optimizer. */
  samples: number;
  /** ASHA max_t (epochs). */
  maxEpochs: number;
  /** ASHA grace period. */
  gracePeriod: number;
  /** ASHA reduction factor. */
  reductionFactor: number;
  /** Trials at once. */
  concurrency: number;
  /** Seed of the sampling and of the trials. */
  seed: number;
}

const NAMES: Record<TuneOptimizer, string> = { adam: "Adam", sgd: "SGD" };

/** The file name of an optimizer's plot. */
export function plotFile(optimizer: TuneOptimizer): string {
  return `tune_${optimizer}.svg`;
}

/** Every trial's validation loss and accuracy per epoch (stopped trials dashed with a cross). */
export function tunePlotSvg(
  optimizer: TuneOptimizer,
  rows: readonly TrialRow[],
  best?: TrialRow,
): string {
  const series = (pick: (row: TrialRow) => (number | null)[]): Series[] =>
    rows.map((row, i) => {
      const isBest = row.trialId === best?.trialId;
      return {
        name: row.trialId,
        points: pick(row).map((v, e): [number, number] => [e + 1, v ?? NaN]),
        color: isBest
          ? "#000000"
          : row.status === "ERROR"
          ? "#d62728"
          : PALETTE[i % PALETTE.length],
        dashed: row.status === "STOPPED",
        width: isBest ? 3 : 1.5,
        opacity: isBest ? 1 : row.status === "STOPPED" ? 0.55 : 0.85,
        endMarker: row.status === "STOPPED" ? "cross" as const : undefined,
        noLegend: true,
      };
    }).sort((a, b) => (a.color === "#000000" ? 1 : 0) - (b.color === "#000000" ? 1 : 0));
  const bestText = best
    ? `black: best (${best.trialId}: batch ${best.batchSize}, l1 ${best.l1}, lr ${best.lr})`
    : "no finished trial";
  const notes = [
    "solid: ran to max_t; dashed with ×: stopped early by ASHA; red: failed",
    bestText,
  ];
  const panels: Panel[] = [
    {
      title: "Validation loss",
      xLabel: "epoch",
      yLabel: "mean NLL per sample",
      series: series((r) => r.lossHistory),
      legend: "none",
      notes,
    },
    {
      title: "Validation accuracy",
      xLabel: "epoch",
      yLabel: "accuracy",
      series: series((r) => r.accuracyHistory),
      legend: "none",
    },
  ];
  return renderFigure(panels, { title: `Tuning with ${NAMES[optimizer]}: every trial` });
}

function studyTable(rows: readonly StudyTuneRow[]): string {
  return table(
    ["batch size", "l1", "lr", "loss", "accuracy"],
    rows.map((r) => {
      const cells = [r.batchSize, r.l1, r.lr, r.loss, r.accuracy].map(String);
      return r.best ? cells.map((c) => `**${c}**`) : cells;
    }),
  );
}

function ourTable(rows: readonly TrialRow[], best?: TrialRow): string {
  return table(
    [
      "trial",
      "batch size",
      "l1",
      "lr",
      "loss (study scaling)",
      "accuracy",
      "mean NLL",
      "epochs",
      "status",
    ],
    rows.map((r) => {
      const cells = [
        r.trialId,
        String(r.batchSize),
        String(r.l1),
        String(r.lr),
        significant(r.lossStudy, 6),
        fixed(r.accuracy, 4),
        fixed(r.loss, 4),
        String(r.epochs),
        r.status + (r.error ? `: ${r.error}` : ""),
      ];
      return r.trialId === best?.trialId ? cells.map((c) => `**${c}**`) : cells;
    }),
  );
}

/** The study's best config beside ours, per optimizer. */
export function bestConfigsTable(
  optimizers: readonly TuneOptimizer[],
  best: Partial<Record<TuneOptimizer, TrialRow>>,
): string {
  return table(
    [
      "optimizer",
      "study's best",
      "study val accuracy",
      "our best",
      "our val accuracy",
      "our val loss (mean NLL)",
      "loss (study scaling)",
    ],
    optimizers.map((opt) => {
      const s = STUDY_BEST[opt];
      const b = best[opt];
      return [
        NAMES[opt],
        `batch ${s.batchSize}, l1 ${s.l1}, lr ${s.lr}`,
        String(s.accuracy),
        b ? `batch ${b.batchSize}, l1 ${b.l1}, lr ${b.lr} (${b.trialId})` : "—",
        fixed(b?.accuracy, 4),
        fixed(b?.loss, 4),
        significant(b?.lossStudy, 4),
      ];
    }),
  );
}

/** Seconds every optimizer's trials ran, summed over its trials (in words). */
function trialTime(
  optimizers: readonly TuneOptimizer[],
  rows: Partial<Record<TuneOptimizer, TrialRow[]>>,
): string {
  return optimizers.filter((opt) => rows[opt])
    .map((opt) =>
      `${NAMES[opt]} ${duration(rows[opt]!.reduce((sum, row) => sum + row.seconds, 0))}`
    ).join(", ");
}

/** report.md of a tune run. */
export function tuneReport(init: {
  settings: TuneSettings;
  rows: Partial<Record<TuneOptimizer, TrialRow[]>>;
  best: Partial<Record<TuneOptimizer, TrialRow>>;
  env?: RunEnvironment;
  data?: PreparedData;
  /** A shared study's report (`tune report`): no local environment or data. */
  shared?: { study: string; storage: string; data: unknown };
  seconds: number;
  interrupted: boolean;
}): string {
  const { settings, rows, best, env, data, shared } = init;
  const lines = [
    "# Experiment 3: hyperparameter tuning, the study's Tables 3 and 4",
    "",
    ...(env ? environmentLines(env) : []),
    ...(data ? dataLines(data) : []),
    ...(shared
      ? [
        `- Shared study \`${shared.study}\` in ${shared.storage} (report written from its journal ` +
        `by \`tune report\`); data settings of the workers: \`${JSON.stringify(shared.data)}\``,
      ]
      : []),
    `- Search: tuning CNN; l1 ∈ {64, 128, 256}, lr ∈ {1e-4, 1e-3, 1e-2}, batch size ∈ {32, 64, ` +
    `128}; ${settings.samples} random samples per optimizer (seed ${settings.seed})`,
    `- Scheduler: ASHA (max_t ${settings.maxEpochs}, grace period ${settings.gracePeriod}, ` +
    `reduction factor ${settings.reductionFactor}); metric: validation loss (true mean NLL), ` +
    `mode min; ${
      shared ? "trials shared by the workers" : `${settings.concurrency} trial(s) at a time`
    }`,
    `- ${shared ? "Trial time" : `Wall time${env?.resumed ? " since resuming" : ""}`}: ${
      duration(init.seconds)
    }; ` +
    `time in trials: ${trialTime(settings.optimizers, rows)}${
      init.interrupted ? " — **interrupted** (resume with `tune --resume DIR`)" : ""
    }`,
    "",
  ];
  const notice = data ? quickRunNotice(data, settings.maxEpochs < 10) : undefined;
  if (notice) lines.push(notice, "");
  lines.push("## Best configs", "", bestConfigsTable(settings.optimizers, best), "");
  lines.push(
    "Best = the lowest validation loss at each trial's last report (Ray Tune's rule). " +
      "`cli.ts final --tune <this folder>` trains with these configs.",
    "",
  );
  settings.optimizers.forEach((opt) => {
    const number = opt === "adam" ? 3 : 4;
    lines.push(
      `## Table ${number}: tuning with ${NAMES[opt]}`,
      "",
      "### The study",
      "",
      studyTable(opt === "adam" ? TABLE_3 : TABLE_4),
      "",
      "### Ours (every trial, in trial order)",
      "",
      ourTable(rows[opt] ?? [], best[opt]),
      "",
      `![every ${NAMES[opt]} trial's validation curves](${plotFile(opt)})`,
      "",
    );
  });
  lines.push(
    "## Notes",
    "",
    "- The study's tables list 15 (Adam) and 17 (SGD) distinct configurations of its 27 samples " +
      "(Ray samples with replacement from the 27 combinations), in its run's order; ours list " +
      "every trial in trial order, with its status: TERMINATED ran to max_t, STOPPED was cut by ASHA.",
    "- The study's notebook ranked trials by its scaled loss (≈ mean NLL / batch size), which " +
      "favours large batches; we rank by the true mean NLL and show the scaled figure beside it.",
    "- The study's bold SGD row ({32, 128, 0.01}) differs from the config its text and final " +
      "training use ({64, 64, 0.01}, accuracy 0.848); the *study's best* column follows the text.",
    `- ${LOSS_NOTE}`,
    `- ${SPLIT_NOTE}`,
    "",
    "## Files",
    "",
    "- `trials.csv`, `trials.json`: every trial of every optimizer (trials.json has the per-epoch history)",
    `- ${
      settings.optimizers.map((o) => `\`${plotFile(o)}\``).join(", ")
    }: every trial's validation curves`,
    `- ${settings.optimizers.map((o) => `\`${o}/\``).join(", ")}: the tuner's run folders ` +
      "(experiment.json, journal.jsonl, per-trial checkpoints), used by `--resume`",
    "- `tune.json`: this run's settings",
    "",
  );
  return lines.join("\n");
}
