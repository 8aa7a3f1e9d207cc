/**
 * ASHA and FIFO decisions on scripted results (no training), checked against hand-worked
 * examples of Ray Tune's AsyncHyperBandScheduler rules.
 */

import assert from "node:assert/strict";
import { AshaScheduler } from "../../train/tune/asha.ts";
import { FifoScheduler } from "../../train/tune/fifo.ts";
import { nanPercentile } from "../../train/tune/percentile.ts";
import { schedulerFromJSON } from "../../train/tune/scheduler_json.ts";
import type { Decision, Mode } from "../../train/tune/types.ts";

function asha(options: ConstructorParameters<typeof AshaScheduler>[0] = {}, trials = "ABCDEFGH") {
  const scheduler = new AshaScheduler(options);
  scheduler.setSearchProperties(options.metric ?? "loss", options.mode ?? "min");
  for (const id of trials) scheduler.onTrialAdd(id);
  return scheduler;
}

function milestones(scheduler: AshaScheduler, bracket = 0): number[] {
  return scheduler.state()[bracket].map((r) => r.milestone);
}

/** Feeds one result; a STOP completes the trial, as the runner (and Ray's stop_trial) does. */
function feed(
  scheduler: AshaScheduler,
  trial: string,
  iteration: number,
  value: number,
  metric = "loss",
): Decision {
  const result = { training_iteration: iteration, [metric]: value };
  const decision = scheduler.onTrialResult(trial, result);
  if (decision === "STOP") scheduler.onTrialComplete(trial, result);
  return decision;
}

Deno.test("nanPercentile matches numpy's linear method", () => {
  assert.equal(nanPercentile([1, 2, 3, 4], 50), 2.5);
  assert.equal(nanPercentile([4, 1, 3, 2], 75), 3.25);
  assert.equal(nanPercentile([1, 2, 3, 4, 5], (1 - 1 / 3) * 100), 3.666666666666667);
  assert.equal(nanPercentile([NaN, 1, 3], 50), 2);
  assert.equal(nanPercentile([7], 50), 7);
  assert.equal(nanPercentile([1, 2], 100), 2);
  assert.equal(nanPercentile([1, 2], 0), 1);
  assert.ok(Number.isNaN(nanPercentile([NaN, NaN], 50)));
  assert.ok(Number.isNaN(nanPercentile([], 50)));
  // numpy's _lerp takes the upper neighbour when t >= 0.5: -0.8 - 0.1 * 0.5, not -0.9 + 0.05.
  assert.equal(nanPercentile([-0.9, -0.8], 50), -0.8 - (-0.8 - -0.9) * 0.5);
});

Deno.test("rungs are grace_period * rf^k while below log bound, as Ray's _Bracket", () => {
  assert.deepEqual(milestones(asha({ maxT: 10, gracePeriod: 1, reductionFactor: 2 })), [
    8,
    4,
    2,
    1,
  ]);
  // Ray's defaults: max_t 100, grace 1, rf 4.
  assert.deepEqual(milestones(asha()), [64, 16, 4, 1]);
  // max_t exactly a power: it is a rung.
  assert.deepEqual(milestones(asha({ maxT: 8, gracePeriod: 1, reductionFactor: 2 })), [8, 4, 2, 1]);
  // log(1000)/log(10) = 2.9999999999999996 in floating point: Ray gets 3 rungs, so do we.
  assert.deepEqual(milestones(asha({ maxT: 1000, gracePeriod: 1, reductionFactor: 10 })), [
    100,
    10,
    1,
  ]);
  assert.deepEqual(milestones(asha({ maxT: 10, gracePeriod: 3, reductionFactor: 2 })), [6, 3]);
  assert.deepEqual(milestones(asha({ maxT: 5, gracePeriod: 5, reductionFactor: 2 })), [5]);
  // Brackets s = 0, 1, 2: rungs start at grace * rf^s.
  const three = asha({ maxT: 81, gracePeriod: 1, reductionFactor: 3, brackets: 3 });
  assert.deepEqual(milestones(three, 0), [81, 27, 9, 3, 1]);
  assert.deepEqual(milestones(three, 1), [81, 27, 9, 3]);
  assert.deepEqual(milestones(three, 2), [81, 27, 9]);
});

Deno.test("Ray's _Bracket docstring example (mode max): 2, 4 continue, cutoff 3, then 1 stops", () => {
  const s = asha({ maxT: 10, gracePeriod: 1, reductionFactor: 2, mode: "max", metric: "r" });
  assert.equal(feed(s, "A", 1, 2, "r"), "CONTINUE");
  assert.equal(feed(s, "B", 1, 4, "r"), "CONTINUE");
  assert.equal(s.state()[0][3].cutoff, 3);
  assert.equal(feed(s, "C", 1, 1, "r"), "STOP");
  assert.equal(s.state()[0][3].cutoff, 2);
});

