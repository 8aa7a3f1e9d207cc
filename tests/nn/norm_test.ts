import { groupNorm, layerNorm } from "../../nn/ops/norm.ts";
import { GroupNorm, LayerNorm } from "../../nn/modules/normalization.ts";
import { saveSafetensors } from "../../nn/safetensors.ts";
import { memoryStats } from "../../nn/gpu/buffer_pool.ts";
import { tidy } from "../../nn/scope.ts";
import { type Tensor, tensor } from "../../nn/tensor.ts";
import {
  groupNormShape,
  layerNormShape,
  normBackwardReference,
  normReference,
  type NormReferenceShape,
} from "./reference/norm.ts";
import { testOp } from "./op_helper.ts";
import { assert, assertThrows } from "../assert.ts";
import { assertClose, gpuReady, randomArray } from "../testing.ts";
import { askTorch, skipWithoutTorch } from "../torch.ts";

await gpuReady();

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Which affine parameters a case has. */
type Affine = "both" | "weight" | "bias" | "none";

/**
 * A testOp case of a norm: inputs x (in [-2, 2)), then the weight and bias present, checked
 * against the float64 reference forward and backward.
 */
async function testNorm(
  name: string,
  xShape: readonly number[],
  paramShape: readonly number[],
  shape: NormReferenceShape,
  affine: Affine,
  gpu: (x: Tensor, weight?: Tensor, bias?: Tensor) => Tensor,
  eps?: number,
): Promise<void> {
  const hasWeight = affine === "both" || affine === "weight";
  const hasBias = affine === "both" || affine === "bias";
  const inputs = [
    { shape: xShape, low: -2, high: 2 },
    ...(hasWeight ? [{ shape: paramShape, low: 0.5, high: 1.5 }] : []),
    ...(hasBias ? [{ shape: paramShape }] : []),
  ];
  const unpack = <T>(values: T[]) => ({
    x: values[0],
    weight: hasWeight ? values[1] : undefined,
    bias: hasBias ? values[hasWeight ? 2 : 1] : undefined,
  });
  await testOp({
    name: `${name} (${affine})`,
    inputs,
    outputShape: xShape,
    gpu: (tensors) => {
      const { x, weight, bias } = unpack(tensors);
      return gpu(x, weight, bias);
    },
    reference: (values) => {
      const { x, weight, bias } = unpack(values);
      return normReference(x, shape, { weight, bias, eps });
    },
    backward: (values, grad) => {
      const { x, weight, bias } = unpack(values);
      const { dx, dweight, dbias } = normBackwardReference(grad, x, shape, { weight, bias, eps });
      return [dx, ...(hasWeight ? [dweight] : []), ...(hasBias ? [dbias] : [])];
    },
    forwardTolerance: { atol: 2e-5, rtol: 1e-4 },
    gradTolerance: { atol: 5e-5, rtol: 5e-4 },
  });
}

const LAYER_CASES: { x: number[]; normalized: number[]; affine: Affine[] }[] = [
  { x: [3, 5], normalized: [5], affine: ["both", "none", "weight", "bias"] },
  { x: [2, 3, 8], normalized: [8], affine: ["both", "none"] }, // vec4 rows
  { x: [1, 7], normalized: [7], affine: ["both"] }, // batch 1
  { x: [2, 3, 4], normalized: [3, 4], affine: ["both", "weight"] }, // 2 dims, vec4
  { x: [2, 3, 5], normalized: [3, 5], affine: ["both"] }, // 2 dims, odd
  { x: [6], normalized: [6], affine: ["both"] }, // one row, no leading dims
  { x: [4, 1], normalized: [1], affine: ["both"] }, // rows of one value: y = bias
  { x: [5, 2, 1], normalized: [2, 1], affine: ["both"] },
  { x: [9, 33], normalized: [33], affine: ["both"] }, // rows past one workgroup
];

for (const c of LAYER_CASES) {
  for (const affine of c.affine) {
    Deno.test(`layerNorm ${JSON.stringify(c.x)} over ${JSON.stringify(c.normalized)}, ${affine}`, () =>
      testNorm(
        `layerNorm ${JSON.stringify(c.x)} over ${JSON.stringify(c.normalized)}`,
        c.x,
        c.normalized,
        layerNormShape(sizeOf(c.x), sizeOf(c.normalized)),
        affine,
        (x, weight, bias) => layerNorm(x, c.normalized, { weight, bias }),
      ));
  }
}

