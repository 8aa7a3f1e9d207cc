/**
 * Ten training steps of a study model on one generated batch, the same in Deno and in the
 * browser (bundled by train_entry.ts): the model initialised from a seed, Adam (lr 0.01), and a
 * batch of seeded uniform images with seeded labels. Returns the loss of each step.
 *
 * @module
 */

import { init } from "../../nn/gpu/device.ts";
import { createModel, type ModelName } from "../../nn/models.ts";
import { nllLoss } from "../../nn/ops/softmax.ts";
import { Rng } from "../../nn/random.ts";
import { tidy } from "../../nn/scope.ts";
import { tensor } from "../../nn/tensor.ts";
import { Adam } from "../../train/optim/adam.ts";

/** What `trainSteps` runs. */
export interface TrainStepsOptions {
  /** The study model. */
  model: ModelName;
  /** Seed of the weights (the batch uses seed + 1). */
  seed: number;
  /** Batch size. */
  batch: number;
  /** Steps. */
  steps: number;
}

/** The loss of each of `steps` Adam steps on one seeded batch. */
export async function trainSteps(options: TrainStepsOptions): Promise<number[]> {
  await init();
  const model = createModel(options.model, { rng: new Rng(options.seed) });
  const optimizer = new Adam(model.parameters(), { lr: 0.01 });
  const rng = new Rng(options.seed + 1);
  const pixels = Float32Array.from({ length: options.batch * 784 }, () => rng.next());
  const labels = Int32Array.from({ length: options.batch }, () => rng.int(10));
  const x = tensor(pixels, [options.batch, 1, 28, 28]);
  const y = tensor(labels, [options.batch], { dtype: "i32" });
  const losses: number[] = [];
  try {
    for (let step = 0; step < options.steps; step++) {
      const loss = tidy(() => {
        optimizer.zeroGrad();
        const loss = nllLoss(model.forward(x), y);
        loss.backward();
        optimizer.step();
        return loss;
      });
      losses.push(await loss.item());
      loss.dispose();
    }
  } finally {
    optimizer.zeroGrad();
    optimizer.dispose();
    model.dispose();
    x.dispose();
    y.dispose();
  }
  return losses;
}

/**
 * Training throughput (images per second) of a study model on one seeded batch: 3 warm-up steps
 * (compiling the kernels), then `steps` steps timed, with one readback at the end.
 */
export async function trainThroughput(options: TrainStepsOptions): Promise<number> {
  await init();
  const model = createModel(options.model, { rng: new Rng(options.seed) });
  const optimizer = new Adam(model.parameters(), { lr: 0.01 });
  const rng = new Rng(options.seed + 1);
  const x = tensor(Float32Array.from({ length: options.batch * 784 }, () => rng.next()), [
    options.batch,
    1,
    28,
    28,
  ]);
  const y = tensor(Int32Array.from({ length: options.batch }, () => rng.int(10)), [
    options.batch,
  ], { dtype: "i32" });
  const step = () =>
    tidy(() => {
      optimizer.zeroGrad();
      const loss = nllLoss(model.forward(x), y);
      loss.backward();
      optimizer.step();
      return loss;
    });
  try {
    for (let i = 0; i < 3; i++) {
      const loss = step();
      await loss.item();
      loss.dispose();
    }
    const started = performance.now();
    for (let i = 0; i < options.steps; i++) {
      const loss = step();
      if (i === options.steps - 1) await loss.item();
      loss.dispose();
    }
    return 1000 * options.steps * options.batch / (performance.now() - started);
  } finally {
    optimizer.zeroGrad();
    optimizer.dispose();
    model.dispose();
    x.dispose();
    y.dispose();
  }
}
