/**
 * A training run's per-epoch history, and its CSV form.
 *
 * @module
 */

/**
 * One finished epoch. Losses are the true mean loss per sample (NLL unless `fit` was given
 * another `loss`); accuracies are NaN when the model's output is not classification scores.
 */
export interface EpochRecord {
  /** The epoch's number, from 1. */
  epoch: number;
  /** The learning rate used during the epoch. */
  lr: number;
  /** Mean NLL per training sample over the epoch (model in training mode, as it was updated). */
  trainLoss: number;
  /** Fraction of training samples classified correctly during the epoch. */
  trainAccuracy: number;
  /** Mean NLL per validation sample after the epoch (null without a validation set). */
  valLoss: number | null;
  /** Validation accuracy after the epoch (null without a validation set). */
  valAccuracy: number | null;
  /** Training images seen in the epoch. */
  trainImages: number;
  /** Seconds of the training pass. */
  trainSeconds: number;
  /** Seconds of the whole epoch, validation included. */
  seconds: number;
  /** Training throughput: `trainImages / trainSeconds`. */
  imagesPerSecond: number;
  /**
   * Each metric of `fit`'s `metrics` option over the training epoch, as a mean per sample (only
   * when `metrics` was given; not in the CSV).
   */
  trainMetrics?: Record<string, number>;
  /** The same on the validation set (null without one; only when `metrics` was given). */
  valMetrics?: Record<string, number> | null;
}

/** The CSV columns, in order (same names as the JSON fields). */
export const HISTORY_COLUMNS: readonly Exclude<
  keyof EpochRecord,
  "trainMetrics" | "valMetrics"
>[] = [
  "epoch",
  "lr",
  "trainLoss",
  "trainAccuracy",
  "valLoss",
  "valAccuracy",
  "trainImages",
  "trainSeconds",
  "seconds",
  "imagesPerSecond",
];

/** Formats one CSV cell: numbers in full precision, null as empty, text quoted when needed. */
export function csvCell(value: string | number | boolean | null | undefined): string {
  if (value === null || value === undefined) return "";
  const text = String(value);
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/**
 * The history as CSV with a header row. `extra` columns (e.g. `run`) come first, with the same
 * value on every row.
 */
export function historyToCsv(
  history: readonly EpochRecord[],
  extra: Record<string, string | number> = {},
): string {
  const lines = [[...Object.keys(extra), ...HISTORY_COLUMNS].map(csvCell).join(",")];
  for (const record of history) {
    const cells = [...Object.values(extra), ...HISTORY_COLUMNS.map((key) => record[key])];
    lines.push(cells.map(csvCell).join(","));
  }
  return lines.join("\n") + "\n";
}
