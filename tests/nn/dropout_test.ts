import { dropout, dropoutMask } from "../../nn/ops/dropout.ts";
import { dropoutBackwardReference, dropoutReference } from "./reference/dropout.ts";
import { ones, tensor } from "../../nn/tensor.ts";
import { assert, assertThrows } from "../assert.ts";
import { assertClose, gpuReady, randomArray } from "../testing.ts";
import { testOp } from "./op_helper.ts";

await gpuReady();

/** The GPU mask: dropout of ones, as 0/1. */
async function gpuMask(size: number, p: number, seed: number): Promise<Uint8Array> {
  const out = await dropout(ones([size]), { p, training: true, seed }).toArray();
  return Uint8Array.from(out, (v) => v === 0 ? 0 : 1);
}

function fraction(mask: Uint8Array): number {
  return mask.reduce((sum, kept) => sum + kept, 0) / mask.length;
}

Deno.test("dropout in eval mode and with p = 0 returns a view of x, and passes gradients", async () => {
  const data = randomArray(35, 1);
  for (const options of [{ p: 0.5, training: false, seed: 1 }, { p: 0, training: true, seed: 1 }]) {
    const x = tensor(Float32Array.from(data), [5, 7], { requiresGrad: true });
    const out = dropout(x, options);
    assert.equal(out.buffer, x.buffer);
    assertClose(await out.toArray(), data);
    out.backward({ grad: tensor(Float32Array.from(data), [5, 7]) });
    assertClose(await x.grad!.toArray(), data);
  }
});

Deno.test("dropout with p = 1 gives zeros and zero gradients", async () => {
  const x = tensor(Float32Array.from(randomArray(10, 2)), [10], { requiresGrad: true });
  const out = dropout(x, { p: 1, training: true, seed: 3 });
  assert.deepEqual(Array.from(await out.toArray()), new Array(10).fill(0));
  out.backward({ grad: ones([10]) });
  assert.deepEqual(Array.from(await x.grad!.toArray()), new Array(10).fill(0));
  assert.deepEqual(Array.from(dropoutMask(10, 1, 3)), new Array(10).fill(0));
});

const cases: [number[], number, number][] = [
  [[1], 0.5, 0],
  [[7, 5], 0.3, 1],
  [[128, 256], 0.5, 2],
  [[128, 128], 0.2, 0xffffffff],
  [[32, 256], 0.9, 5],
];
for (const [shape, p, seed] of cases) {
  Deno.test(`dropout matches dropoutMask and the reference (${shape}, p ${p})`, async () => {
    const size = shape.reduce((a, b) => a * b, 1);
    const mask = dropoutMask(size, p, seed);
    await testOp({
      name: `dropout [${shape}] p ${p} seed ${seed}`,
      inputs: [{ shape, data: randomArray(size, size) }],
      seed: 7,
      gpu: ([x]) => dropout(x, { p, training: true, seed }),
      reference: ([x]) => dropoutReference(x, mask, p),
      backward: (_, grad) => [dropoutBackwardReference(grad, mask, p)],
      outputShape: shape,
    });
  });
}

Deno.test("dropout's gradient is mask * scale (finite differences)", async () => {
  const mask = dropoutMask(35, 0.4, 9);
  // No backward reference: testOp checks the GPU gradient against finite differences.
  await testOp({
    name: "dropout [7, 5] p 0.4 seed 9",
    seed: 0,
    inputs: [{ data: randomArray(35, 4), shape: [7, 5] }],
    reference: ([x]) => dropoutReference(x, mask, 0.4),
    gpu: ([x]) => dropout(x, { p: 0.4, training: true, seed: 9 }),
  });
});

Deno.test("dropout keeps about 1 - p of a large tensor; seeds fix the mask", async () => {
  const size = 1 << 18;
  for (const p of [0.1, 0.5, 0.9]) {
    const kept = fraction(await gpuMask(size, p, 42));
    // The standard deviation of the fraction is at most 0.001: allow 6 of them.
    assert.ok(Math.abs(kept - (1 - p)) < 0.006, `p ${p}: kept ${kept}`);
  }
  const a = await gpuMask(size, 0.5, 7), b = await gpuMask(size, 0.5, 7);
  assert.deepEqual(a, b);
  for (const seed of [8, 7 + 2 ** 16, 0]) {
    const c = await gpuMask(size, 0.5, seed);
    const differ = a.reduce((sum, kept, i) => sum + (kept !== c[i] ? 1 : 0), 0) / size;
    // Independent masks differ on 2 p (1 - p) = half of the elements.
    assert.ok(Math.abs(differ - 0.5) < 0.006, `seed ${seed}: ${differ} of the mask differs`);
  }
});

Deno.test("dropout rejects a bad p or seed", () => {
  const x = ones([4]);
  assertThrows(() => dropout(x, { p: 1.5, training: true, seed: 0 }), /^dropout: p must be/);
  assertThrows(() => dropout(x, { p: 0.5, training: true, seed: -1 }), /^dropout: seed must/);
  assertThrows(() => dropout(x, { p: 0.5, training: true, seed: 0.5 }), /^dropout: seed must/);
});

Deno.test("dropout keeps NaN where it drops (NaN * 0 is NaN, as in PyTorch)", async () => {
  const x = tensor(new Float32Array(64).fill(NaN), [64]);
  const out = await dropout(x, { p: 0.5, training: true, seed: 4 }).toArray();
  assert.ok(Array.from(dropoutMask(64, 0.5, 4)).includes(0), "some elements are dropped");
  assert.ok(Array.from(out).every(Number.isNaN), "every element stays NaN");
});
