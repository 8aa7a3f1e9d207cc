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
   * when `metrics` was given; in the CSV as columns `trainMetrics.<name>`).
   */
  trainMetrics?: Record<string, number>;
  /**
   * The same on the validation set (null without one; only when `metrics` was given; in the
   * CSV as columns `valMetrics.<name>`).
   */
  valMetrics?: Record<string, number> | null;
}

/**
 * The CSV's fixed columns, in order (same names as the JSON fields); the metrics' columns
 * follow them (see `historyToCsv`).
 */
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
 * The metric columns of `history`: `trainMetrics.<name>` then `valMetrics.<name>` for every
 * metric name any record has, in order of first appearance (none without `metrics`).
 */
export function historyMetricColumns(history: readonly EpochRecord[]): string[] {
  const names: string[] = [];
  for (const record of history) {
    for (const group of [record.trainMetrics, record.valMetrics]) {
      for (const name of Object.keys(group ?? {})) if (!names.includes(name)) names.push(name);
    }
  }
  return [
    ...names.map((name) => `trainMetrics.${name}`),
    ...names.map((name) => `valMetrics.${name}`),
  ];
}

/** Options of `historyToCsv`. */
export interface HistoryCsvOptions {
  /**
   * The metric columns, after `HISTORY_COLUMNS` (default `historyMetricColumns(history)`); give
   * the same list to CSVs that will be joined (a record without one leaves its cell empty).
   */
  metricColumns?: readonly string[];
}

/**
 * The history as CSV with a header row: `extra` columns (e.g. `run`) first, with the same value
 * on every row, then `HISTORY_COLUMNS`, then the metrics (`trainMetrics.mse`, `valMetrics.mse`,
 * ...; none when `fit` had no `metrics`).
 */
export function historyToCsv(
  history: readonly EpochRecord[],
  extra: Record<string, string | number> = {},
  options: HistoryCsvOptions = {},
): string {
  const metricColumns = options.metricColumns ?? historyMetricColumns(history);
  const header = [...Object.keys(extra), ...HISTORY_COLUMNS, ...metricColumns];
  const lines = [header.map(csvCell).join(",")];
  for (const record of history) {
    const metrics = metricColumns.map((column) => {
      const dot = column.indexOf(".");
      const group = column.slice(0, dot) === "valMetrics"
        ? record.valMetrics
        : column.slice(0, dot) === "trainMetrics"
        ? record.trainMetrics
        : undefined;
      return group?.[column.slice(dot + 1)];
    });
    const cells = [
      ...Object.values(extra),
      ...HISTORY_COLUMNS.map((key) => record[key]),
      ...metrics,
    ];
    lines.push(cells.map(csvCell).join(","));
  }
  return lines.join("\n") + "\n";
}
