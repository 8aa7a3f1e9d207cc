/**
 * ASHA, asynchronous successive halving (Li et al., https://arxiv.org/abs/1810.05934), with the
 * exact rules of Ray Tune's `AsyncHyperBandScheduler` and its `_Bracket`
 * (`python/ray/tune/schedulers/async_hyperband.py`, Ray 2.x, read at commit 490d7eb):
 *
 * 1. **Rungs.** Bracket `s` (0-based) has `R = int(log(max_t / grace_period) / log(rf) - s + 1)`
 *    rungs (truncated toward zero, none if negative) at milestones
 *    `grace_period * rf^(k + s)` for k = 0..R-1. With max_t 10, grace period 1, rf 2: rungs
 *    1, 2, 4, 8 (log2 10 + 1 = 4.32 → 4). `max_t` itself is a rung only when it is exactly
 *    `grace_period * rf^k` *in floating point*: max_t 8 gives rungs 1, 2, 4, 8, but
 *    max_t 1000, gp 1, rf 10 gives 1, 10, 100, because log(1000)/log(10) = 2.9999999999999996.
 * 2. **Result.** A result without `time_attr` or the metric is ignored (CONTINUE). If
 *    `time_attr >= max_t` and `stop_last_trials` (default): STOP, and nothing is recorded.
 *    Otherwise the trial's bracket decides, with `reward = metric` for mode max and
 *    `reward = -metric` for mode min (Ray's `metric_op`).
 * 3. **Bracket decision.** Rungs are scanned from the highest milestone down. With
 *    `stop_last_trials` false, the scan ends (CONTINUE) at the first rung with
 *    `t >= milestone` that already holds the trial. Otherwise a rung is skipped while
 *    `t < milestone` or the rung already holds the trial; the first other rung decides:
 *    `cutoff = nanpercentile(recorded rewards, (1 - 1/rf) * 100)` (numpy linear interpolation,
 *    NaN ignored; none when the rung is empty), STOP iff `reward < cutoff` (strictly: a reward
 *    equal to the cutoff continues; a NaN reward or a NaN cutoff continues), then the reward is
 *    recorded at that rung. So the first trial at a rung always continues, and a trial is
 *    compared with those that reached the rung before it (the "top 1/rf" is the running one).
 * 4. **Skipped rungs.** Only the highest unrecorded rung at or below `t` is used per result. A
 *    trial whose time jumps past several rungs is judged at the highest; the lower ones are
 *    filled (and judged) by its next results, one per result, highest first.
 * 5. **Completion.** When a trial stops (by this scheduler, at max_t, or because its trainable
 *    returned), `on_trial_complete` runs the bracket decision once more on its last result and
 *    ignores the outcome: a trial stopped at max_t = a rung thus records its reward there.
 *    Errors record nothing (`on_trial_error` is a no-op).
 * 6. **Brackets.** Default 1 (Ray's default). With several, each new trial picks bracket `i`
 *    with probability ∝ e^(R_i - max R), drawn from a seeded {@linkcode Rng}.
 *
 * Ray's defaults are kept: time_attr `training_iteration`, max_t 100, grace_period 1,
 * reduction_factor 4, brackets 1, stop_last_trials true. Floating-point caveat: `Math.log` and
 * `**` are V8's; numpy's `log` and Python's `**` may differ by an ulp in rare cases.
 *
 * @module
 */

import { Rng } from "../../nn/random.ts";
import { nanPercentile } from "./percentile.ts";
import { mergeSearchProperties, type TrialScheduler } from "./scheduler.ts";
import type { Decision, Json, Metrics, Mode } from "./types.ts";

/** Options of {@linkcode AshaScheduler}; defaults are Ray's. */
export interface AshaOptions {
  /** The result key measuring progress. Default `training_iteration`. */
  timeAttr?: string;
  /** The metric compared at rungs; taken from `tune()` when left out. */
  metric?: string;
  /** `min` or `max`; taken from `tune()` when left out. */
  mode?: Mode;
  /** Trials stop when `timeAttr` reaches this. Default 100. */
  maxT?: number;
  /** First rung (trials are never stopped before it). Default 1. */
  gracePeriod?: number;
  /** Rung spacing and the kept fraction 1/rf. Default 4. */
  reductionFactor?: number;
  /** Number of brackets. Default 1. */
  brackets?: number;
  /** Stop trials at `maxT`. Default true. */
  stopLastTrials?: boolean;
  /** Seed of the bracket draw (only used with several brackets). Default 0. */
  seed?: number;
}

