// A custom op written in WGSL: swish(x) = x · sigmoid(βx), with its gradient as a second WGSL
// kernel, checked against the same function composed of wgtorch's ops. Then a tensor written
// with raw WebGPU commands, which wgtorch's ops see after markWritten.
import {
  customOp,
  flush,
  gpu,
  init,
  markWritten,
  mul,
  noGrad,
  scale,
  sigmoid,
  sum,
  tensor,
  tidy,
} from "../mod.ts";

await init();
const BETA = 1.5;
const swish = customOp({
  name: "swish",
  inputs: ["x"],
  constants: { BETA },
  helpers: "fn sig(v: f32) -> f32 { return 1.0 / (1.0 + exp(-v)); }",
  forward: "xAt(i) * sig(BETA * xAt(i))",
  backward: {
    x: `let x = xAt(i);
        let s = sig(BETA * x);
        return gradAt(i) * (s + BETA * x * s * (1.0 - s));`,
  },
});

const data = Array.from({ length: 11 }, (_, i) => i / 2 - 2.5);
const x = tensor(data, [11], { requiresGrad: true });
const composed = tensor(data, [11], { requiresGrad: true });
const y = tidy(() => {
  const y = swish(x);
  sum(y).backward();
  sum(mul(composed, sigmoid(scale(composed, BETA)))).backward();
  return y;
});
const [custom, customGrad, reference, referenceGrad] = [
  await y.toArray(),
  await x.grad!.toArray(),
  await noGrad(() => mul(composed, sigmoid(scale(composed, BETA)))).toArray(),
  await composed.grad!.toArray(),
];
const worst = (a: Float32Array, b: Float32Array) =>
  Math.max(...a.map((v, i) => Math.abs(v - b[i])));
console.log(`swish(x) = [${Array.from(custom, (v) => v.toFixed(4)).join(", ")}]`);
console.log(`forward difference ${worst(custom, reference).toExponential(2)}`);
console.log(`gradient difference ${worst(customGrad, referenceGrad).toExponential(2)}`);

// Raw WebGPU: submit wgtorch's pending work, write the buffer, then tell wgtorch.
flush();
gpu().device.queue.writeBuffer(x.buffer, 0, new Float32Array(11).fill(2));
markWritten(x);
const after = noGrad(() => swish(x));
console.log(`after writing 2s: swish(2) = ${(await after.toArray())[0].toFixed(4)}`);