Deno.test("layerNorm with eps 0.1 and a number as normalizedShape", () =>
  testNorm(
    "layerNorm eps 0.1",
    [3, 4],
    [4],
    layerNormShape(12, 4),
    "both",
    (x, weight, bias) => layerNorm(x, 4, { weight, bias, eps: 0.1 }),
    0.1,
  ));

Deno.test("layerNorm of a larger batch is checked by the reference backward", () =>
  testNorm(
    "layerNorm [64, 48]",
    [64, 48],
    [48],
    layerNormShape(64 * 48, 48),
    "both",
    (x, weight, bias) => layerNorm(x, [48], { weight, bias }),
  ));

const GROUP_CASES: { x: number[]; groups: number[]; affine: Affine[] }[] = [
  { x: [2, 6, 5], groups: [3, 1, 6], affine: ["both"] }, // spatial 5: scalar units
  { x: [1, 4, 2, 4], groups: [2], affine: ["both", "none", "weight", "bias"] }, // batch 1, vec4
  { x: [3, 6], groups: [1, 2], affine: ["both"] }, // no spatial dims
  { x: [2, 6, 3, 3], groups: [6, 3], affine: ["both"] }, // groups = C
  { x: [2, 5, 4], groups: [1, 5], affine: ["both", "none"] }, // odd channels, vec4 spatial
  { x: [2, 3, 1, 7], groups: [3], affine: ["both"] },
];

for (const c of GROUP_CASES) {
  for (const groups of c.groups) {
    for (const affine of c.affine) {
      Deno.test(`groupNorm ${JSON.stringify(c.x)}, ${groups} groups, ${affine}`, () =>
        testNorm(
          `groupNorm ${JSON.stringify(c.x)} groups ${groups}`,
          c.x,
          [c.x[1]],
          groupNormShape(c.x, groups),
          affine,
          (x, weight, bias) => groupNorm(x, groups, { weight, bias }),
        ));
    }
  }
}

Deno.test("layerNorm of hand-computed rows", async () => {
  const x = tensor([1, 2, 3, 2, 2, 2], [2, 3]);
  const y = layerNorm(x, 3, { weight: tensor([1, 2, 3]), bias: tensor([0, 0, 1]) });
  const s = Math.sqrt(2 / 3 + 1e-5);
  assertClose(await y.toArray(), [-1 / s, 0, 3 / s + 1, 0, 0, 1], { atol: 1e-5 });
  x.dispose();
  y.dispose();
});

Deno.test("layerNorm and groupNorm reject bad input, naming the op and the shapes", () => {
  tidy(() => {
    const x = tensor(new Float32Array(24), [2, 3, 4]);
    assertThrows(
      () => layerNorm(x, [4, 3]),
      /layerNorm: x \[2, 3, 4\] does not end in normalizedShape \[4, 3\]/,
    );
    assertThrows(
      () => layerNorm(x, [2, 2, 3, 4]),
      /does not end in normalizedShape \[2, 2, 3, 4\]/,
    );
    assertThrows(() => layerNorm(x, []), /layerNorm: normalizedShape must be one or more/);
    assertThrows(
      () => layerNorm(x, 4, { weight: tensor([1, 1, 1]) }),
      /layerNorm: weight has shape \[3\], expected \[4\] for x \[2, 3, 4\]/,
    );
    assertThrows(
      () => layerNorm(x, [3, 4], { bias: tensor(new Float32Array(12), [12]) }),
      /layerNorm: bias has shape \[12\], expected \[3, 4\]/,
    );
    assertThrows(
      () => layerNorm(tensor([1, 2], [2], { dtype: "i32" }), 2),
      /layerNorm: x must be f32, got i32/,
    );
    assertThrows(() => groupNorm(x, 2), /groupNorm: 3 channels .* cannot be split into 2 groups/);
    assertThrows(() => groupNorm(x, 0), /cannot be split into 0 groups/);
    assertThrows(() => groupNorm(tensor([1, 2, 3]), 1), /groupNorm: needs x of shape \[N, C, \*\]/);
    assertThrows(
      () => groupNorm(x, 3, { weight: tensor([1, 1]) }),
      /groupNorm: weight has shape \[2\], expected \[3\]/,
    );
  });
});

