/**
 * Conv2d (every option), Conv1d and ConvTranspose2d against PyTorch: the same parameters and
 * inputs give the same outputs and the same input, weight and bias gradients.
 */
import { Conv1d, type Conv1dLayerOptions } from "../../nn/modules/conv1d.ts";
import { Conv2d, type Conv2dLayerOptions } from "../../nn/modules/conv2d.ts";
import {
  ConvTranspose2d,
  type ConvTranspose2dLayerOptions,
} from "../../nn/modules/conv_transpose2d.ts";
import type { Module } from "../../nn/modules/module.ts";
import { type Tensor, tensor } from "../../nn/tensor.ts";
import { tidy } from "../../nn/scope.ts";
import { assertClose, gpuReady, randomArray } from "../testing.ts";
import { askTorch, skipWithoutTorch } from "../torch.ts";

await gpuReady();

type LayerName = "Conv2d" | "Conv1d" | "ConvTranspose2d";
type Options = Conv2dLayerOptions | Conv1dLayerOptions | ConvTranspose2dLayerOptions;

interface Case {
  layer: LayerName;
  /** inChannels, outChannels, kernelSize. */
  args: [number, number, number | [number, number]];
  options: Options;
  input: number[];
}

const cases: Case[] = [
  { layer: "Conv2d", args: [3, 4, 3], options: {}, input: [2, 3, 7, 6] },
  {
    layer: "Conv2d",
    args: [3, 4, [3, 2]],
    options: { stride: [2, 1], padding: [1, 0] },
    input: [1, 3, 8, 7],
  },
  { layer: "Conv2d", args: [2, 4, [2, 4]], options: { padding: "same" }, input: [2, 2, 6, 7] },
  {
    layer: "Conv2d",
    args: [2, 3, 3],
    options: { padding: "valid", dilation: [2, 1], bias: false },
    input: [1, 2, 9, 6],
  },
  {
    layer: "Conv2d",
    args: [4, 6, 3],
    options: { groups: 2, padding: "same", dilation: 2 },
    input: [2, 4, 7, 8],
  },
  {
    layer: "Conv2d",
    args: [5, 5, 3],
    options: { groups: 5, stride: 2, padding: 1 },
    input: [2, 5, 7, 9],
  },
  {
    layer: "Conv2d",
    args: [4, 8, [1, 3]],
    options: { groups: 4, padding: [0, 2], stride: [1, 3] },
    input: [1, 4, 3, 11],
  },
  { layer: "Conv1d", args: [3, 4, 3], options: { stride: 2, padding: 1 }, input: [2, 3, 9] },
  {
    layer: "Conv1d",
    args: [4, 2, 4],
    options: { padding: "same", groups: 2, dilation: 2 },
    input: [1, 4, 10],
  },
  {
    layer: "ConvTranspose2d",
    args: [3, 2, 3],
    options: { stride: 2, padding: 1, outputPadding: 1 },
    input: [2, 3, 4, 5],
  },
  {
    layer: "ConvTranspose2d",
    args: [4, 6, [2, 3]],
    options: { stride: [1, 2], groups: 2, dilation: [2, 1], bias: false },
    input: [1, 4, 5, 3],
  },
  { layer: "ConvTranspose2d", args: [2, 3, 3], options: {}, input: [1, 2, 4, 4] },
];

function makeLayer(c: Case): Module & { weight: Tensor; bias: Tensor | null } {
  const [inChannels, outChannels, kernel] = c.args;
  switch (c.layer) {
    case "Conv2d":
      return new Conv2d(inChannels, outChannels, kernel, c.options as Conv2dLayerOptions);
    case "Conv1d":
      return new Conv1d(inChannels, outChannels, kernel as number, c.options as Conv1dLayerOptions);
    case "ConvTranspose2d":
      return new ConvTranspose2d(
        inChannels,
        outChannels,
        kernel,
        c.options as ConvTranspose2dLayerOptions,
      );
  }
}

Deno.test("Conv2d, Conv1d and ConvTranspose2d match PyTorch: outputs and all gradients", async () => {
  if (skipWithoutTorch("conv_torch_test")) return;
  const requests = [];
  const ours = [];
  for (const [k, c] of cases.entries()) {
    const layer = makeLayer(c);
    const size = c.input.reduce((a, b) => a * b, 1);
    const xData = randomArray(size, 10 + k);
    const x = tensor(Float32Array.from(xData), c.input, { requiresGrad: true });
    const out = tidy(() => layer.forward(x));
    const gradData = randomArray(out.size, 50 + k);
    out.backward({ grad: tensor(Float32Array.from(gradData), out.shape) });
    // PyTorch takes the bias flag apart from the options.
    const options = Object.fromEntries(Object.entries(c.options).filter(([k]) => k !== "bias"));
    requests.push({
      layer: c.layer,
      args: c.args,
      options,
      input: { data: xData, shape: c.input },
      weight: { data: await layer.weight.toArray(), shape: layer.weight.shape },
      bias: layer.bias ? { data: await layer.bias.toArray(), shape: layer.bias.shape } : null,
      grad: { data: gradData, shape: out.shape },
    });
    ours.push({
      shape: out.shape,
      values: await out.toArray(),
      input: await x.grad!.toArray(),
      weight: await layer.weight.grad!.toArray(),
      bias: layer.bias ? await layer.bias.grad!.toArray() : null,
    });
  }
  const { answers } = await askTorch<{
    answers: {
      shape: number[];
      values: number[];
      input: number[];
      weight: number[];
      bias: number[] | null;
    }[];
  }>("conv.py", { cases: requests });
  for (const [k, c] of cases.entries()) {
    const name = `${c.layer}(${JSON.stringify(c.args)}, ${JSON.stringify(c.options)})`;
    const got = ours[k], want = answers[k];
    if (JSON.stringify(got.shape) !== JSON.stringify(want.shape)) {
      throw new Error(`${name}: shape ${got.shape}, PyTorch ${want.shape}`);
    }
    const tolerance = { atol: 1e-4, rtol: 1e-4 };
    assertClose(got.values, want.values, tolerance, `${name}: output`);
    assertClose(got.input, want.input, tolerance, `${name}: input gradient`);
    assertClose(got.weight, want.weight, tolerance, `${name}: weight gradient`);
    if (got.bias || want.bias) {
      assertClose(got.bias!, want.bias!, tolerance, `${name}: bias gradient`);
    }
  }
});