Deno.test("hand-worked ASHA (max_t 10, grace 1, rf 2, mode min): ties, NaN, first trial, max_t", () => {
  const s = asha({ maxT: 10, gracePeriod: 1, reductionFactor: 2 });
  // Rewards are -loss (mode min). Rung 1:
  assert.equal(feed(s, "A", 1, 1.0), "CONTINUE"); // first at the rung: always continues
  assert.equal(feed(s, "B", 1, 2.0), "STOP"); // cutoff median{-1} = -1; -2 < -1
  assert.equal(feed(s, "C", 1, 1.5), "CONTINUE"); // cutoff median{-1,-2} = -1.5; tie continues
  assert.equal(feed(s, "D", 1, NaN), "CONTINUE"); // NaN < cutoff is false; NaN is recorded
  assert.equal(feed(s, "E", 1, 1.9), "STOP"); // cutoff median{-2,-1.5,-1} (NaN ignored) = -1.5
  assert.deepEqual(s.state()[0][3].recorded, { A: -1, B: -2, C: -1.5, D: NaN, E: -1.9 });
  // Rung 2:
  assert.equal(feed(s, "A", 2, 0.8), "CONTINUE"); // first at rung 2
  assert.equal(feed(s, "C", 2, 0.9), "STOP"); // cutoff -0.8; -0.9 < -0.8
  assert.equal(s.state()[0][2].cutoff, -0.8500000000000001); // lerp(-0.9, -0.8, 0.5), numpy-style
  assert.equal(feed(s, "D", 2, 0.5), "CONTINUE");
  // Between rungs nothing is compared or recorded.
  assert.equal(feed(s, "A", 3, 5.0), "CONTINUE");
  assert.equal(feed(s, "D", 3, 5.0), "CONTINUE");
  assert.deepEqual(Object.keys(s.state()[0][2].recorded), ["A", "C", "D"]);
  // Rung 4:
  assert.equal(feed(s, "A", 4, 0.6), "CONTINUE");
  assert.equal(feed(s, "D", 4, 0.65), "STOP");
  for (let t = 5; t <= 7; t++) assert.equal(feed(s, "A", t, 0.5), "CONTINUE");
  assert.equal(feed(s, "A", 8, 0.3), "CONTINUE"); // first at rung 8
  assert.equal(feed(s, "A", 9, 0.3), "CONTINUE");
  assert.equal(feed(s, "A", 10, 0.2), "STOP"); // max_t: stop, not recorded anywhere new
  assert.deepEqual(s.state()[0].map((r) => Object.keys(r.recorded)), [
    ["A"],
    ["A", "D"],
    ["A", "C", "D"],
    ["A", "B", "C", "D", "E"],
  ]);
  assert.equal(s.numStopped, 5);
});

Deno.test("mode max compares the metric itself", () => {
  const s = asha({ maxT: 10, gracePeriod: 1, reductionFactor: 2, mode: "max", metric: "acc" });
  assert.equal(feed(s, "A", 1, 0.5, "acc"), "CONTINUE");
  assert.equal(feed(s, "B", 1, 0.4, "acc"), "STOP"); // 0.4 < 0.5
  assert.equal(feed(s, "C", 1, 0.6, "acc"), "CONTINUE"); // cutoff 0.45
  assert.equal(feed(s, "D", 1, 0.5, "acc"), "CONTINUE"); // cutoff median{0.4,0.5,0.6} = 0.5: tie
  assert.equal(feed(s, "E", 1, 0.49, "acc"), "STOP"); // cutoff median{.4,.5,.5,.6} = 0.5
});

Deno.test("rf 3 keeps the top third: cutoff is the 66.67th percentile", () => {
  const s = asha({ maxT: 9, gracePeriod: 1, reductionFactor: 3, mode: "max", metric: "acc" });
  for (const [id, acc] of [["A", 1], ["B", 2], ["C", 3], ["D", 4]] as const) {
    feed(s, id, 1, acc, "acc");
  }
  // Each continued (cutoffs 1, 1.67, 2.33); recorded {1,2,3,4}: index 3 * 0.667 = 2 → cutoff 3.
  assert.equal(s.state()[0].at(-1)!.cutoff, 3);
  assert.equal(feed(s, "E", 1, 2.9, "acc"), "STOP");
  assert.equal(feed(s, "F", 1, 3.5, "acc"), "CONTINUE");
});

Deno.test("a trial whose time skips rungs is judged at the highest, lower ones on later results", () => {
  const s = asha({ maxT: 10, gracePeriod: 1, reductionFactor: 2, timeAttr: "t" });
  const at = (trial: string, t: number, loss: number) => {
    const result = { t, loss };
    const decision = s.onTrialResult(trial, result);
    if (decision === "STOP") s.onTrialComplete(trial, result);
    return decision;
  };
  assert.equal(at("A", 3, 1), "CONTINUE"); // rung 2 (the highest <= 3)
  assert.deepEqual(s.state()[0].map((r) => Object.keys(r.recorded)), [[], [], ["A"], []]);
  assert.equal(at("A", 6, 1), "CONTINUE"); // rung 4
  assert.equal(at("A", 9, 1), "CONTINUE"); // rung 8
  assert.equal(at("A", 9.5, 1), "CONTINUE"); // rung 1, skipped so far, is filled now
  assert.deepEqual(s.state()[0].map((r) => Object.keys(r.recorded)), [["A"], ["A"], ["A"], ["A"]]);
  // B jumps straight past max_t: STOP at max_t, then completion records it at rung 8.
  assert.equal(at("B", 12, 5), "STOP");
  assert.deepEqual(s.state()[0].map((r) => Object.keys(r.recorded)), [
    ["A", "B"],
    ["A"],
    ["A"],
    ["A"],
  ]);
});

