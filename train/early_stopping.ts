/**
 * `earlyStopping(options)`: a `fit` callback that stops training when a monitored number of the
 * epoch records (default `valLoss`) has stopped improving, with Keras' `EarlyStopping` semantics
 * (Lightning's are the same without the weights):
 *
 * - an epoch improves when its value beats the best so far by more than `minDelta`
 *   (`value < best - minDelta` in mode `min`, `value > best + minDelta` in mode `max`); NaN
 *   never improves;
 * - every epoch that does not improve adds one to a wait count (an improvement resets it to 0);
 *   training stops after the epoch at which the wait reaches `patience` (so `patience: 0` stops
 *   at the first epoch without improvement, `patience: 3` after three in a row);
 * - with `restoreBestWeights`, the model's parameters and buffers are copied (on the GPU) at
 *   every improving epoch, and copied back into the model when training ends (stopped early or
 *   not, as Keras 3; not when `fit` fails). The copies are freed when training ends. The
 *   optimizer's state is not restored.
 *
 * ```ts ignore
 * const stopper = earlyStopping({ monitor: "valMetrics.mae", patience: 3, restoreBestWeights: true });
 * const { stopped } = await fit(model, { train, val, optimizer, epochs: 50, callbacks: [stopper] });
 * console.log(stopped, stopper.bestEpoch, stopper.best);
 * ```
 *
 * @module
 */

import type { Module } from "../nn/modules/module.ts";
import { copyBuffer } from "../nn/gpu/stream.ts";
import { keep } from "../nn/scope.ts";
import { Tensor } from "../nn/tensor.ts";
import type { EpochEndContext, FitCallback, TrainBeginContext, TrainEndContext } from "./fit.ts";
import type { EpochRecord } from "./history.ts";

/**
 * What early stopping watches: a numeric field of the epoch record (`"valLoss"`, `"trainLoss"`,
 * `"valAccuracy"`, ...), a metric as `"trainMetrics.<name>"` or `"valMetrics.<name>"`, or a
 * function of the record.
 */
export type MonitorSpec = string | ((record: EpochRecord) => number);

/** Options of `earlyStopping`. */
export interface EarlyStoppingOptions {
  /** The number watched (default `"valLoss"`; see `MonitorSpec`). */
  monitor?: MonitorSpec;
  /** `"min"` (default: lower is better, losses) or `"max"` (higher is better, accuracies). */
  mode?: "min" | "max";
  /** Epochs without improvement after which training stops (default 0). */
  patience?: number;
  /** The smallest change that counts as an improvement (default 0; its sign is ignored). */
  minDelta?: number;
  /** Copy the best epoch's weights back into the model when training ends (default false). */
  restoreBestWeights?: boolean;
}

/** The `fit` callback made by `earlyStopping` (see the module notes); read its fields after. */
export class EarlyStopping implements FitCallback {
  /** The best value seen (Infinity in mode `min`, -Infinity in `max`, before any epoch). */
  best: number;
  /** The epoch of `best` (0: none yet). */
  bestEpoch = 0;
  /** The epoch after which it stopped training (0: it did not). */
  stoppedEpoch = 0;
  /** Epochs since the last improvement. */
  wait = 0;
  /** True once the best weights were copied back into the model. */
  restored = false;
  readonly #monitor: MonitorSpec;
  readonly #mode: "min" | "max";
  readonly #patience: number;
  readonly #minDelta: number;
  readonly #restoreBestWeights: boolean;
  /** The best weights: each state tensor of the model to its copy. */
  #copies: Map<Tensor, Tensor> | null = null;

  /** See `earlyStopping`. */
  constructor(options: EarlyStoppingOptions = {}) {
    const {
      monitor = "valLoss",
      mode = "min",
      patience = 0,
      minDelta = 0,
      restoreBestWeights = false,
    } = options;
    if (typeof monitor !== "string" && typeof monitor !== "function") {
      throw new TypeError(
        `earlyStopping: monitor must be a record field name or a function, got ${typeof monitor}`,
      );
    }
    if (mode !== "min" && mode !== "max") {
      throw new RangeError(`earlyStopping: mode must be "min" or "max", got ${mode}`);
    }
    if (!Number.isInteger(patience) || patience < 0) {
      throw new RangeError(`earlyStopping: patience must be an integer >= 0, got ${patience}`);
    }
    if (typeof minDelta !== "number" || !Number.isFinite(minDelta)) {
      throw new RangeError(`earlyStopping: minDelta must be a finite number, got ${minDelta}`);
    }
    this.#monitor = monitor;
    this.#mode = mode;
    this.#patience = patience;
    this.#minDelta = Math.abs(minDelta);
    this.#restoreBestWeights = restoreBestWeights;
    this.best = mode === "min" ? Infinity : -Infinity;
  }

