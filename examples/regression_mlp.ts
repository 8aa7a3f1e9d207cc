// A regression MLP trained with `fit`: generated data held on the GPU by a TensorDataset,
// batches from a DataLoader, the mean squared error as the loss, `mse` and `mae` as metrics
// (summed on the GPU, read once per epoch), and early stopping on the validation loss that
// puts the best epoch's weights back at the end.
import {
  Adam,
  earlyStopping,
  evaluate,
  fit,
  GELU,
  init,
  Linear,
  mae,
  manualSeed,
  mse,
  mseLoss,
  Sequential,
} from "../mod.ts";
import { DataLoader, TensorDataset } from "../data/mod.ts";

await init();
manualSeed(0);

// y = sin(2·x0) + x1·x2 - 0.5·x3² + noise, for x uniform in [-1, 1]^4.
const FEATURES = 4;
function generate(count: number, seed: number): TensorDataset {
  let state = seed;
  const uniform = () => ((state = (state * 1664525 + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
  const x = new Float32Array(count * FEATURES).map(uniform);
  const y = Float32Array.from({ length: count }, (_, n) => {
    const [a, b, c, d] = x.subarray(n * FEATURES, (n + 1) * FEATURES);
    return Math.sin(2 * a) + b * c - 0.5 * d * d + 0.01 * uniform();
  });
  return new TensorDataset({ data: x, shape: [count, FEATURES] }, { data: y, shape: [count, 1] });
}
const trainSet = generate(1024, 1);
const valSet = generate(256, 2);
const train = new DataLoader(trainSet, { batchSize: 32, seed: 0 });
const val = new DataLoader(valSet, { batchSize: 256, shuffle: false });

const model = new Sequential(
  new Linear(FEATURES, 32),
  new GELU(),
  new Linear(32, 32),
  new GELU(),
  new Linear(32, 1),
);
const optimizer = new Adam(model.parameters(), { lr: 0.01 });
const stopper = earlyStopping({
  monitor: "valLoss",
  patience: 4,
  minDelta: 1e-4,
  restoreBestWeights: true,
});

const before = await evaluate(model, val, { loss: mseLoss, metrics: { mse } });
console.log(`untrained: val mse ${before.metrics!.mse.toFixed(4)}`);
const { history, stopped } = await fit(model, {
  train,
  val,
  optimizer,
  epochs: 60,
  loss: mseLoss,
  metrics: { mse, mae },
  callbacks: [stopper],
  onEpochEnd(record) {
    if (record.epoch % 5 === 0) {
      console.log(
        `epoch ${record.epoch}: train mse ${record.trainMetrics!.mse.toFixed(4)}, ` +
          `val mse ${record.valMetrics!.mse.toFixed(4)}, val mae ${
            record.valMetrics!.mae.toFixed(4)
          }`,
      );
    }
  },
});
console.log(
  stopped
    ? `stopped early after epoch ${stopper.stoppedEpoch}; best epoch ${stopper.bestEpoch}`
    : `ran all ${history.length} epochs; best epoch ${stopper.bestEpoch}`,
);
const after = await evaluate(model, val, { loss: mseLoss, metrics: { mse, mae } });
console.log(
  `final val mse ${after.metrics!.mse.toFixed(5)}, val mae ${after.metrics!.mae.toFixed(5)}`,
);

optimizer.dispose();
model.dispose();
train.dispose();
val.dispose();
trainSet.dispose();
valSet.dispose();