Deno.test("a trial stopped at max_t = a rung is recorded there by on_trial_complete", () => {
  const s = asha({ maxT: 8, gracePeriod: 1, reductionFactor: 2 });
  for (const id of "AB") {
    for (let t = 1; t <= 8; t++) {
      const decision = feed(s, id, t, id === "A" ? 1 : 0.5);
      assert.equal(decision, t === 8 ? "STOP" : "CONTINUE", `${id} at ${t}`);
    }
  }
  assert.deepEqual(s.state()[0][0], { milestone: 8, recorded: { A: -1, B: -0.5 }, cutoff: -0.75 });
});

Deno.test("stopLastTrials false: trials go past max_t and are not re-judged", () => {
  const s = asha({ maxT: 4, gracePeriod: 1, reductionFactor: 2, stopLastTrials: false });
  assert.equal(s.maxT, undefined);
  for (let t = 1; t <= 6; t++) assert.equal(feed(s, "A", t, 1), "CONTINUE");
  for (let t = 1; t <= 3; t++) assert.equal(feed(s, "B", t, 0.5), "CONTINUE");
  assert.equal(feed(s, "B", 4, 2), "STOP"); // judged at rung 4 (cutoff -1)
  assert.equal(feed(s, "C", 1, 0.1), "CONTINUE");
});

Deno.test("results without the metric or time are ignored; errors record nothing", () => {
  const s = asha({ maxT: 10, gracePeriod: 1, reductionFactor: 2 });
  assert.equal(s.onTrialResult("A", { training_iteration: 1 }), "CONTINUE");
  assert.equal(s.onTrialResult("A", { loss: 1 }), "CONTINUE");
  assert.deepEqual(s.state()[0][3].recorded, {});
  feed(s, "B", 1, 1);
  s.onTrialError("B");
  assert.deepEqual(s.state()[0][3].recorded, { B: -1 });
  assert.equal(feed(s, "C", 1, 2), "STOP");
});

Deno.test("brackets are drawn from the seed (softmax over rung counts), reproducibly", () => {
  const ids = Array.from({ length: 200 }, (_, i) => `t${i}`).join(",").split(",");
  const draw = (seed: number) => {
    const s = new AshaScheduler({ maxT: 81, reductionFactor: 3, brackets: 3, seed });
    s.setSearchProperties("loss", "min");
    for (const id of ids) s.onTrialAdd(id);
    // Which bracket: its lowest rung catches the first result only if its milestone <= 1.
    return ids.map((id) => {
      s.onTrialResult(id, { training_iteration: 9, loss: 1 });
      return s.state().findIndex((b) => id in (b.find((r) => r.milestone === 9)?.recorded ?? {}));
    });
  };
  const a = draw(1), b = draw(1), c = draw(2);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  // Probabilities e^0 : e^-1 : e^-2 (5, 4 and 3 rungs) ≈ 0.665, 0.245, 0.090.
  const share = (k: number) => a.filter((x) => x === k).length / a.length;
  assert.ok(Math.abs(share(0) - 0.665) < 0.1 && Math.abs(share(2) - 0.09) < 0.07, `${a}`);
});

Deno.test("metric and mode: taken from tune, conflicts rejected, required", () => {
  const s = new AshaScheduler({ metric: "loss", mode: "min" });
  s.setSearchProperties("loss", "min");
  assert.throws(() => s.setSearchProperties("acc", "max"), /differs/);
  assert.throws(() => new AshaScheduler().onTrialAdd("A"), /metric and a mode/);
  assert.throws(() => new AshaScheduler({ gracePeriod: 20, maxT: 10 }), /gracePeriod/);
  assert.throws(() => new AshaScheduler({ reductionFactor: 1 }), /reductionFactor/);
});

Deno.test("schedulers round-trip through JSON", () => {
  const s = asha({ maxT: 10, gracePeriod: 1, reductionFactor: 2 });
  const copy = schedulerFromJSON(s.toJSON());
  assert.deepEqual(copy.toJSON(), s.toJSON());
  const fifo = new FifoScheduler({ maxT: 5 });
  assert.deepEqual(schedulerFromJSON(fifo.toJSON()).toJSON(), fifo.toJSON());
});

Deno.test("FIFO never stops early; with maxT it stops at maxT", () => {
  const decide = (s: FifoScheduler, t: number) =>
    s.onTrialResult("A", { training_iteration: t, loss: t });
  const plain = new FifoScheduler();
  plain.setSearchProperties("loss", "min" as Mode);
  for (let t = 1; t < 50; t++) assert.equal(decide(plain, t), "CONTINUE");
  const capped = new FifoScheduler({ maxT: 3 });
  assert.deepEqual([1, 2, 3].map((t) => decide(capped, t)), ["CONTINUE", "CONTINUE", "STOP"]);
});
