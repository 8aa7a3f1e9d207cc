/** ResultGrid: best trial (scopes, NaN, ties), table and CSV. */

import assert from "node:assert/strict";
import { bestOf, ResultGrid, type TrialResult } from "../../train/tune/result_grid.ts";
import type { Metrics } from "../../train/tune/types.ts";

function trial(index: number, history: Metrics[], extra: Partial<TrialResult> = {}): TrialResult {
  return {
    id: `trial_${index}`,
    index,
    config: { lr: 0.1 * (index + 1), model: { l1: 64 } },
    status: "TERMINATED",
    iterations: history.length,
    lastResult: history.at(-1),
    history,
    bestMetric: bestOf(history, "loss", "min"),
    seconds: 1.23456,
    ...extra,
  };
}

Deno.test("bestResult: last value by default, best over history with scope all", () => {
  const grid = new ResultGrid([
    trial(0, [{ loss: 0.1 }, { loss: 0.9 }]),
    trial(1, [{ loss: 0.5 }, { loss: 0.4 }]),
    trial(2, [{ loss: 0.3 }, { acc: 1 }]), // last loss reported: 0.3
  ], { metric: "loss", mode: "min" });
  assert.equal(grid.bestResult()?.id, "trial_2");
  assert.equal(grid.bestResult("loss", "min", { scope: "all" })?.id, "trial_0");
  assert.equal(grid.bestResult("loss", "max")?.id, "trial_0");
  assert.equal(grid.bestResult("acc", "max")?.id, "trial_2");
  assert.equal(grid.bestResult("missing"), undefined);
});

Deno.test("bestResult ignores NaN and infinities; ties go to the earlier trial", () => {
  const grid = new ResultGrid([
    trial(0, [{ loss: NaN }]),
    trial(1, [{ loss: 0.5 }]),
    trial(2, [{ loss: -Infinity }]),
    trial(3, [{ loss: 0.5 }]),
    trial(4, [], { status: "PENDING" }),
  ], { metric: "loss", mode: "min" });
  assert.equal(grid.bestResult()?.id, "trial_1");
  assert.deepEqual(grid.counts(), { PENDING: 1, RUNNING: 0, TERMINATED: 4, STOPPED: 0, ERROR: 0 });
  assert.equal(bestOf([{ loss: NaN }, { loss: 2 }, { loss: 1 }], "loss", "max"), 2);
});

Deno.test("toTable flattens configs and shares columns; CSV quotes and writes NaN", () => {
  const grid = new ResultGrid([
    trial(0, [{ loss: NaN, training_iteration: 1 }]),
    trial(1, [], { status: "ERROR", error: 'bad "value", really\nbad' }),
  ], { metric: "loss", mode: "min" });
  const rows = grid.toTable();
  assert.deepEqual(Object.keys(rows[0]), [
    "trial_id",
    "status",
    "iterations",
    "seconds",
    "config/lr",
    "config/model/l1",
    "loss",
    "training_iteration",
    "best_loss",
    "error",
  ]);
  assert.deepEqual(Object.keys(rows[1]), Object.keys(rows[0]));
  assert.equal(rows[0].seconds, 1.235);
  assert.equal(rows[1].loss, null);
  const csv = grid.toCSV().split("\n");
  assert.equal(csv[1], "trial_0,TERMINATED,1,1.235,0.1,64,NaN,1,,");
  assert.equal(csv[2], 'trial_1,ERROR,0,1.235,0.2,64,,,,"bad ""value"", really');
  const json = JSON.parse(JSON.stringify(grid));
  assert.equal(json.trials[0].lastResult.loss, "NaN");
});
