/**
 * The study's figure layout (Figs. 6-8): a loss panel and an accuracy panel, each with the
 * training and validation curves per epoch, for one run or as mean and band over seeds.
 *
 * @module
 */

import type { EpochRecord } from "../mod.ts";
import { type Panel, renderFigure, type Series } from "./svg_plot.ts";

const TRAIN_COLOR = "#1f77b4";
const VAL_COLOR = "#ff7f0e";

/** Picks one metric of an epoch (null: not measured). */
type Metric = (r: EpochRecord) => number | null;

/** A curve of one metric: its points, and for seeds the band around them. */
type Curve = Pick<Series, "points" | "band">;

/** How the figure draws its curves, and what it says about them. */
interface Layout {
  curve: (metric: Metric) => Curve;
  hasVal: boolean;
  /** Appended to the legend's "train" and "validation". */
  suffix: string;
  notes?: readonly string[];
  title: string;
}

function lossAccuracyFigure({ curve, hasVal, suffix, notes, title }: Layout): string {
  const panel = (
    name: string,
    yLabel: string,
    train: Metric,
    val: Metric,
    legend: "top-right" | "bottom-right",
  ): Panel => ({
    title: name,
    legend,
    xLabel: "epoch",
    yLabel,
    series: [
      { name: `train${suffix}`, ...curve(train), color: TRAIN_COLOR },
      ...(hasVal ? [{ name: `validation${suffix}`, ...curve(val), color: VAL_COLOR }] : []),
    ],
    ...(notes ? { notes } : {}),
  });
  return renderFigure([
    panel("Loss", "mean NLL per sample", (r) => r.trainLoss, (r) => r.valLoss, "top-right"),
    panel("Accuracy", "accuracy", (r) => r.trainAccuracy, (r) => r.valAccuracy, "bottom-right"),
  ], { title });
}

/** An SVG with the loss and accuracy curves (train vs validation) of `history`. */
export function curvesSvg(history: readonly EpochRecord[], title: string): string {
  return lossAccuracyFigure({
    curve: (metric) => ({
      points: history.map((r): [number, number] => [r.epoch, metric(r) ?? NaN]),
    }),
    hasVal: history.some((r) => r.valLoss !== null),
    suffix: "",
    title,
  });
}

/**
 * The same figure over seeds: per epoch, the mean of the runs' curves (train and validation) with
 * a shaded min-max band; epochs that not every run reached are left out.
 */
export function seedCurvesSvg(
  histories: readonly (readonly EpochRecord[])[],
  title: string,
): string {
  const epochs = histories.length > 0 ? Math.min(...histories.map((h) => h.length)) : 0;
  const n = histories.length;
  const curve = (metric: Metric): Curve => {
    const points: [number, number][] = [];
    const band: [number, number, number][] = [];
    for (let e = 0; e < epochs; e++) {
      const values = histories.map((h) => metric(h[e]) ?? NaN);
      const mean = values.reduce((a, b) => a + b, 0) / values.length;
      const x = histories[0][e].epoch;
      points.push([x, mean]);
      band.push([x, Math.min(...values), Math.max(...values)]);
    }
    return { points, band };
  };
  return lossAccuracyFigure({
    curve,
    hasVal: histories.some((h) => h.some((r) => r.valLoss !== null)),
    suffix: ` (mean of ${n})`,
    notes: [`Lines: mean over ${n} seeds; shaded bands: min to max over the seeds.`],
    title: `${title} (${n} seeds)`,
  });
}
