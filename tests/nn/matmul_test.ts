import { linear, matmul } from "../../nn/ops/matmul.ts";
import { linearReference, matmulReference } from "./reference/matmul.ts";
import { gpuReady, gradCheck, randomArray } from "../testing.ts";
import { assertThrows } from "../assert.ts";
import { tensor } from "../../nn/tensor.ts";

await gpuReady();

const shapes: [number, number, number][] = [
  [1, 1, 1],
  [1, 10, 7],
  [3, 5, 2],
  [7, 33, 13],
  [17, 9, 40],
  [5, 70, 129],
  [128, 10, 320],
  [10, 320, 128],
];

for (const [m, n, k] of shapes) {
  for (const transposeA of [false, true]) {
    for (const transposeB of [false, true]) {
      const layout = `${transposeA ? "T" : "N"}${transposeB ? "T" : "N"}`;
      Deno.test(`matmul ${layout} ${m}x${n}x${k} matches the reference and finite differences`, async () => {
        const a = randomArray(m * k, m * 7 + k);
        const b = randomArray(k * n, n * 13 + k);
        const small = m * n * k <= 20_000;
        await gradCheck({
          inputs: [
            { data: a, shape: transposeA ? [k, m] : [m, k], check: small },
            { data: b, shape: transposeB ? [n, k] : [k, n], check: small },
          ],
          reference: ([x, y]) => matmulReference(x, y, { m, n, k, transposeA, transposeB }),
          gpu: ([x, y]) => matmul(x, y, { transposeA, transposeB }),
          forwardTolerance: { atol: 1e-4, rtol: 1e-4 },
        });
      });
    }
  }
}

for (
  const [batch, inFeatures, outFeatures] of [[1, 3, 2], [9, 31, 17], [128, 784, 256], [32, 128, 10]]
) {
  Deno.test(`linear ${batch}x${inFeatures}->${outFeatures} matches the reference and finite differences`, async () => {
    const small = batch * inFeatures * outFeatures <= 20_000;
    await gradCheck({
      inputs: [
        { data: randomArray(batch * inFeatures, 1), shape: [batch, inFeatures], check: small },
        {
          data: randomArray(outFeatures * inFeatures, 2),
          shape: [outFeatures, inFeatures],
          check: small,
        },
        { data: randomArray(outFeatures, 3), shape: [outFeatures], check: small },
      ],
      reference: ([x, w, b]) => linearReference(x, w, b, { batch, inFeatures, outFeatures }),
      gpu: ([x, w, b]) => linear(x, w, b),
      forwardTolerance: { atol: 1e-4, rtol: 1e-4 },
    });
  });
}

Deno.test("matmul and linear name both shapes when they do not fit", () => {
  const a = tensor(new Float32Array(6), [2, 3]);
  const b = tensor(new Float32Array(8), [4, 2]);
  assertThrows(() => matmul(a, b), /matmul: inner dimensions differ.*\[2, 3\].*\[4, 2\]/);
  assertThrows(() => linear(a, b), /linear: input \[2, 3\] does not fit weight \[4, 2\]/);
  a.dispose();
  b.dispose();
});
