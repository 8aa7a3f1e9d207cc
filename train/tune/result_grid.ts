/**
 * The outcome of a tuning run: every trial's config, status, history and timing, the best trial
 * (Ray Tune's `ResultGrid.get_best_result`), and a flat table for CSV/JSON.
 *
 * @module
 */

import { encodeMetrics, type MetricsJson } from "./metrics.ts";
import type { Config, Json, Metrics, Mode, TrialStatus } from "./types.ts";

/** One trial of a run. */
export interface TrialResult {
  /** Trial id, `trial_00000`... */
  id: string;
  /** Position in the sampled order (0-based). */
  index: number;
  /** The trial's hyperparameters. */
  config: Config;
  /** Where it stands. */
  status: TrialStatus;
  /** Results reported (= the last `training_iteration`). */
  iterations: number;
  /** The last result, or undefined before the first report. */
  lastResult: Metrics | undefined;
  /** Every result, in order. */
  history: Metrics[];
  /** The best finite value of the run's metric over the history (per its mode), if any. */
  bestMetric: number | undefined;
  /** Seconds the trainable ran (time in `report` waiting for a decision excluded). */
  seconds: number;
  /** The error message of an ERROR trial. */
  error?: string;
  /** The latest committed checkpoint's directory, if any. */
  checkpointDir?: string;
}

/** Which result of a trial `bestResult` compares: the last (Ray's default) or its best. */
export type Scope = "last" | "all";

/** Options of {@linkcode ResultGrid.bestResult}. */
export interface BestOptions {
  /** `last` (default, as Ray): compare each trial's last value; `all`: its best value. */
  scope?: Scope;
}

/** One row of {@linkcode ResultGrid.toTable}. */
export type TableRow = { [column: string]: string | number | null };

function flatten(value: Json, prefix: string, into: TableRow): void {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    for (const [key, item] of Object.entries(value)) flatten(item, `${prefix}/${key}`, into);
  } else if (typeof value === "number" || typeof value === "string" || value === null) {
    into[prefix] = value;
  } else {
    into[prefix] = JSON.stringify(value);
  }
}

/** The best finite value of `metric` in `history` (largest for max, smallest for min). */
export function bestOf(
  history: readonly Metrics[],
  metric: string,
  mode: Mode,
): number | undefined {
  let best: number | undefined;
  for (const result of history) {
    const value = result[metric];
    if (value === undefined || !Number.isFinite(value)) continue;
    if (best === undefined || (mode === "max" ? value > best : value < best)) best = value;
  }
  return best;
}

/** The value of `metric` that trial `trial` is ranked by, or undefined if it has none. */
function score(trial: TrialResult, metric: string, mode: Mode, scope: Scope): number | undefined {
  if (scope === "all") return bestOf(trial.history, metric, mode);
  // Ray's metric_analysis "last": the last value reported for this metric.
  const value = trial.history.findLast((result) => metric in result)?.[metric];
  return value !== undefined && Number.isFinite(value) ? value : undefined;
}

/** The trials of a tuning run. */
export class ResultGrid {
  /** Every trial, in trial order. */
  readonly trials: readonly TrialResult[];
  /** The metric the run optimised. */
  readonly metric: string;
  /** Its mode. */
  readonly mode: Mode;

  /** A grid over `trials`, ranked by `metric`/`mode` unless told otherwise. */
  constructor(trials: readonly TrialResult[], options: { metric: string; mode: Mode }) {
    this.trials = trials;
    this.metric = options.metric;
    this.mode = options.mode;
  }

  /**
   * The best trial by `metric` and `mode` (default: the run's), comparing each trial's last
   * value (scope `last`, Ray's default) or its best one (scope `all`). NaN and infinite values
   * are ignored (Ray's `filter_nan_and_inf`); ties go to the earlier trial; errored trials count
   * with what they reported. Undefined when no trial has a finite value.
   */
  bestResult(metric?: string, mode?: Mode, options: BestOptions = {}): TrialResult | undefined {
    const name = metric ?? this.metric, direction = mode ?? this.mode;
    const scope = options.scope ?? "last";
    let best: TrialResult | undefined, bestValue = 0;
    for (const trial of this.trials) {
      const value = score(trial, name, direction, scope);
      if (value === undefined) continue;
      if (best === undefined || (direction === "max" ? value > bestValue : value < bestValue)) {
        best = trial;
        bestValue = value;
      }
    }
    return best;
  }

  /** How many trials have each status. */
  counts(): Record<TrialStatus, number> {
    const counts: Record<TrialStatus, number> = {
      PENDING: 0,
      RUNNING: 0,
      TERMINATED: 0,
      STOPPED: 0,
      ERROR: 0,
    };
    for (const trial of this.trials) counts[trial.status]++;
    return counts;
  }

  /**
   * One flat row per trial: `trial_id`, `status`, `iterations`, `seconds`, `config/<key>`
   * (nested keys joined by `/`, as Ray's dataframe), the last result's metrics,
   * `best_<metric>`, and `error`. Rows share the same columns (missing values are null).
   */
  toTable(): TableRow[] {
    const rows = this.trials.map((trial) => {
      const row: TableRow = {
        trial_id: trial.id,
        status: trial.status,
        iterations: trial.iterations,
        seconds: Math.round(trial.seconds * 1000) / 1000,
      };
      for (const [key, value] of Object.entries(trial.config)) flatten(value, `config/${key}`, row);
      for (const [key, value] of Object.entries(trial.lastResult ?? {})) row[key] = value;
      row[`best_${this.metric}`] = trial.bestMetric ?? null;
      row.error = trial.error ?? null;
      return row;
    });
    const columns: string[] = [];
    for (const row of rows) {
      for (const key of Object.keys(row)) if (!columns.includes(key)) columns.push(key);
    }
    const last = ["error"];
    const ordered = [...columns.filter((c) => !last.includes(c)), ...last];
    return rows.map((row) => Object.fromEntries(ordered.map((c) => [c, row[c] ?? null])));
  }

  /** {@linkcode toTable} as CSV (RFC 4180 quoting; NaN written as `NaN`, null as empty). */
  toCSV(): string {
    const rows = this.toTable();
    if (rows.length === 0) return "";
    const columns = Object.keys(rows[0]);
    const cell = (value: string | number | null): string => {
      if (value === null) return "";
      const text = String(value);
      return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
    };
    const lines = [columns.map(cell).join(",")];
    for (const row of rows) lines.push(columns.map((c) => cell(row[c])).join(","));
    return lines.join("\n") + "\n";
  }

  /** The grid as JSON (`trials.json`): metric, mode, and every trial with its history. */
  toJSON(): {
    metric: string;
    mode: Mode;
    trials: (Omit<TrialResult, "lastResult" | "history"> & {
      lastResult: MetricsJson | null;
      history: MetricsJson[];
    })[];
  } {
    return {
      metric: this.metric,
      mode: this.mode,
      trials: this.trials.map((t) => ({
        ...t,
        lastResult: t.lastResult ? encodeMetrics(t.lastResult) : null,
        history: t.history.map(encodeMetrics),
      })),
    };
  }
}
