import { add, mul, relu, scale, sub } from "../../nn/ops/elementwise.ts";
import {
  addBackwardReference,
  addReference,
  mulBackwardReference,
  mulReference,
  reluBackwardReference,
  reluReference,
  scaleReference,
  subBackwardReference,
  subReference,
} from "./reference/elementwise.ts";
import { testOp } from "./op_helper.ts";
import { gpuReady, randomArray } from "../testing.ts";

await gpuReady();

// Gradients against the reference backward at every size, and against finite differences too up to
// 2,000 input elements (testOp's default).
for (const size of [1, 7, 256, 1000, 70_001]) {
  Deno.test(`add, sub, mul and scale match the reference and finite differences (size ${size})`, async () => {
    const inputs = [[size], [size]];
    await testOp({
      name: `add [${size}]`,
      inputs,
      gpu: ([x, y]) => add(x, y),
      reference: ([x, y]) => addReference(x, y),
      backward: (_, grad) => addBackwardReference(grad),
    });
    await testOp({
      name: `mul [${size}]`,
      inputs,
      gpu: ([x, y]) => mul(x, y),
      reference: ([x, y]) => mulReference(x, y),
      backward: ([x, y], grad) => mulBackwardReference(grad, x, y),
    });
    await testOp({
      name: `sub [${size}]`,
      inputs,
      gpu: ([x, y]) => sub(x, y),
      reference: ([x, y]) => subReference(x, y),
      backward: (_, grad) => subBackwardReference(grad),
    });
    await testOp({
      name: `scale [${size}]`,
      inputs: [[size]],
      gpu: ([x]) => scale(x, -2.5),
      reference: ([x]) => scaleReference(x, -2.5),
      backward: (_, grad) => [scaleReference(grad, -2.5)],
    });
  });
}

Deno.test("relu matches the reference and finite differences, away from the kink", async () => {
  // Keep |x| >= 0.01 so that a finite-difference step of 1e-3 never crosses zero.
  const x = randomArray(333, 3).map((v) => v + Math.sign(v) * 0.01);
  await testOp({
    name: "relu [3, 111]",
    inputs: [{ shape: [3, 111], data: x }],
    gpu: ([v]) => relu(v),
    reference: ([v]) => reluReference(v),
    backward: ([v], grad) => [reluBackwardReference(grad, v)],
  });
});
