// A character-level LSTM that learns to continue sequences: Embedding → LSTM → Linear, trained
// with cross-entropy at every time step, Adam and gradient clipping. Throws unless it learned.
import {
  Adam,
  clipGradNorm,
  correctCount,
  crossEntropy,
  Embedding,
  init,
  Linear,
  LSTM,
  manualSeed,
  Module,
  noGrad,
  Rng,
  type Tensor,
  tensor,
  tidy,
} from "../mod.ts";
import { DataLoader, TensorDataset } from "../data/mod.ts";

// The data: strings that cycle through one of a few patterns from a random offset, e.g.
// "cdefghabcdef…" or "egacega…". After 'c' comes 'b', 'c', 'd' or 'e' depending on the pattern, so
// the model must remember what came before; only the first character or two are guesses.
const PATTERNS = ["abcdefgh", "hgfedcba", "aceg", "bdfh", "aabbccdd"];
const VOCAB = "abcdefgh";
const STEPS = 20; // characters the model reads per string (it predicts the next for each)

function makeStrings(count: number, seed: number): { inputs: Int32Array; targets: Int32Array } {
  const rng = new Rng(seed);
  const inputs = new Int32Array(count * STEPS), targets = new Int32Array(count * STEPS);
  for (let n = 0; n < count; n++) {
    const pattern = PATTERNS[rng.int(PATTERNS.length)];
    const offset = rng.int(pattern.length);
    const charAt = (t: number) => VOCAB.indexOf(pattern[(offset + t) % pattern.length]);
    for (let t = 0; t < STEPS; t++) {
      inputs[n * STEPS + t] = charAt(t);
      targets[n * STEPS + t] = charAt(t + 1); // the next character
    }
  }
  return { inputs, targets };
}

// The model: each character becomes a vector, the LSTM carries a state along the string, and a
// linear layer turns every step's hidden state into scores for the next character.
class CharLSTM extends Module {
  embed = new Embedding(VOCAB.length, 16);
  lstm = new LSTM(16, 48, { batchFirst: true });
  head = new Linear(48, VOCAB.length);

  /** Characters [N, T] (i32) → scores [N, T, vocabulary]. */
  forward(chars: Tensor): Tensor {
    const [hidden] = this.lstm.forward(this.embed.forward(chars)); // [N, T, 48]
    return this.head.forward(hidden);
  }
}

await init();
manualSeed(0);
const train = makeStrings(1024, 1), test = makeStrings(256, 2);
const trainSet = new TensorDataset(
  { data: train.inputs, shape: [1024, STEPS] },
  { data: train.targets, shape: [1024, STEPS] },
);
const loader = new DataLoader(trainSet, { batchSize: 64, seed: 0 });
const model = new CharLSTM();
const optimizer = new Adam(model.parameters(), { lr: 0.01 });

// Scores [N, T, C] and targets [N, T] flattened to [N*T, C] and [N*T]: one class per row.
const loss = (scores: Tensor, targets: Tensor) =>
  crossEntropy(scores.reshape([-1, VOCAB.length]), targets.reshape([-1]));

// Next-character accuracy on strings the model has not seen, every step counted.
const testChars = tensor(test.inputs, [256, STEPS], { dtype: "i32" });
const testNext = tensor(test.targets, [256, STEPS], { dtype: "i32" });
async function testAccuracy(): Promise<number> {
  model.eval();
  const hits = noGrad(() =>
    tidy(() =>
      correctCount(model.forward(testChars).reshape([-1, VOCAB.length]), testNext.reshape([-1]))
    )
  );
  const accuracy = (await hits.item()) / (256 * STEPS);
  hits.dispose();
  model.train();
  return accuracy;
}

let accuracy = 0;
for (let epoch = 1; epoch <= 6; epoch++) {
  let total = 0, batches = 0;
  for (const [chars, next] of loader.batches(epoch)) {
    const value = tidy(() => {
      optimizer.zeroGrad();
      const l = loss(model.forward(chars), next);
      l.backward();
      clipGradNorm(model.parameters(), 1.0); // keeps one bad batch from blowing up the weights
      optimizer.step();
      return l;
    });
    total += await value.item();
    value.dispose();
    batches++;
  }
  accuracy = await testAccuracy();
  console.log(
    `epoch ${epoch}: loss ${(total / batches).toFixed(4)}, next-char accuracy ${
      accuracy.toFixed(4)
    }`,
  );
}
console.log(`final next-char accuracy ${accuracy.toFixed(4)}`);
if (!(accuracy > 0.9)) throw new Error(`the LSTM did not learn: accuracy ${accuracy} <= 0.9`);
