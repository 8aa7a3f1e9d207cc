import assert from "node:assert/strict";
import {
  abs,
  clamp,
  cos,
  elu,
  exp,
  gelu,
  leakyRelu,
  log,
  neg,
  rsqrt,
  sigmoid,
  silu,
  sin,
  softplus,
  sqrt,
  square,
  tanh,
} from "../../nn/ops/unary.ts";
import {
  clampReference,
  eluReference,
  leakyReluReference,
  softplusReference,
  unaryBackward,
  unaryForward,
  type UnaryReference,
  unaryReferences,
} from "./reference/unary.ts";
import { testOp } from "./op_helper.ts";
import { assertClose, gpuReady, randomArray } from "../testing.ts";
import { type Tensor, tensor } from "../../nn/tensor.ts";
import { tidy } from "../../nn/scope.ts";
import { cast } from "../../nn/ops/cast.ts";

await gpuReady();

interface UnaryCase {
  name: string;
  op: (x: Tensor) => Tensor;
  reference: UnaryReference;
  /** Range of the random inputs (default [-1, 1)). */
  low?: number;
  high?: number;
  /** Points where the op has a kink: inputs are kept 0.01 away from them. */
  kinks?: readonly number[];
}

const CASES: readonly UnaryCase[] = [
  { name: "neg", op: neg, reference: unaryReferences.neg },
  { name: "abs", op: abs, reference: unaryReferences.abs, kinks: [0] },
  { name: "exp", op: exp, reference: unaryReferences.exp, low: -3, high: 3 },
  { name: "log", op: log, reference: unaryReferences.log, low: 0.1, high: 3 },
  { name: "sqrt", op: sqrt, reference: unaryReferences.sqrt, low: 0.1, high: 3 },
  { name: "rsqrt", op: rsqrt, reference: unaryReferences.rsqrt, low: 0.1, high: 3 },
  { name: "square", op: square, reference: unaryReferences.square, low: -3, high: 3 },
  { name: "sin", op: sin, reference: unaryReferences.sin, low: -4, high: 4 },
  { name: "cos", op: cos, reference: unaryReferences.cos, low: -4, high: 4 },
  { name: "sigmoid", op: sigmoid, reference: unaryReferences.sigmoid, low: -8, high: 8 },
  { name: "tanh", op: tanh, reference: unaryReferences.tanh, low: -4, high: 4 },
  {
    name: "leakyRelu",
    op: (x) => leakyRelu(x, { negativeSlope: 0.2 }),
    reference: leakyReluReference(0.2),
    kinks: [0],
  },
  { name: "leakyRelu default", op: leakyRelu, reference: leakyReluReference(0.01), kinks: [0] },
  {
    name: "elu",
    op: (x) => elu(x, { alpha: 0.5 }),
    reference: eluReference(0.5),
    low: -3,
    high: 3,
    kinks: [0],
  },
  { name: "gelu", op: gelu, reference: unaryReferences.gelu, low: -5, high: 5 },
  {
    name: "gelu tanh",
    op: (x) => gelu(x, { approximate: "tanh" }),
    reference: unaryReferences.geluTanh,
    low: -5,
    high: 5,
  },
  { name: "silu", op: silu, reference: unaryReferences.silu, low: -5, high: 5 },
  { name: "softplus", op: softplus, reference: softplusReference(1, 20), low: -5, high: 5 },
  {
    name: "softplus beta 2 threshold 3",
    op: (x) => softplus(x, { beta: 2, threshold: 3 }),
    reference: softplusReference(2, 3),
    low: -3,
    high: 3,
    kinks: [1.5],
  },
  {
    name: "clamp",
    op: (x) => clamp(x, { min: -0.5, max: 0.25 }),
    reference: clampReference(-0.5, 0.25),
    kinks: [-0.5, 0.25],
  },
  {
    name: "clamp min",
    op: (x) => clamp(x, { min: 0.1 }),
    reference: clampReference(0.1),
    kinks: [0.1],
  },
  {
    name: "clamp max",
    op: (x) => clamp(x, { max: -0.1 }),
    reference: clampReference(undefined, -0.1),
    kinks: [-0.1],
  },
];

