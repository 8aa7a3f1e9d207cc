// A small RGB conv net trained with `fit` on generated 3x32x32 images: the class is the colour
// channel (red, green or blue) that is brighter over a random patch of noise. Convolutions with
// padding "same", GroupNorm and GELU, average pooling (2x2, then global), a OneCycleLR schedule
// stepped after every batch, and top-2 accuracy beside accuracy as metrics.
import {
  accuracy,
  AdamW,
  AdaptiveAvgPool2d,
  AvgPool2d,
  Conv2d,
  crossEntropy,
  fit,
  Flatten,
  GELU,
  GroupNorm,
  init,
  Linear,
  manualSeed,
  OneCycleLR,
  Sequential,
  topKAccuracy,
} from "../mod.ts";
import { DataLoader, TensorDataset } from "../data/mod.ts";

await init();
manualSeed(0);

const [CHANNELS, SIZE, CLASSES] = [3, 32, 3];
/** `count` images of uniform noise in [0, 0.5], the class's channel +0.5 on a random patch. */
function generate(count: number, seed: number): TensorDataset {
  let state = seed;
  const uniform = () => (state = (state * 1664525 + 1013904223) >>> 0) / 2 ** 32;
  const images = new Float32Array(count * CHANNELS * SIZE * SIZE).map(() => 0.5 * uniform());
  const labels = new Int32Array(count);
  for (let n = 0; n < count; n++) {
    const label = Math.floor(uniform() * CLASSES);
    labels[n] = label;
    const [h, w] = [10 + Math.floor(uniform() * 12), 10 + Math.floor(uniform() * 12)];
    const [top, left] = [Math.floor(uniform() * (SIZE - h)), Math.floor(uniform() * (SIZE - w))];
    const plane = (n * CHANNELS + label) * SIZE * SIZE;
    for (let r = top; r < top + h; r++) {
      for (let c = left; c < left + w; c++) images[plane + r * SIZE + c] += 0.5;
    }
  }
  return new TensorDataset({ data: images, shape: [count, CHANNELS, SIZE, SIZE] }, labels);
}

const trainSet = generate(320, 1);
const valSet = generate(128, 2);
const train = new DataLoader(trainSet, { batchSize: 16, seed: 0 });
const val = new DataLoader(valSet, { batchSize: 64, shuffle: false });

const model = new Sequential(
  new Conv2d(CHANNELS, 8, 3, { padding: "same" }),
  new GroupNorm(2, 8),
  new GELU(),
  new AvgPool2d(2), // [N, 8, 16, 16]
  new Conv2d(8, 16, 3, { padding: "same" }),
  new GroupNorm(4, 16),
  new GELU(),
  new AdaptiveAvgPool2d(1), // global average: [N, 16, 1, 1]
  new Flatten(),
  new Linear(16, CLASSES),
);
const EPOCHS = 3;
const optimizer = new AdamW(model.parameters(), { lr: 0.004, weightDecay: 1e-4 });
const scheduler = new OneCycleLR(optimizer, {
  maxLr: 0.03,
  epochs: EPOCHS,
  stepsPerEpoch: train.length,
});

const { history } = await fit(model, {
  train,
  val,
  optimizer,
  scheduler,
  schedulerInterval: "batch",
  epochs: EPOCHS,
  loss: crossEntropy, // the model gives logits
  metrics: { accuracy, top2: topKAccuracy(2) },
  onEpochEnd(record) {
    console.log(
      `epoch ${record.epoch}: lr ${optimizer.lr.toExponential(2)}, train loss ` +
        `${record.trainLoss.toFixed(4)}, val loss ${record.valLoss!.toFixed(4)}, ` +
        `val top-2 ${record.valMetrics!.top2.toFixed(3)}`,
    );
  },
});
console.log(`val accuracy ${history.at(-1)!.valAccuracy!.toFixed(4)}`);

optimizer.dispose();
model.dispose();
train.dispose();
val.dispose();
trainSet.dispose();
valSet.dispose();
