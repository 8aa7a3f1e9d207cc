// Tensor's op methods (nn/tensor.ts, installed by nn/tensor_methods.ts): each equals its op
// function, values and gradients; a PyTorch-style chain against a float64 reference; the table
// and the class declare the same methods.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import "../../nn/tensor_methods.ts";
import { TENSOR_METHODS } from "../../nn/tensor_methods.ts";
import { Tensor, tensor, type TensorMethodName } from "../../nn/tensor.ts";
import { eq, ge, gt, le, lt, ne } from "../../nn/ops/compare.ts";
import { add, div, maximum, minimum, mul, pow, relu, sub } from "../../nn/ops/elementwise.ts";
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
import { matmul } from "../../nn/ops/matmul.ts";
import {
  argmax,
  argmin,
  logsumexp,
  max,
  mean,
  min,
  prod,
  std,
  sum,
  variance,
} from "../../nn/ops/reduce.ts";
import { logSoftmax, softmax } from "../../nn/ops/softmax.ts";
import { squeeze, unsqueeze } from "../../nn/ops/shape.ts";
import { expand, narrow, permute, transpose } from "../../nn/ops/layout.ts";
import { gather, indexSelect } from "../../nn/ops/indexing.ts";
import { cast } from "../../nn/ops/cast.ts";
import { tidy } from "../../nn/scope.ts";
import { assertClose, gpuReady, randomArray } from "../testing.ts";

await gpuReady();

/** The inputs every case may use: x [3, 5] and y [5] positive (log, sqrt), w [5, 4]. */
interface Inputs {
  x: Tensor;
  y: Tensor;
  w: Tensor;
}

interface MethodCase {
  /** The method call. */
  method: (inputs: Inputs) => Tensor;
  /** The same through the op function. */
  fn: (inputs: Inputs) => Tensor;
  /** Whether its output is differentiable (f32, with a gradient). */
  grad: boolean;
}

const binary = (
  method: (x: Tensor, y: Tensor | number) => Tensor,
  fn: (x: Tensor, y: Tensor | number) => Tensor,
  grad = true,
): MethodCase => ({ method: ({ x, y }) => method(x, y), fn: ({ x, y }) => fn(x, y), grad });
const unary = (method: (x: Tensor) => Tensor, fn: (x: Tensor) => Tensor): MethodCase => ({
  method: ({ x }) => method(x),
  fn: ({ x }) => fn(x),
  grad: true,
});