  /** Resets the state (a callback may serve several `fit` calls). */
  onTrainBegin(_context?: TrainBeginContext): void {
    this.dispose();
    this.best = this.#mode === "min" ? Infinity : -Infinity;
    this.bestEpoch = 0;
    this.stoppedEpoch = 0;
    this.wait = 0;
    this.restored = false;
  }

  /** The monitored value of `record`; throws, naming it, when the record has none. */
  value(record: EpochRecord): number {
    const monitor = this.#monitor;
    if (typeof monitor === "function") {
      const v = monitor(record);
      if (typeof v !== "number") {
        throw new TypeError(
          `earlyStopping: the monitor function returned ${typeof v}, not a number`,
        );
      }
      return v;
    }
    const dot = monitor.indexOf(".");
    const v = dot < 0 ? (record as unknown as Record<string, unknown>)[monitor] : (() => {
      const group = (record as unknown as Record<string, unknown>)[monitor.slice(0, dot)];
      return group && typeof group === "object"
        ? (group as Record<string, unknown>)[monitor.slice(dot + 1)]
        : group;
    })();
    if (typeof v !== "number") {
      const known = Object.entries(record)
        .flatMap(([key, field]) =>
          typeof field === "number"
            ? [key]
            : field && typeof field === "object"
            ? Object.keys(field).map((name) => `${key}.${name}`)
            : []
        )
        .join(", ");
      throw new Error(
        `earlyStopping: epoch ${record.epoch}'s record has no number "${monitor}" (got ${
          v === null ? "null: is there a validation loader?" : typeof v
        }); monitor one of: ${known}`,
      );
    }
    return v;
  }

  /** Whether `value` beats the best by more than `minDelta` (NaN never does). */
  improves(value: number): boolean {
    return this.#mode === "min"
      ? value + this.#minDelta < this.best
      : value - this.#minDelta > this.best;
  }

  /** Watches the epoch's value; stops training once the patience is spent. */
  onEpochEnd(record: EpochRecord, context: EpochEndContext): void {
    const value = this.value(record);
    if (this.#restoreBestWeights && this.#copies === null) {
      this.#snapshot(context.model); // the first epoch's weights are the best so far
      this.bestEpoch = record.epoch;
    }
    if (this.improves(value)) {
      this.best = value;
      this.bestEpoch = record.epoch;
      this.wait = 0;
      if (this.#restoreBestWeights) this.#snapshot(context.model);
      return;
    }
    this.wait++;
    if (this.wait >= this.#patience) {
      this.stoppedEpoch = record.epoch;
      context.stop();
    }
  }

  /** Restores the best weights (unless training failed, or asked not to) and frees the copies. */
  onTrainEnd(context: TrainEndContext): void {
    try {
      const last = context.history.at(-1)?.epoch;
      if (
        this.#copies && context.error === undefined && last !== undefined &&
        last !== this.bestEpoch
      ) {
        this.#restore(context.model);
      }
    } finally {
      this.dispose();
    }
  }

  /** Frees the weight copies (done at the end of training; safe to call again). */
  dispose(): void {
    if (!this.#copies) return;
    for (const copy of this.#copies.values()) copy.dispose();
    this.#copies = null;
  }

  #snapshot(model: Module): void {
    this.#copies ??= new Map();
    for (const tensor of Object.values(model.stateDict())) {
      let copy = this.#copies.get(tensor);
      if (!copy) {
        copy = keep(Tensor.empty(tensor.shape, tensor.dtype));
        this.#copies.set(tensor, copy);
      }
      copyBuffer(tensor.buffer, copy.buffer, tensor.byteLength);
    }
  }

  #restore(model: Module): void {
    const copies = this.#copies!;
    const state = model.stateDict();
    for (const [name, tensor] of Object.entries(state)) {
      const copy = copies.get(tensor);
      if (!copy) {
        throw new Error(
          `earlyStopping: the model's ${name} was not in it when the best weights were copied`,
        );
      }
    }
    for (const tensor of new Set(Object.values(state))) {
      copyBuffer(copies.get(tensor)!.buffer, tensor.buffer, tensor.byteLength);
    }
    this.restored = true;
  }
}

/**
 * An early-stopping callback for `fit`'s `callbacks` (Keras' `EarlyStopping`; see the module
 * notes): stops training once `monitor` (default `"valLoss"`) has not improved by more than
 * `minDelta` for `patience` epochs, and with `restoreBestWeights` puts the best epoch's weights
 * back when training ends. Nothing is read back: it watches the numbers each epoch already has.
 *
 * @example
 * ```ts ignore
 * const stopper = earlyStopping({ patience: 2, restoreBestWeights: true });
 * await fit(model, { train, val, optimizer, epochs: 100, callbacks: [stopper] });
 * ```
 */
export function earlyStopping(options: EarlyStoppingOptions = {}): EarlyStopping {
  return new EarlyStopping(options);
}