/** One rung's state, for inspection. */
export interface RungState {
  /** The rung's milestone in `timeAttr` units. */
  milestone: number;
  /** Recorded rewards (sign-flipped for mode min), by trial id, in arrival order. */
  recorded: Record<string, number>;
  /** The current cutoff, or undefined for an empty rung. */
  cutoff: number | undefined;
}

class Bracket {
  readonly rungs: { milestone: number; recorded: Map<string, number> }[];

  constructor(
    minT: number,
    maxT: number,
    readonly rf: number,
    s: number,
    readonly stopLastTrials: boolean,
  ) {
    const count = Math.max(0, Math.trunc(Math.log(maxT / minT) / Math.log(rf) - s + 1));
    this.rungs = [];
    for (let k = count - 1; k >= 0; k--) {
      this.rungs.push({ milestone: minT * rf ** (k + s), recorded: new Map() });
    }
  }

  cutoff(recorded: Map<string, number>): number | undefined {
    if (recorded.size === 0) return undefined;
    return nanPercentile(recorded.values(), (1 - 1 / this.rf) * 100);
  }

  onResult(trialId: string, time: number, reward: number): Decision {
    let action: Decision = "CONTINUE";
    for (const { milestone, recorded } of this.rungs) {
      if (time >= milestone && recorded.has(trialId) && !this.stopLastTrials) break;
      if (time < milestone || recorded.has(trialId)) continue;
      const cutoff = this.cutoff(recorded);
      if (cutoff !== undefined && reward < cutoff) action = "STOP";
      recorded.set(trialId, reward);
      break;
    }
    return action;
  }
}

/** Ray Tune's `AsyncHyperBandScheduler` (ASHA); see the module notes for the exact rules. */
export class AshaScheduler implements TrialScheduler {
  /** The result key measuring progress. */
  readonly timeAttr: string;
  /** Trials stop at this `timeAttr` (when `stopLastTrials`). */
  readonly maxT: number | undefined;
  readonly #options: Required<Omit<AshaOptions, "metric" | "mode">>;
  #metric: string | undefined;
  #mode: Mode | undefined;
  readonly #brackets: Bracket[];
  readonly #trialBracket = new Map<string, Bracket>();
  readonly #rng: Rng;
  #numStopped = 0;