/** One case per method: the record's type makes the compiler ask for every method. */
const CASES: Record<TensorMethodName, MethodCase> = {
  add: binary((x, y) => x.add(y), add),
  sub: binary((x, y) => x.sub(y), sub),
  mul: binary((x, y) => x.mul(y), mul),
  div: binary((x, y) => x.div(y), div),
  pow: binary((x, y) => x.pow(y), pow),
  maximum: binary((x, y) => x.maximum(y), maximum),
  minimum: binary((x, y) => x.minimum(y), minimum),
  eq: binary((x, y) => x.eq(y), eq, false),
  ne: binary((x, y) => x.ne(y), ne, false),
  lt: binary((x, y) => x.lt(y), lt, false),
  le: binary((x, y) => x.le(y), le, false),
  gt: binary((x, y) => x.gt(y), gt, false),
  ge: binary((x, y) => x.ge(y), ge, false),
  neg: unary((x) => x.neg(), neg),
  abs: unary((x) => x.abs(), abs),
  exp: unary((x) => x.exp(), exp),
  log: unary((x) => x.log(), log),
  sqrt: unary((x) => x.sqrt(), sqrt),
  rsqrt: unary((x) => x.rsqrt(), rsqrt),
  square: unary((x) => x.square(), square),
  sin: unary((x) => x.sin(), sin),
  cos: unary((x) => x.cos(), cos),
  sigmoid: unary((x) => x.sigmoid(), sigmoid),
  tanh: unary((x) => x.tanh(), tanh),
  relu: unary((x) => x.sub(1).relu(), (x) => relu(sub(x, 1))),
  leakyRelu: unary(
    (x) => x.sub(1).leakyRelu({ negativeSlope: 0.2 }),
    (x) => leakyRelu(sub(x, 1), { negativeSlope: 0.2 }),
  ),
  elu: unary((x) => x.sub(1).elu({ alpha: 0.5 }), (x) => elu(sub(x, 1), { alpha: 0.5 })),
  gelu: unary(
    (x) => x.gelu({ approximate: "tanh" }),
    (x) => gelu(x, { approximate: "tanh" }),
  ),
  silu: unary((x) => x.silu(), silu),
  softplus: unary((x) => x.softplus({ beta: 2 }), (x) => softplus(x, { beta: 2 })),
  clamp: unary(
    (x) => x.clamp({ min: 0.5, max: 1.5 }),
    (x) => clamp(x, { min: 0.5, max: 1.5 }),
  ),
  matmul: {
    method: ({ x, w }) => x.matmul(w),
    fn: ({ x, w }) => matmul(x, w),
    grad: true,
  },
  sum: unary((x) => x.sum(), sum),
  mean: unary((x) => x.mean({ dim: 0, keepdim: true }), (x) => mean(x, { dim: 0, keepdim: true })),
  max: unary((x) => x.max({ dim: 1 }), (x) => max(x, { dim: 1 })),
  min: unary((x) => x.min({ dim: -1 }), (x) => min(x, { dim: -1 })),
  prod: unary((x) => x.prod({ dim: 0 }), (x) => prod(x, { dim: 0 })),
  logsumexp: unary((x) => x.logsumexp({ dim: 1 }), (x) => logsumexp(x, { dim: 1 })),
  var: unary(
    (x) => x.var({ dim: 1, correction: 0 }),
    (x) => variance(x, { dim: 1, correction: 0 }),
  ),
  std: unary((x) => x.std({ dim: [0, 1] }), (x) => std(x, { dim: [0, 1] })),
  argmax: { method: ({ x }) => x.argmax(), fn: ({ x }) => argmax(x), grad: false },
  argmin: {
    method: ({ x }) => x.argmin({ dim: 1 }),
    fn: ({ x }) => argmin(x, { dim: 1 }),
    grad: false,
  },
  softmax: unary((x) => x.softmax({ dim: 0 }), (x) => softmax(x, { dim: 0 })),
  logSoftmax: unary((x) => x.logSoftmax(), logSoftmax),
  squeeze: unary((x) => x.unsqueeze(1).squeeze(), (x) => squeeze(unsqueeze(x, 1))),
  unsqueeze: unary((x) => x.unsqueeze(-1), (x) => unsqueeze(x, -1)),
  transpose: unary((x) => x.transpose(0, 1), (x) => transpose(x, 0, 1)),
  permute: unary((x) => x.permute([1, 0]), (x) => permute(x, [1, 0])),
  expand: unary((x) => x.unsqueeze(0).expand([2, 3, 5]), (x) => expand(unsqueeze(x, 0), [2, 3, 5])),
  narrow: unary((x) => x.narrow(1, 1, 3), (x) => narrow(x, 1, 1, 3)),
  indexSelect: unary(
    (x) => x.indexSelect(1, tensor([4, 0, 4], [3], { dtype: "i32" })),
    (x) => indexSelect(x, 1, tensor([4, 0, 4], [3], { dtype: "i32" })),
  ),
  gather: unary(
    (x) => x.gather(0, tensor([2, 0, 1, 1, 0], [1, 5], { dtype: "i32" })),
    (x) => gather(x, 0, tensor([2, 0, 1, 1, 0], [1, 5], { dtype: "i32" })),
  ),
  cast: {
    method: ({ x }) => x.mul(3).cast("i32"),
    fn: ({ x }) => cast(mul(x, 3), "i32"),
    grad: false,
  },
};

const X = Float32Array.from(randomArray(15, 1, 0.2, 2));
// y repeats three of x's values, so that comparisons and ties see equal elements.
const Y = Float32Array.from([X[0], 0.7, X[7], 1.3, X[14]]);
const W = Float32Array.from(randomArray(20, 3, -1, 1));

interface Outcome {
  shape: readonly number[];
  dtype: string;
  values: number[];
  grads: (number[] | null)[];
}

/** Runs `call` on fresh inputs; with `grad`, backpropagates sum(output) into all three. */
async function outcome(call: (inputs: Inputs) => Tensor, grad: boolean): Promise<Outcome> {
  const options = { requiresGrad: grad };
  const inputs = {
    x: tensor(X, [3, 5], options),
    y: tensor(Y, [5], options),
    w: tensor(W, [5, 4], options),
  };
  try {
    const out = tidy(() => {
      const result = call(inputs);
      if (grad) sum(result).backward();
      return result;
    });
    const values = Array.from(await out.toTypedArray());
    const result = { shape: out.shape, dtype: out.dtype, values, grads: [] as (number[] | null)[] };
    out.dispose();
    for (const input of Object.values(inputs)) {
      result.grads.push(input.grad ? Array.from(await input.grad.toArray()) : null);
    }
    return result;
  } finally {
    for (const input of Object.values(inputs)) {
      input.grad?.dispose();
      input.dispose();
    }
  }
}

