import { add, mul, relu, scale, sub } from "../../nn/ops/elementwise.ts";
import { addReference, mulReference, reluReference } from "./reference/elementwise.ts";
import { gpuReady, gradCheck, randomArray } from "../testing.ts";

await gpuReady();

for (const size of [1, 7, 256, 1000, 70_001]) {
  Deno.test(`add, sub, mul and scale match the reference and finite differences (size ${size})`, async () => {
    const shape = [size];
    const a = randomArray(size, 1), b = randomArray(size, 2);
    const small = size < 2000;
    const inputs = [{ data: a, shape, check: small }, { data: b, shape, check: small }];
    await gradCheck({
      inputs,
      reference: ([x, y]) => addReference(x, y),
      gpu: ([x, y]) => add(x, y),
    });
    await gradCheck({
      inputs,
      reference: ([x, y]) => mulReference(x, y),
      gpu: ([x, y]) => mul(x, y),
    });
    await gradCheck({
      inputs,
      reference: ([x, y]) => Float64Array.from(x, (v, i) => v - y[i]),
      gpu: ([x, y]) => sub(x, y),
    });
    await gradCheck({
      inputs: [inputs[0]],
      reference: ([x]) => Float64Array.from(x, (v) => -2.5 * v),
      gpu: ([x]) => scale(x, -2.5),
    });
  });
}

Deno.test("relu matches the reference and finite differences, away from the kink", async () => {
  // Keep |x| >= 0.01 so that a finite-difference step of 1e-3 never crosses zero.
  const x = randomArray(333, 3).map((v) => v + Math.sign(v) * 0.01);
  await gradCheck({
    inputs: [{ data: x, shape: [3, 111] }],
    reference: ([v]) => reluReference(v),
    gpu: ([v]) => relu(v),
  });
});
