/**
 * Metrics in JSON: NaN and ±Infinity have no JSON form (`JSON.stringify` writes `null`), so they
 * are stored as the strings `"NaN"`, `"Infinity"` and `"-Infinity"`.
 *
 * @module
 */

import type { Metrics } from "./types.ts";

/** Metrics as stored in JSON files: finite numbers, or the names of non-finite ones. */
export type MetricsJson = { [name: string]: number | "NaN" | "Infinity" | "-Infinity" };

/** Metrics with NaN and ±Infinity spelled as strings. */
export function encodeMetrics(metrics: Metrics): MetricsJson {
  const out: MetricsJson = {};
  for (const [name, value] of Object.entries(metrics)) {
    out[name] = Number.isFinite(value)
      ? value
      : (String(value) as "NaN" | "Infinity" | "-Infinity");
  }
  return out;
}

/** The inverse of {@linkcode encodeMetrics}. */
export function decodeMetrics(json: MetricsJson): Metrics {
  const out: Metrics = {};
  for (const [name, value] of Object.entries(json)) out[name] = Number(value);
  return out;
}

/** Throws unless every value of `metrics` is a number (NaN and ±Infinity allowed). */
export function checkMetrics(metrics: unknown): asserts metrics is Metrics {
  if (metrics === null || typeof metrics !== "object" || Array.isArray(metrics)) {
    throw new TypeError("report: metrics must be an object of numbers");
  }
  for (const [name, value] of Object.entries(metrics)) {
    if (typeof value !== "number") {
      throw new TypeError(`report: metric "${name}" must be a number, got ${typeof value}`);
    }
  }
}