Deno.test("LayerNorm and GroupNorm: parameters as PyTorch names them, bad input named", async () => {
  const ln = new LayerNorm([3, 4]);
  assert.deepEqual(Object.keys(ln.stateDict()), ["weight", "bias"]);
  assert.deepEqual(ln.weight!.shape, [3, 4]);
  assertClose(await ln.weight!.toArray(), new Float32Array(12).fill(1));
  assertClose(await ln.bias!.toArray(), new Float32Array(12));
  const plain = new LayerNorm(5, { elementwiseAffine: false, eps: 1e-3 });
  assert.deepEqual(Object.keys(plain.stateDict()), []);
  assert.equal(plain.eps, 1e-3);
  const gn = new GroupNorm(2, 6);
  assert.deepEqual(Object.keys(gn.stateDict()), ["weight", "bias"]);
  assert.deepEqual(gn.weight!.shape, [6]);
  assert.deepEqual(Object.keys(new GroupNorm(1, 3, { affine: false }).stateDict()), []);
  assertThrows(
    () => new GroupNorm(4, 6),
    /GroupNorm: numChannels 6 must be divisible by numGroups 4/,
  );
  tidy(() => {
    const x = tensor(new Float32Array(24), [2, 4, 3]);
    assertThrows(
      () => ln.forward(x),
      /LayerNorm: input \[2, 4, 3\] does not fit \(needs \[\*, 3, 4\], normalizedShape \[3, 4\]\)/,
    );
    assertThrows(
      () => gn.forward(x),
      /GroupNorm: input \[2, 4, 3\] does not fit \(needs \[N, 6, \*\]\)/,
    );
  });
  // The module's forward is the functional op with its parameters.
  const data = randomArray(24, 3, -2, 2);
  const out = tidy(() => ln.forward(tensor(Float32Array.from(data), [2, 3, 4])));
  assertClose(await out.toArray(), normReference(data, layerNormShape(24, 12)), { atol: 2e-5 });
  out.dispose();
  ln.dispose();
  gn.dispose();
});

// PyTorch equivalence: same inputs and parameters give the same outputs and gradients, and the
// modules' state dicts load into PyTorch's modules.

interface TorchCase {
  op: "layer_norm" | "group_norm";
  x: { shape: number[]; data: Float64Array };
  arg: number[] | number;
  weight: Float64Array | null;
  bias: Float64Array | null;
  eps: number;
  grad: Float64Array;
}

interface TorchAnswer {
  out: number[];
  grads: (number[] | null)[];
}

function f32Values(length: number, seed: number, low = -1, high = 1): Float64Array {
  return Float64Array.from(Float32Array.from(randomArray(length, seed, low, high)));
}

