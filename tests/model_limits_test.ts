/**
 * The largest batch and `l1` the adapter holds: the arithmetic on llvmpipe's limits, and a
 * CNN-BN training step at the largest batch this adapter allows.
 */

import { equal, ok } from "node:assert/strict";
import { gpu } from "../nn/device.ts";
import { floatsPerImage, maxBatchSize, maxL1, type TensorSizeLimits } from "../nn/model_limits.ts";
import { cnnBn } from "../nn/models.ts";
import { Rng } from "../nn/random.ts";
import { nllLoss } from "../nn/ops/softmax.ts";
import { tidy } from "../nn/scope.ts";
import { tensor } from "../nn/tensor.ts";
import { gpuReady } from "./testing.ts";

await gpuReady();

// Mesa llvmpipe's: 16,384 texture rows of 1,024 floats, 128 MiB storage bindings.
const LLVMPIPE: TensorSizeLimits = {
  maxTextureDimension2D: 16384,
  maxStorageBufferBindingSize: 134217728,
  maxBufferSize: 2147483647,
};

Deno.test("maxBatchSize and maxL1 on llvmpipe's limits", () => {
  // CNN-BN failed at batch 2913: its first conv output [2913, 10, 24, 24] needs 16,386 rows.
  equal(maxBatchSize({ model: "cnn-bn" }, LLVMPIPE), 2912);
  equal(maxBatchSize({ model: "cnn" }, LLVMPIPE), 2912);
  equal(maxBatchSize({ model: "mlp" }, LLVMPIPE), Math.floor(16384 * 1024 / 784));
  equal(maxBatchSize({ model: "tuning-cnn", l1: 64 }, LLVMPIPE), 2912);
  equal(maxBatchSize({ model: "tuning-cnn", l1: 10000 }, LLVMPIPE), 1677);
  equal(floatsPerImage({ model: "tuning-cnn" }), 5760);
  // fc1.weight [l1, 320] within 16,384 rows of 1,024 floats.
  equal(maxL1(LLVMPIPE), 52428);
  // A smaller storage binding binds first.
  equal(maxL1({ ...LLVMPIPE, maxStorageBufferBindingSize: 320 * 4 * 100 }), 100);
  equal(maxBatchSize({ model: "mlp" }, { ...LLVMPIPE, maxBufferSize: 784 * 4 * 7 + 3 }), 7);
});

Deno.test("a CNN-BN training step runs at the largest batch the adapter allows", async () => {
  const batch = maxBatchSize({ model: "cnn-bn" }, gpu().limits);
  ok(batch >= 1);
  const model = cnnBn({ rng: new Rng(1) });
  const images = new Float32Array(batch * 784).map((_, i) => (i * 7919 % 256) / 255);
  const labels = Int32Array.from({ length: batch }, (_, i) => i % 10);
  const loss = tidy(() => {
    const x = tensor(images, [batch, 1, 28, 28]);
    const y = tensor(labels, [batch], { dtype: "i32" });
    const value = nllLoss(model.forward(x), y);
    value.backward();
    return value;
  });
  ok(Number.isFinite(await loss.item()), "finite loss");
  ok(model.conv1.weight.grad !== null, "gradients reached the first layer");
  loss.dispose();
  model.dispose();
});
