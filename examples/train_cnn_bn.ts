// PyTorch-shaped training of the study's CNN-BN on FashionMNIST: model, optimizer, scheduler,
// the loop, evaluation, and the weights saved as safetensors.
import {
  Adam,
  cnnBn,
  correctCount,
  DataLoader,
  evaluate,
  GpuDataset,
  init,
  loadFashionMnist,
  manualSeed,
  nllLoss,
  noGrad,
  saveSafetensors,
  splitTrainVal,
  StepLR,
} from "../mod.ts";

await init();
manualSeed(0);
const { train: all, test } = await loadFashionMnist(); // cache, Debian's copy, or download
const { train, val } = splitTrainVal(all, { valFraction: 0.2, seed: 0 }); // 48,000 / 12,000
const trainLoader = new DataLoader(new GpuDataset(train), {
  batchSize: 128,
  seed: 0,
  limit: 12_000,
});
const valLoader = new DataLoader(new GpuDataset(val), { batchSize: 1000, shuffle: false });

const model = cnnBn();
const optimizer = new Adam(model.parameters(), { lr: 0.01 });
const scheduler = new StepLR(optimizer, { stepSize: 10, gamma: 0.1 });

for (let epoch = 0; epoch < 2; epoch++) {
  model.train();
  for (const { x, y } of trainLoader.batches(epoch)) {
    optimizer.zeroGrad();
    const output = model.forward(x);
    const loss = nllLoss(output, y);
    loss.backward(); // also frees what the model kept for it
    optimizer.step();
    loss.dispose();
    output.dispose();
  }
  scheduler.step();
  const { loss, accuracy } = await evaluate(model, valLoader); // one readback per pass
  console.log(
    `epoch ${epoch + 1}: val loss ${loss.toFixed(4)}, val accuracy ${accuracy.toFixed(4)}`,
  );
}
const testLoader = new DataLoader(new GpuDataset(test), { batchSize: 1000, shuffle: false });
model.eval();
let correct = 0;
for (const { x, y } of testLoader.batches()) {
  const output = noGrad(() => model.forward(x)); // torch.no_grad(): no graph is kept
  const hits = correctCount(output, y);
  correct += await hits.item();
  hits.dispose();
  output.dispose();
}
console.log(`test accuracy ${(correct / test.count).toFixed(4)}`);
await saveSafetensors("cnn_bn.safetensors", model.stateDict(), { model: "cnn-bn" });