Deno.test({
  name: "layerNorm and groupNorm match PyTorch: outputs and x, weight, bias gradients",
  ignore: skipWithoutTorch("norm vs PyTorch"),
  async fn() {
    const specs: { op: TorchCase["op"]; shape: number[]; arg: number[] | number; eps: number }[] = [
      { op: "layer_norm", shape: [4, 10], arg: [10], eps: 1e-5 },
      { op: "layer_norm", shape: [2, 3, 5, 8], arg: [5, 8], eps: 1e-3 },
      { op: "layer_norm", shape: [1, 3], arg: [3], eps: 1e-5 },
      { op: "group_norm", shape: [3, 6, 5], arg: 3, eps: 1e-5 },
      { op: "group_norm", shape: [2, 4, 2, 4], arg: 4, eps: 1e-4 },
      { op: "group_norm", shape: [1, 5], arg: 1, eps: 1e-5 },
    ];
    const cases: TorchCase[] = specs.map((s, k) => {
      const size = sizeOf(s.shape);
      const paramShape = s.op === "layer_norm" ? s.arg as number[] : [s.shape[1]];
      const params = sizeOf(paramShape);
      return {
        op: s.op,
        x: { shape: s.shape, data: f32Values(size, 10 * k, -3, 3) },
        arg: s.arg,
        weight: f32Values(params, 10 * k + 1, 0.5, 1.5),
        bias: f32Values(params, 10 * k + 2),
        eps: s.eps,
        grad: f32Values(size, 10 * k + 3),
      };
    });
    const { answers } = await askTorch<{ answers: TorchAnswer[] }>("norm.py", {
      cases,
      modules: [],
    });
    for (const [k, c] of cases.entries()) {
      const paramShape = c.op === "layer_norm" ? c.arg as number[] : [c.x.shape[1]];
      const x = tensor(Float32Array.from(c.x.data), c.x.shape, { requiresGrad: true });
      const weight = tensor(Float32Array.from(c.weight!), paramShape, { requiresGrad: true });
      const bias = tensor(Float32Array.from(c.bias!), paramShape, { requiresGrad: true });
      const out = tidy(() => {
        const y = c.op === "layer_norm"
          ? layerNorm(x, c.arg as number[], { weight, bias, eps: c.eps })
          : groupNorm(x, c.arg as number, { weight, bias, eps: c.eps });
        y.backward({ grad: tensor(Float32Array.from(c.grad), c.x.shape) });
        return y;
      });
      const name = `${c.op} ${JSON.stringify(c.x.shape)}`;
      const tolerance = { atol: 1e-4, rtol: 1e-4 };
      assertClose(await out.toArray(), answers[k].out, tolerance, `${name}: output`);
      assertClose(await x.grad!.toArray(), answers[k].grads[0]!, tolerance, `${name}: dx`);
      assertClose(await weight.grad!.toArray(), answers[k].grads[1]!, tolerance, `${name}: dw`);
      assertClose(await bias.grad!.toArray(), answers[k].grads[2]!, tolerance, `${name}: db`);
      for (const t of [out, x, weight, bias]) {
        t.grad?.dispose();
        t.dispose();
      }
    }
  },
});

