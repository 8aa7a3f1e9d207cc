// Edge cases of tensors: empty tensors (a dimension of 0) work like PyTorch's or are refused by
// the op naming the shape; they never reach a 0-byte upload that panics Deno.
import assert from "node:assert/strict";
import { add, relu } from "../nn/ops/elementwise.ts";
import { linear, matmul } from "../nn/ops/matmul.ts";
import { argmax, mean, sum } from "../nn/ops/reduce.ts";
import { conv2d } from "../nn/ops/conv2d.ts";
import { maxPool2d } from "../nn/ops/max_pool.ts";
import { logSoftmax } from "../nn/ops/softmax.ts";
import { full, type Tensor, tensor, type TensorOptions } from "../nn/tensor.ts";
import { assertThrows } from "./assert.ts";
import { gpuReady } from "./testing.ts";

await gpuReady();

function filled(shape: number[], options: TensorOptions = {}): Tensor {
  const size = shape.reduce((product, dim) => product * dim, 1);
  return tensor(Float32Array.from({ length: size }, (_, i) => i + 1), shape, options);
}

/** Leaves NaN-filled buffers of the smallest size class in the pool, so unwritten outputs show. */
function dirtyPool(): void {
  const dirty = Array.from({ length: 8 }, () => full([64], NaN));
  for (const t of dirty) t.dispose();
}

Deno.test("empty tensors: creation, toArray and reshape of [0], [3, 0] and [0, 5]", async () => {
  for (const shape of [[0], [3, 0], [0, 5]]) {
    const t = tensor(new Float32Array(0), shape);
    assert.deepEqual(t.shape, shape);
    assert.equal(t.size, 0);
    assert.deepEqual([...await t.toArray()], []);
  }
  assert.deepEqual([...await tensor([], [0, 3], { dtype: "i32" }).toTypedArray()], []);
  assert.deepEqual(
    [...await tensor(new Uint8Array(0), [2, 0], { dtype: "u8" }).toTypedArray()],
    [],
  );
  const r = tensor(new Float32Array(0), [3, 0]).reshape([0, 7]);
  assert.deepEqual(r.shape, [0, 7]);
  assert.deepEqual([...await r.toArray()], []);
  assert.deepEqual([...await full([0, 5], 2).toArray()], []);
});

Deno.test("empty tensors: element-wise ops give empty tensors of the same shape", async () => {
  const a = tensor(new Float32Array(0), [3, 0]);
  const y = relu(add(a, a));
  assert.deepEqual(y.shape, [3, 0]);
  assert.deepEqual([...await y.toArray()], []);
});

Deno.test("empty tensors: sum is 0, mean is NaN, and the gradient is empty", async () => {
  dirtyPool();
  assert.equal(await sum(tensor(new Float32Array(0), [3, 0])).item(), 0);
  assert.ok(Number.isNaN(await mean(tensor(new Float32Array(0), [0, 5])).item()));
  const x = tensor(new Float32Array(0), [3, 0], { requiresGrad: true });
  sum(relu(x)).backward();
  assert.deepEqual(x.grad!.shape, [3, 0]);
});

Deno.test("empty tensors: matmul [0, 4]·[4, 3] is [0, 3]; [3, 0]·[0, 2] is zeros [3, 2]", async () => {
  dirtyPool();
  const rows = matmul(tensor(new Float32Array(0), [0, 4]), filled([4, 3]));
  assert.deepEqual(rows.shape, [0, 3]);
  assert.deepEqual([...await rows.toArray()], []);
  const inner = matmul(tensor(new Float32Array(0), [3, 0]), tensor(new Float32Array(0), [0, 2]));
  assert.deepEqual(inner.shape, [3, 2]);
  assert.deepEqual([...await inner.toArray()], [0, 0, 0, 0, 0, 0]);
  const withBias = linear(tensor(new Float32Array(0), [0, 4]), filled([3, 4]), filled([3]));
  assert.deepEqual(withBias.shape, [0, 3]);
  assert.deepEqual([...await argmax(tensor(new Float32Array(0), [0, 10])).toTypedArray()], []);
  assert.deepEqual(logSoftmax(tensor(new Float32Array(0), [0, 10])).shape, [0, 10]);
});

Deno.test("empty tensors: conv2d and maxPool2d refuse them naming the op and the shape", () => {
  assertThrows(
    () => conv2d(tensor(new Float32Array(0), [0, 1, 5, 5]), filled([2, 1, 3, 3])),
    /conv2d: empty tensors are not supported \(input \[0, 1, 5, 5\], weight \[2, 1, 3, 3\]\)/,
  );
  assertThrows(
    () => maxPool2d(tensor(new Float32Array(0), [0, 2, 4, 4]), { kernelSize: 2 }),
    /maxPool2d: empty tensors are not supported \(input \[0, 2, 4, 4\]\)/,
  );
});
