// Texture mirrors of large tensors: every tensor a storage buffer can hold can be read by the ops.
import assert from "node:assert/strict";
import { gpu } from "../../nn/gpu/device.ts";
import { relu } from "../../nn/ops/elementwise.ts";
import { maxTensorElements, Tensor, tensor, tensorFits } from "../../nn/tensor.ts";
import { assertThrows } from "../assert.ts";
import {
  maxElementsPerTexture,
  tensorTexture,
  texelsPerRow,
  texelsPerRowFor,
  textureFits,
} from "../../nn/gpu/texture.ts";
import { flush, markBufferWritten, streamStats } from "../../nn/gpu/stream.ts";
import { gpuReady } from "../testing.ts";

await gpuReady();

Deno.test("texture rows widen until the largest storage binding fits in one texture", () => {
  // llvmpipe: 16384 rows, 128 MiB bindings.
  assert.equal(
    texelsPerRowFor({ maxTextureDimension2D: 16384, maxStorageBufferBindingSize: 2 ** 27 }),
    512,
  );
  assert.equal(
    texelsPerRowFor({ maxTextureDimension2D: 8192, maxStorageBufferBindingSize: 2 ** 27 }),
    1024,
  );
  assert.equal(
    texelsPerRowFor({ maxTextureDimension2D: 16384, maxStorageBufferBindingSize: 2 ** 24 }),
    256,
  );
  assert.equal(
    texelsPerRowFor({ maxTextureDimension2D: 4096, maxStorageBufferBindingSize: 2 ** 31 }),
    4096,
  );
});

Deno.test("textureFits: every tensor the largest storage binding holds fits", () => {
  const bindingFloats = gpu().limits.maxStorageBufferBindingSize / 4;
  assert.ok(maxElementsPerTexture() >= bindingFloats);
  assert.ok(textureFits([2913, 10, 24, 24]));
  assert.ok(textureFits([maxElementsPerTexture()]));
  assert.ok(!textureFits([maxElementsPerTexture() + 1]));
  assert.ok(!textureFits([2, maxElementsPerTexture()]));
});

Deno.test("an op reads a tensor larger than 16384 rows of 1024 floats (cnn-bn's conv at batch 2913)", async () => {
  const shape = [2913, 10, 24, 24];
  const size = shape.reduce((a, b) => a * b);
  assert.ok(size > 16384 * 1024, "past the old single-texture limit");
  const data = new Float32Array(size);
  for (let i = 0; i < size; i++) data[i] = (i % 13) - 6;
  const x = tensor(data, shape);
  const y = relu(x);
  const out = await y.toArray();
  x.dispose();
  y.dispose();
  assert.deepEqual(y.shape, shape);
  let bad = -1;
  for (let i = 0; i < size && bad < 0; i++) if (out[i] !== Math.max(0, data[i])) bad = i;
  assert.equal(bad, -1, `element ${bad}: ${out[bad]} instead of ${Math.max(0, data[bad])}`);
});

Deno.test("a tensor larger than a storage binding is refused naming its shape and the largest size", () => {
  const largest = maxTensorElements("f32");
  assert.ok(tensorFits([largest]));
  assert.ok(!tensorFits([largest + 1]));
  assert.ok(tensorFits([largest + 1], "u8"), "u8 elements take a quarter of the bytes");
  // A batch of cnn-bn's first activation one image past what the adapter's largest binding holds.
  const image = 10 * 24 * 24;
  const batch = Math.floor(largest / image) + 1;
  assertThrows(
    () => Tensor.empty([batch, 10, 24, 24]),
    new RegExp(
      `shape \\[${batch}, 10, 24, 24\\] \\(${
        batch * image
      } elements\\) is too large.*${largest} elements`,
    ),
  );
});

Deno.test("streamStats counts the bytes each texture mirror refresh copies, once per version", () => {
  // 3 full rows of texels and a partial one, whatever the adapter's row width.
  const floatsPerRow = texelsPerRow() * 4;
  const size = 3 * floatsPerRow + 6;
  const x = tensor(new Float32Array(size), [size]);
  try {
    const before = streamStats();
    tensorTexture(x);
    tensorTexture(x); // same version: no copy
    const once = streamStats();
    assert.equal(once.textureCopies - before.textureCopies, 1);
    // Whole texels: the partial row's 6 floats take 2 texels (8 floats).
    assert.equal(once.textureCopyBytes - before.textureCopyBytes, (3 * floatsPerRow + 8) * 4);
    flush();
    markBufferWritten(x.buffer);
    tensorTexture(x);
    assert.equal(
      streamStats().textureCopyBytes - once.textureCopyBytes,
      (3 * floatsPerRow + 8) * 4,
    );
  } finally {
    x.dispose();
  }
});
