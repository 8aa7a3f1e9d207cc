// A one-layer transformer that classifies token sequences: does token A come before token B?
// Embedding + a learned positional embedding → TransformerEncoderLayer → mean over time →
// Linear, trained with AdamW and a warm-up then cosine learning-rate schedule. Throws unless it
// learned.
import {
  AdamW,
  add,
  correctCount,
  CosineAnnealingLR,
  crossEntropy,
  defaultGenerator,
  Embedding,
  init,
  Linear,
  LinearLR,
  manualSeed,
  mean,
  Module,
  noGrad,
  randNormal,
  Rng,
  SequentialLR,
  type Tensor,
  tidy,
  TransformerEncoderLayer,
} from "../mod.ts";
import { DataLoader, TensorDataset } from "../data/mod.ts";

// The data: sequences of LENGTH tokens from a vocabulary of VOCAB, in which token A (0) and
// token B (1) each appear exactly once, anywhere; the rest are filler tokens 2..VOCAB-1. The
// class is 1 when A comes before B, else 0 (half of each). Order is all that tells them apart,
// so the model needs the positional embedding.
const VOCAB = 10, LENGTH = 12;
const A = 0, B = 1;

function makeSequences(count: number, seed: number): { tokens: Int32Array; labels: Int32Array } {
  const rng = new Rng(seed);
  const tokens = new Int32Array(count * LENGTH), labels = new Int32Array(count);
  for (let n = 0; n < count; n++) {
    const row = tokens.subarray(n * LENGTH, (n + 1) * LENGTH);
    for (let t = 0; t < LENGTH; t++) row[t] = 2 + rng.int(VOCAB - 2);
    const a = rng.int(LENGTH);
    const b = (a + 1 + rng.int(LENGTH - 1)) % LENGTH; // any other position
    row[a] = A;
    row[b] = B;
    labels[n] = a < b ? 1 : 0;
  }
  return { tokens, labels };
}

// The model. Self-attention lets every position look at the others; the mean over positions
// then gives one vector per sequence for the linear head.
const D_MODEL = 32;
class OrderClassifier extends Module {
  embed = new Embedding(VOCAB, D_MODEL);
  encoder = new TransformerEncoderLayer(D_MODEL, 4, {
    dimFeedforward: 64,
    dropout: 0,
    batchFirst: true,
  });
  head = new Linear(D_MODEL, 2);
  position: Tensor;

  constructor() {
    super();
    // One learned vector per position [LENGTH, D_MODEL], added to every sequence's embeddings.
    this.position = this.registerParameter(
      "position",
      randNormal([LENGTH, D_MODEL], { rng: defaultGenerator() }), // N(0, 1), as Embedding's
    );
  }

  /** Tokens [N, LENGTH] (i32) → class scores [N, 2]. */
  forward(tokens: Tensor): Tensor {
    const x = add(this.embed.forward(tokens), this.position); // [N, LENGTH, D_MODEL]
    const encoded = this.encoder.forward(x);
    return this.head.forward(mean(encoded, { dim: 1 })); // mean pooling over time
  }
}

await init();
manualSeed(0);
const train = makeSequences(2048, 1), test = makeSequences(512, 2);
const trainSet = new TensorDataset({ data: train.tokens, shape: [2048, LENGTH] }, train.labels);
const testSet = new TensorDataset({ data: test.tokens, shape: [512, LENGTH] }, test.labels);
const trainLoader = new DataLoader(trainSet, { batchSize: 64, seed: 0 });
const testLoader = new DataLoader(testSet, { batchSize: 512, shuffle: false });

const model = new OrderClassifier();
const EPOCHS = 5, WARMUP = 32;
const steps = EPOCHS * Math.ceil(2048 / 64);
const optimizer = new AdamW(model.parameters(), { lr: 1e-2, weightDecay: 0.01 });
// The lr climbs linearly for WARMUP steps, then falls along a half cosine to zero: both
// schedulers step once per batch here.
const scheduler = new SequentialLR(optimizer, {
  schedulers: [
    new LinearLR(optimizer, { startFactor: 0.05, totalIters: WARMUP }),
    new CosineAnnealingLR(optimizer, { tMax: steps - WARMUP }),
  ],
  milestones: [WARMUP],
});

async function testAccuracy(): Promise<number> {
  model.eval();
  let correct = 0;
  for (const [tokens, labels] of testLoader.batches()) {
    const hits = noGrad(() => tidy(() => correctCount(model.forward(tokens), labels)));
    correct += await hits.item();
    hits.dispose();
  }
  model.train();
  return correct / testSet.count;
}

let accuracy = 0;
for (let epoch = 1; epoch <= EPOCHS; epoch++) {
  let total = 0, batches = 0;
  for (const [tokens, labels] of trainLoader.batches(epoch)) {
    const value = tidy(() => {
      optimizer.zeroGrad();
      const loss = crossEntropy(model.forward(tokens), labels);
      loss.backward();
      optimizer.step();
      return loss;
    });
    scheduler.step();
    total += await value.item();
    value.dispose();
    batches++;
  }
  accuracy = await testAccuracy();
  console.log(
    `epoch ${epoch}: loss ${(total / batches).toFixed(4)}, test accuracy ${accuracy.toFixed(4)}`,
  );
}
console.log(`final test accuracy ${accuracy.toFixed(4)}`);
if (!(accuracy > 0.9)) {
  throw new Error(`the transformer did not learn: accuracy ${accuracy} <= 0.9`);
}