Deno.test({
  name: "LayerNorm and GroupNorm state dicts load into PyTorch's modules (safetensors)",
  ignore: skipWithoutTorch("norm modules vs PyTorch"),
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const modules = [
        {
          kind: "LayerNorm",
          args: [[3, 4]],
          eps: 1e-5,
          module: new LayerNorm([3, 4]),
          x: [2, 3, 4],
        },
        {
          kind: "GroupNorm",
          args: [2, 6],
          eps: 1e-3,
          module: new GroupNorm(2, 6, { eps: 1e-3 }),
          x: [2, 6, 5],
        },
      ];
      const requests = [];
      const ours: Float32Array[] = [];
      for (const [k, m] of modules.entries()) {
        // Parameters away from their initial values, so that names and order matter.
        m.module.loadStateDict(Object.fromEntries(
          Object.entries(m.module.stateDict()).map(([name, p], j) => [name, {
            shape: p.shape,
            data: Float32Array.from(randomArray(p.size, 50 + 10 * k + j, 0.5, 1.5)),
          }]),
        ));
        const path = `${dir}/${m.kind}.safetensors`;
        await saveSafetensors(path, m.module.stateDict());
        const input = f32Values(sizeOf(m.x), 60 + k, -2, 2);
        const out = tidy(() => m.module.forward(tensor(Float32Array.from(input), m.x)));
        ours.push(await out.toArray());
        out.dispose();
        requests.push({
          kind: m.kind,
          args: m.args,
          eps: m.eps,
          path,
          x: { shape: m.x, data: input },
        });
      }
      const { modules: answers } = await askTorch<{ modules: { out: number[] }[] }>("norm.py", {
        cases: [],
        modules: requests,
      });
      for (const [k, m] of modules.entries()) {
        assertClose(answers[k].out, ours[k], { atol: 1e-4, rtol: 1e-4 }, `${m.kind} in PyTorch`);
        m.module.dispose();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("LayerNorm and GroupNorm training steps leave no GPU buffer behind", async () => {
  const ln = new LayerNorm(12);
  const gn = new GroupNorm(3, 6);
  const x = tensor(Float32Array.from(randomArray(2 * 6 * 12, 5)), [2, 6, 12], {
    requiresGrad: true,
  });
  const step = () => {
    for (const t of [x, ...ln.parameters(), ...gn.parameters()]) {
      t.grad?.dispose();
      t.grad = null;
    }
    const y = gn.forward(ln.forward(x));
    y.backward({ grad: tensor(new Float32Array(y.size).fill(0.5), y.shape) });
    y.dispose();
  };
  tidy(step);
  await x.grad!.toArray();
  const before = memoryStats().liveBuffers;
  for (let i = 0; i < 3; i++) tidy(step);
  await x.grad!.toArray();
  assert.equal(memoryStats().liveBuffers, before, "live buffers after 3 more steps");
  for (const t of [x, ...ln.parameters(), ...gn.parameters()]) t.grad?.dispose();
  x.dispose();
  ln.dispose();
  gn.dispose();
});

Deno.test("layerNorm and groupNorm keep their digits when |mean| >> std", async () => {
  // Rows around 1000 with a spread of 0.05: f32 sums of the raw values would lose the spread.
  for (
    const [name, shape, paramShape, refShape, op] of [
      [
        "layerNorm",
        [3, 37],
        [37],
        layerNormShape(3 * 37, 37),
        (x: Tensor, w?: Tensor, b?: Tensor) => layerNorm(x, 37, { weight: w, bias: b }),
      ],
      [
        "groupNorm",
        [2, 4, 24],
        [4],
        groupNormShape([2, 4, 24], 2),
        (x: Tensor, w?: Tensor, b?: Tensor) => groupNorm(x, 2, { weight: w, bias: b }),
      ],
    ] as const
  ) {
    await testOp({
      name: `${name} of values near 1000`,
      inputs: [
        { shape, data: f32Values(sizeOf(shape), 7, 1000, 1000.05) },
        { shape: paramShape, low: 0.5, high: 1.5 },
        paramShape,
      ],
      gpu: ([x, w, b]) => op(x, w, b),
      reference: ([x, w, b]) => normReference(x, refShape, { weight: w, bias: b }),
      backward: ([x, w, b], grad) => {
        const { dx, dweight, dbias } = normBackwardReference(grad, x, refShape, {
          weight: w,
          bias: b,
        });
        return [dx, dweight, dbias];
      },
      // Finite differences of step 1e-3 do not resolve a spread of 0.05: the reference backward
      // is checked by the other cases.
      finiteDifferenceLimit: 0,
      forwardTolerance: { atol: 2e-4, rtol: 1e-4 },
      gradTolerance: [{ atol: 0.02, rtol: 1e-3 }, { atol: 2e-3, rtol: 1e-3 }, {
        atol: 1e-4,
        rtol: 1e-4,
      }],
    });
  }
});

Deno.test("layerNorm and groupNorm give only the gradients asked for (x or bias frozen)", async () => {
  for (const kind of ["layer", "group"] as const) {
    const shape = kind === "layer" ? [3, 8] : [2, 4, 3];
    const params = kind === "layer" ? 8 : 4;
    const refShape = kind === "layer" ? layerNormShape(24, 8) : groupNormShape(shape, 2);
    const xData = f32Values(24, 21, -2, 2);
    const wData = f32Values(params, 22, 0.5, 1.5);
    const bData = f32Values(params, 23);
    const gData = f32Values(24, 24);
    const x = tensor(Float32Array.from(xData), shape);
    const weight = tensor(Float32Array.from(wData), [params], { requiresGrad: true });
    const bias = tensor(Float32Array.from(bData), [params]);
    tidy(() => {
      const y = kind === "layer"
        ? layerNorm(x, 8, { weight, bias })
        : groupNorm(x, 2, { weight, bias });
      y.backward({ grad: tensor(Float32Array.from(gData), shape) });
    });
    const expected = normBackwardReference(gData, xData, refShape, { weight: wData });
    assert.equal(x.grad, null, `${kind}: no x gradient`);
    assert.equal(bias.grad, null, `${kind}: no bias gradient`);
    assertClose(await weight.grad!.toArray(), expected.dweight, { atol: 1e-5, rtol: 1e-4 }, kind);
    for (const t of [x, weight.grad!, weight, bias]) t.dispose();
  }
});