  /** An ASHA scheduler; defaults are Ray's (maxT 100, gracePeriod 1, reductionFactor 4). */
  constructor(options: AshaOptions = {}) {
    const {
      timeAttr = "training_iteration",
      maxT = 100,
      gracePeriod = 1,
      reductionFactor = 4,
      brackets = 1,
      stopLastTrials = true,
      seed = 0,
    } = options;
    if (!(maxT > 0)) throw new RangeError("ASHA: maxT must be positive");
    if (!(maxT >= gracePeriod)) throw new RangeError("ASHA: gracePeriod must be <= maxT");
    if (!(gracePeriod > 0)) throw new RangeError("ASHA: gracePeriod must be positive");
    if (!(reductionFactor > 1)) throw new RangeError("ASHA: reductionFactor must be > 1");
    if (!(Number.isInteger(brackets) && brackets > 0)) {
      throw new RangeError("ASHA: brackets must be a positive integer");
    }
    this.#options = {
      timeAttr,
      maxT,
      gracePeriod,
      reductionFactor,
      brackets,
      stopLastTrials,
      seed,
    };
    this.timeAttr = timeAttr;
    this.maxT = stopLastTrials ? maxT : undefined;
    this.#metric = options.metric;
    this.#mode = options.mode;
    if (options.mode !== undefined && options.mode !== "min" && options.mode !== "max") {
      throw new Error(`ASHA: mode must be "min" or "max", got ${options.mode}`);
    }
    this.#brackets = Array.from(
      { length: brackets },
      (_, s) => new Bracket(gracePeriod, maxT, reductionFactor, s, stopLastTrials),
    );
    this.#rng = new Rng(seed);
  }

  /** The settings, with `kind: "asha"`. */
  toJSON(): { kind: string; [key: string]: Json } {
    return {
      kind: "asha",
      ...this.#options,
      metric: this.#metric ?? null,
      mode: this.#mode ?? null,
    };
  }

  /** Adopts `tune()`'s metric and mode (throws if built with different ones). */
  setSearchProperties(metric: string, mode: Mode): void {
    ({ metric: this.#metric, mode: this.#mode } = mergeSearchProperties(
      { metric: this.#metric, mode: this.#mode },
      { metric, mode },
    ));
  }

  /** Assigns the trial to a bracket (softmax over rung counts; always 0 with one bracket). */
  onTrialAdd(trialId: string): void {
    if (this.#metric === undefined || this.#mode === undefined) {
      throw new Error("ASHA needs a metric and a mode (on the scheduler or on tune())");
    }
    let index = 0;
    if (this.#brackets.length > 1) {
      const sizes = this.#brackets.map((b) => b.rungs.length);
      const top = Math.max(...sizes);
      const weights = sizes.map((size) => Math.exp(size - top));
      const total = weights.reduce((a, b) => a + b, 0);
      let u = this.#rng.next() * total;
      index = weights.length - 1;
      for (let i = 0; i < weights.length; i++) {
        if (u < weights[i]) {
          index = i;
          break;
        }
        u -= weights[i];
      }
    }
    this.#trialBracket.set(trialId, this.#brackets[index]);
  }

  /** Ray's `on_trial_result`: STOP at maxT, else the bracket's rung decision. */
  onTrialResult(trialId: string, result: Metrics): Decision {
    const time = result[this.timeAttr], value = result[this.#metric!];
    if (time === undefined || value === undefined) return "CONTINUE";
    let action: Decision;
    if (time >= this.#options.maxT && this.#options.stopLastTrials) {
      action = "STOP";
    } else {
      action = this.#bracketOf(trialId).onResult(trialId, time, this.#reward(value));
    }
    if (action === "STOP") this.#numStopped++;
    return action;
  }

  /** Ray's `on_trial_complete`: records the last result at its rung, ignoring the decision. */
  onTrialComplete(trialId: string, result: Metrics | undefined): void {
    const time = result?.[this.timeAttr], value = result?.[this.#metric!];
    if (time === undefined || value === undefined) return;
    this.#bracketOf(trialId).onResult(trialId, time, this.#reward(value));
    this.#trialBracket.delete(trialId);
  }

  /** Nothing: Ray keeps an errored trial's recorded rewards. */
  onTrialError(_trialId: string): void {}

  /** The trials stopped so far (at rungs or at maxT). */
  get numStopped(): number {
    return this.#numStopped;
  }

  /** Every bracket's rungs, highest milestone first, with recorded rewards and cutoffs. */
  state(): RungState[][] {
    return this.#brackets.map((bracket) =>
      bracket.rungs.map(({ milestone, recorded }) => ({
        milestone,
        recorded: Object.fromEntries(recorded),
        cutoff: bracket.cutoff(recorded),
      }))
    );
  }

  /** Ray's `debug_string`: stops so far, then each bracket's rung cutoffs. */
  debugString(): string {
    const lines = [`Using AsyncHyperBand: num_stopped=${this.#numStopped}`];
    for (const rungs of this.state()) {
      const parts = rungs.map((r) => `Iter ${r.milestone.toFixed(3)}: ${r.cutoff ?? "None"}`);
      lines.push(`Bracket: ${parts.join(" | ")}`);
    }
    return lines.join("\n");
  }

  #reward(value: number): number {
    return (this.#mode === "max" ? 1 : -1) * value;
  }

  #bracketOf(trialId: string): Bracket {
    const bracket = this.#trialBracket.get(trialId);
    if (!bracket) throw new Error(`ASHA: unknown trial ${trialId} (onTrialAdd not called?)`);
    return bracket;
  }
}
