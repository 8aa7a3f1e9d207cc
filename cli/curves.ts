/**
 * The study's figure layout for one run (Figs. 6-8): a loss panel and an accuracy panel, each
 * with the training and validation curves per epoch.
 *
 * @module
 */

import type { EpochRecord } from "../mod.ts";
import { type Panel, renderFigure } from "./svg_plot.ts";

const TRAIN_COLOR = "#1f77b4";
const VAL_COLOR = "#ff7f0e";

/** An SVG with the loss and accuracy curves (train vs validation) of `history`. */
export function curvesSvg(history: readonly EpochRecord[], title: string): string {
  const points = (pick: (r: EpochRecord) => number | null) =>
    history.map((r): [number, number] => [r.epoch, pick(r) ?? NaN]);
  const hasVal = history.some((r) => r.valLoss !== null);
  const panel = (
    name: string,
    yLabel: string,
    train: (r: EpochRecord) => number | null,
    val: (r: EpochRecord) => number | null,
    legend: "top-right" | "bottom-right",
  ): Panel => ({
    title: name,
    legend,
    xLabel: "epoch",
    yLabel,
    series: [
      { name: "train", points: points(train), color: TRAIN_COLOR },
      ...(hasVal ? [{ name: "validation", points: points(val), color: VAL_COLOR }] : []),
    ],
  });
  return renderFigure([
    panel("Loss", "mean NLL per sample", (r) => r.trainLoss, (r) => r.valLoss, "top-right"),
    panel("Accuracy", "accuracy", (r) => r.trainAccuracy, (r) => r.valAccuracy, "bottom-right"),
  ], { title });
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
  const hasVal = histories.some((h) => h.some((r) => r.valLoss !== null));
  const n = histories.length;
  const stats = (pick: (r: EpochRecord) => number | null) => {
    const points: [number, number][] = [];
    const band: [number, number, number][] = [];
    for (let e = 0; e < epochs; e++) {
      const values = histories.map((h) => pick(h[e]) ?? NaN);
      const mean = values.reduce((a, b) => a + b, 0) / values.length;
      const x = histories[0][e].epoch;
      points.push([x, mean]);
      band.push([x, Math.min(...values), Math.max(...values)]);
    }
    return { points, band };
  };
  const panel = (
    name: string,
    yLabel: string,
    train: (r: EpochRecord) => number | null,
    val: (r: EpochRecord) => number | null,
    legend: "top-right" | "bottom-right",
  ): Panel => ({
    title: name,
    legend,
    xLabel: "epoch",
    yLabel,
    series: [
      { name: `train (mean of ${n})`, ...stats(train), color: TRAIN_COLOR },
      ...(hasVal ? [{ name: `validation (mean of ${n})`, ...stats(val), color: VAL_COLOR }] : []),
    ],
    notes: [`Lines: mean over ${n} seeds; shaded bands: min to max over the seeds.`],
  });
  return renderFigure([
    panel("Loss", "mean NLL per sample", (r) => r.trainLoss, (r) => r.valLoss, "top-right"),
    panel("Accuracy", "accuracy", (r) => r.trainAccuracy, (r) => r.valAccuracy, "bottom-right"),
  ], { title: `${title} (${n} seeds)` });
}
