// A two-layer network built by hand from wgtorch's ops, trained for a few steps, printing the loss.
import {
  init,
  linear,
  logSoftmax,
  nllLoss,
  randNormal,
  relu,
  SGD,
  tensor,
  tidy,
  zeros,
} from "../mod.ts";

await init();
const x = tensor([0, 0, 0, 1, 1, 0, 1, 1], [4, 2]); // XOR inputs
const y = tensor([0, 1, 1, 0], [4], { dtype: "i32" }); // and their classes
const w1 = randNormal([16, 2], { seed: 1, requiresGrad: true }),
  b1 = zeros([16], { requiresGrad: true });
const w2 = randNormal([2, 16], { std: 0.3, seed: 2, requiresGrad: true }),
  b2 = zeros([2], { requiresGrad: true });
const optimizer = new SGD([w1, b1, w2, b2], { lr: 0.5 });
for (let step = 0; step <= 200; step++) {
  const loss = tidy(() => {
    optimizer.zeroGrad();
    const loss = nllLoss(logSoftmax(linear(relu(linear(x, w1, b1)), w2, b2)), y);
    loss.backward();
    optimizer.step();
    return loss;
  });
  if (step % 50 === 0) console.log(`step ${step}: loss ${(await loss.item()).toFixed(4)}`);
  loss.dispose();
}
