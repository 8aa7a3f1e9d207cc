/**
 * The largest batch and `l1` the adapter holds: the arithmetic on llvmpipe's limits, and a
 * CNN-BN training step at the largest batch this adapter allows.
 */

import { equal, ok } from "node:assert/strict";
import { gpu } from "../../nn/gpu/device.ts";
import {
  floatsPerImage,
  maxBatchSize,
  maxL1,
  type TensorSizeLimits,
} from "../../nn/model_limits.ts";
import { cnnBn } from "../../nn/models.ts";
import { Rng } from "../../nn/random.ts";
import { nllLoss } from "../../nn/ops/softmax.ts";
import { tidy } from "../../nn/scope.ts";
import { tensor } from "../../nn/tensor.ts";
import { gpuReady } from "../testing.ts";

await gpuReady();

// Mesa llvmpipe's: 16,384 texture rows (widened to 2,048 floats so that a texture holds any
// storage binding), 128 MiB storage bindings: 33,554,432 floats in one tensor.
const LLVMPIPE: TensorSizeLimits = {
  maxTextureDimension2D: 16384,
  maxStorageBufferBindingSize: 134217728,
  maxBufferSize: 2147483647,
};

Deno.test("maxBatchSize and maxL1 on llvmpipe's limits", () => {
  // CNN-BN's first conv output [N, 10, 24, 24] is its largest tensor: 5,760 floats an image.
  equal(maxBatchSize({ model: "cnn-bn" }, LLVMPIPE), 5825);
  equal(maxBatchSize({ model: "cnn" }, LLVMPIPE), 5825);
  equal(maxBatchSize({ model: "mlp" }, LLVMPIPE), Math.floor(2 ** 25 / 784));
  equal(maxBatchSize({ model: "tuning-cnn", l1: 64 }, LLVMPIPE), 5825);
  equal(maxBatchSize({ model: "tuning-cnn", l1: 10000 }, LLVMPIPE), 3355);
  equal(floatsPerImage({ model: "tuning-cnn" }), 5760);
  // fc1.weight [l1, 320] within one tensor of 2^25 floats.
  equal(maxL1(LLVMPIPE), 104857);
  // A texture of 256 texels a row binds first where the storage binding is small enough.
  equal(
    maxBatchSize({ model: "cnn-bn" }, { ...LLVMPIPE, maxStorageBufferBindingSize: 2 ** 26 }),
    2912,
  );
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
