import { conv1d, type Conv1dOptions } from "../../nn/ops/conv1d.ts";
import { Conv1d } from "../../nn/modules/conv1d.ts";
import { type Tensor, tensor, zeros } from "../../nn/tensor.ts";
import { assertThrows } from "../assert.ts";
import { assertClose, gpuReady } from "../testing.ts";
import { testOp } from "./op_helper.ts";
import {
  type ConvDims,
  convDimsOutput,
  convGeneralBackwardReference,
  convGeneralReference,
} from "./reference/conv2d.ts";

await gpuReady();

interface Case {
  batch: number;
  inChannels: number;
  outChannels: number;
  length: number;
  kernel: number;
  options: Omit<Conv1dOptions, "bias">;
}

/** The 2-D reference on a height-1 image; the padding as PyTorch resolves it. */
function dimsOf(c: Case): ConvDims {
  const dilation = c.options.dilation ?? 1;
  const span = dilation * (c.kernel - 1);
  const p = c.options.padding ?? 0;
  const [left, right] = p === "valid"
    ? [0, 0]
    : p === "full"
    ? [span, span]
    : p === "same"
    ? [Math.floor(span / 2), Math.ceil(span / 2)]
    : [p, p];
  return {
    batch: c.batch,
    inChannels: c.inChannels,
    outChannels: c.outChannels,
    height: 1,
    width: c.length,
    kernelHeight: 1,
    kernelWidth: c.kernel,
    stride: [1, c.options.stride ?? 1],
    padding: [0, 0, left, right],
    dilation: [1, dilation],
    groups: c.options.groups ?? 1,
  };
}

const cases: Case[] = [
  {
    batch: 1,
    inChannels: 3,
    outChannels: 2,
    length: 7,
    kernel: 3,
    options: { stride: 2, padding: 1 },
  },
  { batch: 2, inChannels: 2, outChannels: 3, length: 6, kernel: 4, options: { padding: "same" } },
  {
    batch: 2,
    inChannels: 4,
    outChannels: 2,
    length: 9,
    kernel: 3,
    options: { groups: 2, dilation: 2 },
  },
  {
    batch: 1,
    inChannels: 3,
    outChannels: 3,
    length: 5,
    kernel: 2,
    options: { groups: 3, padding: "full" },
  },
  { batch: 3, inChannels: 2, outChannels: 5, length: 8, kernel: 5, options: {} },
  { batch: 1, inChannels: 1, outChannels: 1, length: 1, kernel: 1, options: { padding: "valid" } },
];

for (const c of cases) {
  const d = dimsOf(c);
  const name = `conv1d [${c.batch},${c.inChannels},${c.length}] * [${c.outChannels},${
    c.inChannels / d.groups
  },${c.kernel}] ${JSON.stringify(c.options)}`;
  Deno.test(`${name} matches the reference and finite differences`, async () => {
    await testOp({
      name,
      inputs: [
        [c.batch, c.inChannels, c.length],
        [c.outChannels, c.inChannels / d.groups, c.kernel],
        [c.outChannels],
      ],
      gpu: ([x, w, b]: Tensor[]) => conv1d(x, w, { ...c.options, bias: b }),
      reference: ([x, w, b]) => convGeneralReference(x, w, b, d),
      backward: ([x, w], grad) => {
        const g = convGeneralBackwardReference(grad, x, w, d);
        return [g.input, g.weight, g.bias];
      },
      outputShape: [c.batch, c.outChannels, convDimsOutput(d)[1]],
    });
  });
}

Deno.test("conv1d: a hand-computed case and errors", async () => {
  const x = tensor([1, 2, 3, 4, 5], [1, 1, 5]);
  const w = tensor([1, -1], [1, 1, 2]);
  assertClose(await conv1d(x, w).toArray(), [-1, -1, -1, -1]);
  assertClose(await conv1d(x, w, { padding: "same" }).toArray(), [-1, -1, -1, -1, 5]);
  assertThrows(
    () => conv1d(zeros([2, 3, 8]), zeros([4, 2, 3])),
    /conv1d: input \[2, 3, 8\] does not fit weight \[4, 2, 3\] \(needs input \[N, 2, L\]/,
  );
  assertThrows(
    () => conv1d(zeros([2, 6, 8]), zeros([4, 2, 3]), { groups: 3 }),
    /conv1d: groups 3 must divide both the input channels \(6\) and the output channels \(4\)/,
  );
  assertThrows(
    () => conv1d(zeros([2, 2, 8]), zeros([4, 2, 3]), { padding: "same", stride: 2 }),
    /conv1d: padding "same" needs stride 1/,
  );
});

Deno.test("Conv1d: parameters, init and errors naming the layer", async () => {
  const conv = new Conv1d(4, 6, 3, { groups: 2, padding: "same" });
  if (JSON.stringify(conv.weight.shape) !== "[6,2,3]" || conv.bias?.shape[0] !== 6) {
    throw new Error(`Conv1d parameters ${conv.weight.shape} ${conv.bias?.shape}`);
  }
  const bound = 1 / Math.sqrt(2 * 3);
  if ((await conv.weight.toArray()).some((v) => Math.abs(v) > bound)) {
    throw new Error("Conv1d init out of bounds");
  }
  if (JSON.stringify(conv.forward(zeros([2, 4, 9])).shape) !== "[2,6,9]") {
    throw new Error("Conv1d 'same' changes the length");
  }
  assertThrows(
    () => conv.forward(zeros([2, 3, 9])),
    /Conv1d\(4, 6, kernelSize=3\): expected input \[N, 4, L\] \(or unbatched \[4, L\]\), got \[2, 3, 9\]/,
  );
  assertThrows(() => new Conv1d(3, 6, 3, { groups: 2 }), /Conv1d\(3, 6, kernelSize=3\): groups 2/);
});