Deno.test("every Tensor method equals its op function, values and gradients", async () => {
  for (const [name, testCase] of Object.entries(CASES)) {
    const viaMethod = await outcome(testCase.method, testCase.grad);
    const viaFunction = await outcome(testCase.fn, testCase.grad);
    assert.deepEqual(viaMethod, viaFunction, `x.${name}(...) vs ${name}(x, ...)`);
    if (testCase.grad) {
      assert.ok(viaMethod.grads.some((g) => g !== null), `${name}: a gradient flows`);
    }
  }
});

Deno.test("binary methods take numbers, as their functions do", async () => {
  const x = tensor([1, 2, 3], [3]);
  try {
    for (
      const [method, fn] of [
        [(t: Tensor) => t.add(2), (t: Tensor) => add(t, 2)],
        [(t: Tensor) => t.pow(2), (t: Tensor) => pow(t, 2)],
        [(t: Tensor) => t.gt(1.5), (t: Tensor) => gt(t, 1.5)],
      ] as const
    ) {
      const [a, b] = [method(x), fn(x)];
      assert.deepEqual(Array.from(await a.toTypedArray()), Array.from(await b.toTypedArray()));
      a.dispose();
      b.dispose();
    }
  } finally {
    x.dispose();
  }
});

Deno.test("x.matmul(w).add(b).relu().sum() and its backward match a float64 reference", async () => {
  const [n, k, m] = [3, 5, 4];
  const xs = randomArray(n * k, 11), ws = randomArray(k * m, 12), bs = randomArray(m, 13);
  const x = tensor(Float32Array.from(xs), [n, k], { requiresGrad: true });
  const w = tensor(Float32Array.from(ws), [k, m], { requiresGrad: true });
  const b = tensor(Float32Array.from(bs), [m], { requiresGrad: true });
  try {
    const loss = tidy(() => {
      const loss = x.matmul(w).add(b).relu().sum();
      loss.backward();
      return loss;
    });
    // Reference: h = x w + b, loss = Σ relu(h); dL/dh = [h > 0].
    const mask = new Float64Array(n * m);
    let expected = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < m; j++) {
        let h = bs[j];
        for (let p = 0; p < k; p++) h += xs[i * k + p] * ws[p * m + j];
        mask[i * m + j] = h > 0 ? 1 : 0;
        expected += Math.max(h, 0);
      }
    }
    const dx = new Float64Array(n * k), dw = new Float64Array(k * m), db = new Float64Array(m);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < m; j++) {
        const g = mask[i * m + j];
        db[j] += g;
        for (let p = 0; p < k; p++) {
          dx[i * k + p] += g * ws[p * m + j];
          dw[p * m + j] += g * xs[i * k + p];
        }
      }
    }
    assert.deepEqual(loss.shape, []);
    assertClose([await loss.item()], [expected], {}, "loss");
    assertClose(await x.grad!.toArray(), dx, {}, "x.grad");
    assertClose(await w.grad!.toArray(), dw, {}, "w.grad");
    assertClose(await b.grad!.toArray(), db, {}, "b.grad");
    loss.dispose();
  } finally {
    for (const t of [x, w, b]) {
      t.grad?.dispose();
      t.dispose();
    }
  }
});

Deno.test("the installed table and the Tensor class declare the same methods", () => {
  const prototype = Tensor.prototype as unknown as Record<string, unknown>;
  for (const name of Object.keys(TENSOR_METHODS)) {
    assert.equal(typeof prototype[name], "function", `Tensor declares ${name}`);
    assert.equal(
      typeof (TENSOR_METHODS as unknown as Record<string, unknown>)[name],
      "function",
      `the table's ${name} is an op`,
    );
  }
  // The op methods are those that call the table: each has its entry.
  const delegating = Object.getOwnPropertyNames(Tensor.prototype).filter((name) => {
    const descriptor = Object.getOwnPropertyDescriptor(Tensor.prototype, name)!;
    return name !== "constructor" && typeof descriptor.value === "function" &&
      String(descriptor.value).includes("tensorOps()");
  });
  assert.deepEqual(delegating.sort(), Object.keys(TENSOR_METHODS).sort());
  assert.deepEqual(Object.keys(CASES).sort(), Object.keys(TENSOR_METHODS).sort());
});

Deno.test("a method called before the table is installed says to import the entry point", async () => {
  const source = new URL("../../nn/tensor.ts", import.meta.url).href;
  const code = `
    import { Tensor } from "${source}";
    try { Tensor.prototype.add.call(null, 1); } catch (error) { console.log(error.message); }`;
  const { stdout, code: exitCode } = await new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    cwd: fileURLToPath(new URL("../../", import.meta.url)),
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assert.equal(exitCode, 0);
  assert.match(
    new TextDecoder().decode(stdout),
    /Tensor methods \(x\.add\(y\), x\.matmul\(w\), \.\.\.\) are not loaded: import wgtorch from its entry point \(mod\.ts\)/,
  );
});