/** Seeded inputs in [low, high), moved 0.01 away from every kink. */
function inputs(size: number, { low = -1, high = 1, kinks = [] }: UnaryCase): Float64Array {
  return randomArray(size, 5, low, high).map((v) => {
    for (const kink of kinks) {
      if (Math.abs(v - kink) < 0.01) v = kink + (v < kink ? -0.01 : 0.01);
    }
    return v;
  });
}

for (const shape of [[1], [7], [3, 5, 7], [70_001]]) {
  const size = shape.reduce((a, b) => a * b, 1);
  Deno.test(`unary ops match the reference, forward and backward ([${shape}])`, async () => {
    for (const testCase of CASES) {
      await testOp({
        name: `${testCase.name} [${shape}]`,
        inputs: [{ shape, data: inputs(size, testCase) }],
        gpu: ([x]) => testCase.op(x),
        reference: ([x]) => unaryForward(testCase.reference, x),
        backward: ([x], grad) => [unaryBackward(testCase.reference, grad, x)],
      });
    }
  });
}

/** PyTorch's float32 outputs and gradients (of a sum) at these points. */
const POINTS = [NaN, 0, -0, -1, 1, -30, 30, -100, 100, 25, 1e-3];
const PYTORCH: Record<string, { out: number[]; grad: number[] }> = {
  neg: {
    out: [NaN, -0.0, 0.0, 1.0, -1.0, 30.0, -30.0, 100.0, -100.0, -25.0, -0.0010000000474974513],
    grad: [-1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0],
  },
  abs: {
    out: [NaN, 0.0, 0.0, 1.0, 1.0, 30.0, 30.0, 100.0, 100.0, 25.0, 0.0010000000474974513],
    grad: [0.0, 0.0, 0.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, 1.0, 1.0],
  },
  exp: {
    out: [
      NaN,
      1.0,
      1.0,
      0.3678794503211975,
      2.7182817459106445,
      9.357622912219837e-14,
      10686474223616.0,
      3.783505853677006e-44,
      Infinity,
      72004902912.0,
      1.0010005235671997,
    ],
    grad: [
      NaN,
      1.0,
      1.0,
      0.3678794503211975,
      2.7182817459106445,
      9.357622912219837e-14,
      10686474223616.0,
      3.783505853677006e-44,
      Infinity,
      72004902912.0,
      1.0010005235671997,
    ],
  },
  log: {
    out: [
      NaN,
      -Infinity,
      -Infinity,
      NaN,
      0.0,
      NaN,
      3.4011974334716797,
      NaN,
      4.605170249938965,
      3.2188758850097656,
      -6.907755374908447,
    ],
    grad: [
      NaN,
      Infinity,
      -Infinity,
      -1.0,
      1.0,
      -0.03333333507180214,
      0.03333333507180214,
      -0.009999999776482582,
      0.009999999776482582,
      0.03999999910593033,
      999.9999389648438,
    ],
  },
  sqrt: {
    out: [NaN, 0.0, -0.0, NaN, 1.0, NaN, 5.4772257804870605, NaN, 10.0, 5.0, 0.03162277862429619],
    grad: [
      NaN,
      Infinity,
      -Infinity,
      NaN,
      0.5,
      NaN,
      0.09128709137439728,
      NaN,
      0.05000000074505806,
      0.10000000149011612,
      15.811387062072754,
    ],
  },
  rsqrt: {
    out: [
      NaN,
      Infinity,
      -Infinity,
      NaN,
      1.0,
      NaN,
      0.18257418274879456,
      NaN,
      0.10000000149011612,
      0.20000000298023224,
      31.622774124145508,
    ],
    grad: [
      NaN,
      -Infinity,
      Infinity,
      NaN,
      -0.5,
      NaN,
      -0.003042902797460556,
      NaN,
      -0.0005000000237487257,
      -0.004000000189989805,
      -15811.3837890625,
    ],
  },
  square: {
    out: [NaN, 0.0, 0.0, 1.0, 1.0, 900.0, 900.0, 10000.0, 10000.0, 625.0, 1.0000001111620804e-06],
    grad: [NaN, 0.0, -0.0, -2.0, 2.0, -60.0, 60.0, -200.0, 200.0, 50.0, 0.0020000000949949026],
  },
  sin: {
    out: [
      NaN,
      0.0,
      -0.0,
      -0.8414709568023682,
      0.8414709568023682,
      0.9880316257476807,
      -0.9880316257476807,
      0.5063656568527222,
      -0.5063656568527222,
      -0.13235175609588623,
      0.0009999999310821295,
    ],
    grad: [
      NaN,
      1.0,
      1.0,
      0.5403023362159729,
      0.5403023362159729,
      0.15425145626068115,
      0.15425145626068115,
      0.8623188734054565,
      0.8623188734054565,
      0.9912028312683105,
      0.9999995231628418,
    ],
  },
  cos: {
    out: [
      NaN,
      1.0,
      1.0,
      0.5403023362159729,
      0.5403023362159729,
      0.15425145626068115,
      0.15425145626068115,
      0.8623188734054565,
      0.8623188734054565,
      0.9912028312683105,
      0.9999995231628418,
    ],
    grad: [
      NaN,
      -0.0,
      0.0,
      0.8414709568023682,
      -0.8414709568023682,
      -0.9880316257476807,
      0.9880316257476807,
      -0.5063656568527222,
      0.5063656568527222,
      0.13235175609588623,
      -0.0009999999310821295,
    ],
  },
  sigmoid: {
    out: [
      NaN,
      0.5,
      0.5,
      0.2689414322376251,
      0.7310585975646973,
      9.357623589846195e-14,
      1.0,
      0.0,
      1.0,
      1.0,
      0.500249981880188,
    ],
    grad: [
      NaN,
      0.25,
      0.25,
      0.1966119408607483,
      0.1966119259595871,
      9.357623589846195e-14,
      0.0,
      0.0,
      0.0,
      0.0,
      0.24999994039535522,
    ],
  },
  tanh: {
    out: [
      NaN,
      0.0,
      -0.0,
      -0.7615941762924194,
      0.7615941762924194,
      -1.0,
      1.0,
      -1.0,
      1.0,
      1.0,
      0.0009999996982514858,
    ],
    grad: [
      NaN,
      1.0,
      1.0,
      0.41997429728507996,
      0.41997429728507996,
      0.0,
      0.0,
      0.0,
      0.0,
      0.0,
      0.9999989867210388,
    ],
  },
  leakyRelu: {
    out: [
      NaN,
      0.0,
      -0.0,
      -0.20000000298023224,
      1.0,
      -6.0,
      30.0,
      -20.0,
      100.0,
      25.0,
      0.0010000000474974513,
    ],
    grad: [
      0.20000000298023224,
      0.20000000298023224,
      0.20000000298023224,
      0.20000000298023224,
      1.0,
      0.20000000298023224,
      1.0,
      0.20000000298023224,
      1.0,
      1.0,
      1.0,
    ],
  },
  elu: {
    out: [
      NaN,
      0.0,
      0.0,
      -0.31606027483940125,
      1.0,
      -0.5,
      30.0,
      -0.5,
      100.0,
      25.0,
      0.0010000000474974513,
    ],
    grad: [
      1.0,
      0.5,
      0.5,
      0.18393972516059875,
      1.0,
      4.6788114561099187e-14,
      1.0,
      1.961817850054744e-44,
      1.0,
      1.0,
      1.0,
    ],
  },
  gelu: {
    out: [
      NaN,
      0.0,
      0.0,
      -0.1586552858352661,
      0.8413447141647339,
      0.0,
      30.0,
      0.0,
      100.0,
      25.0,
      0.0005003989208489656,
    ],
    grad: [
      NaN,
      0.5,
      0.5,
      -0.08331543207168579,
      1.083315372467041,
      0.0,
      1.0,
      0.0,
      1.0,
      1.0,
      0.5007978081703186,
    ],
  },
  geluTanh: {
    out: [
      NaN,
      0.0,
      -0.0,
      -0.15880799293518066,
      0.8411920070648193,
      -0.0,
      30.0,
      -0.0,
      100.0,
      25.0,
      0.0005003989790566266,
    ],
    grad: [
      NaN,
      0.5,
      0.5,
      -0.08296409249305725,
      1.0829640626907349,
      0.0,
      1.0,
      0.0,
      1.0,
      1.0,
      0.5007978677749634,
    ],
  },
  silu: {
    out: [
      NaN,
      0.0,
      -0.0,
      -0.2689414322376251,
      0.7310585975646973,
      -2.807286954981114e-12,
      30.0,
      -0.0,
      100.0,
      25.0,
      0.000500250025652349,
    ],
    grad: [
      NaN,
      0.5,
      0.5,
      0.07232948392629623,
      0.9276705384254456,
      -2.7137107665164972e-12,
      1.0,
      -0.0,
      1.0,
      1.0,
      0.500499963760376,
    ],
  },
  softplus: {
    out: [
      NaN,
      0.3465735912322998,
      0.3465735912322998,
      0.06346400082111359,
      1.0634640455245972,
      4.37825544636038e-27,
      30.0,
      0.0,
      100.0,
      25.0,
      0.34707385301589966,
    ],
    grad: [
      NaN,
      0.5,
      0.5,
      0.11920291930437088,
      0.8807970881462097,
      8.75651089272076e-27,
      1.0,
      0.0,
      1.0,
      1.0,
      0.5005000233650208,
    ],
  },
  clamp: {
    out: [NaN, 0.0, -0.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, 1.0, 0.0010000000474974513],
    grad: [0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
  },
};

const SPECIAL_OPS: Record<string, (x: Tensor) => Tensor> = {
  neg,
  abs,
  exp,
  log,
  sqrt,
  rsqrt,
  square,
  sin,
  cos,
  sigmoid,
  tanh,
  leakyRelu: (x) => leakyRelu(x, { negativeSlope: 0.2 }),
  elu: (x) => elu(x, { alpha: 0.5 }),
  gelu,
  geluTanh: (x) => gelu(x, { approximate: "tanh" }),
  silu,
  softplus: (x) => softplus(x, { beta: 2, threshold: 10 }),
  clamp: (x) => clamp(x, { min: -1, max: 1 }),
};

/** Close as assertClose, where equal values (infinities) and NaNs also match. */
function assertMatches(actual: ArrayLike<number>, expected: readonly number[], what: string) {
  const same = (i: number) =>
    actual[i] === expected[i] || (Number.isNaN(actual[i]) && Number.isNaN(expected[i]));
  const a = Array.from(actual, (v, i) => (same(i) ? 0 : v));
  const e = expected.map((v, i) => (same(i) ? 0 : v));
  assertClose(a, e, { atol: 1e-6, rtol: 1e-4 }, `${what} at ${POINTS.join(", ")}`);
}

Deno.test("unary ops give PyTorch's values at 0, ±0, NaN, saturation and thresholds", async () => {
  for (const [name, op] of Object.entries(SPECIAL_OPS)) {
    const x = tensor(Float32Array.from(POINTS), [POINTS.length], { requiresGrad: true });
    const out = tidy(() => {
      const y = op(x);
      y.backward({ grad: tensor(new Float32Array(POINTS.length).fill(1), [POINTS.length]) });
      return y;
    });
    try {
      assertMatches(await out.toArray(), PYTORCH[name].out, `${name} forward`);
      assertMatches(await x.grad!.toArray(), PYTORCH[name].grad, `${name} grad`);
    } finally {
      out.dispose();
      x.grad?.dispose();
      x.dispose();
    }
  }
});

Deno.test("gelu's erf is float32-accurate: within 1e-6 of PyTorch's gelu on [-6, 6]", async () => {
  const points = Float64Array.from({ length: 12_001 }, (_, i) => -6 + i / 1000);
  const x = tensor(Float32Array.from(points), [points.length]);
  const out = gelu(x);
  try {
    const expected = unaryForward(unaryReferences.gelu, Float32Array.from(points));
    assertClose(await out.toArray(), expected, { atol: 1e-6, rtol: 1e-6 }, "gelu");
  } finally {
    out.dispose();
    x.dispose();
  }
});

Deno.test("unary ops of i32 and u8: neg, abs, square, clamp keep i32, the rest compute in f32", async () => {
  const INTEGER_OPS = ["neg", "abs", "square", "clamp"];
  for (const dtype of ["i32", "u8"] as const) {
    const values = dtype === "i32" ? [-3, -1, 0, 2, 5, 46340, -7] : [0, 1, 2, 200, 255, 3, 9];
    const x = tensor(values, [values.length], { dtype });
    try {
      for (const [name, op] of Object.entries(SPECIAL_OPS)) {
        const expectedDtype = dtype === "i32" && INTEGER_OPS.includes(name) ? "i32" : "f32";
        const [actual, expected] = tidy(() => [op(x), op(cast(x, "f32"))]);
        try {
          assert.equal(actual.dtype, expectedDtype, `${name} of ${dtype}: dtype`);
          assert.equal(actual.requiresGrad, false, `${name} of ${dtype}: no gradient`);
          assertMatches(await actual.toArray(), Array.from(await expected.toArray()), name);
        } finally {
          actual.dispose();
          expected.dispose();
        }
      }
    } finally {
      x.dispose();
    }
  }
});

Deno.test("i32 neg, abs, square, clamp wrap and clip as PyTorch's integer ops", async () => {
  const x = tensor([-(2 ** 31), 2 ** 31 - 1, -5, 65536, 7], [5], { dtype: "i32" });
  try {
    const cases: [string, Tensor, number[]][] = tidy(() => [
      ["neg", neg(x), [-(2 ** 31), -(2 ** 31) + 1, 5, -65536, -7]],
      ["abs", abs(x), [-(2 ** 31), 2 ** 31 - 1, 5, 65536, 7]],
      ["square", square(x), [0, 1, 25, 0, 49]],
      ["clamp", clamp(x, { min: -6, max: 1e12 }), [-6, 2 ** 31 - 1, -5, 65536, 7]],
      ["clamp max only", clamp(x, { max: 6 }), [-(2 ** 31), 6, -5, 6, 6]],
      ["clamp fractional", clamp(x, { min: 0.5 }), [0.5, 2 ** 31, 0.5, 65536, 7]],
    ]);
    for (const [name, out, expected] of cases) {
      assert.deepEqual(Array.from(await out.toTypedArray()), expected, name);
      assert.equal(out.dtype, name === "clamp fractional" ? "f32" : "i32", name);
      out.dispose();
    }
  } finally {
    x.dispose();
  }
});

Deno.test("clamp bounds are per-call params: new bounds compile no pipeline", async () => {
  const { compiledKernelCount } = await import("../../nn/gpu/program.ts");
  const x = tensor(Float32Array.of(-2, -1, 0, 1, 2, 3, 4), [7]);
  try {
    clamp(x, { min: 0, max: 1 }).dispose();
    const before = compiledKernelCount();
    for (const [min, max] of [[-1, 1], [0.5, 2], [3, 1]]) {
      const out = clamp(x, { min, max });
      assert.deepEqual(
        Array.from(await out.toArray()),
        Array.from([-2, -1, 0, 1, 2, 3, 4], (v) => Math.min(Math.max(v, min), max)),
      );
      out.dispose();
    }
    assert.equal(compiledKernelCount(), before);
    assert.throws(() => clamp(x), /clamp: needs min or max/);
  } finally {
    x.dispose();
  }
});
