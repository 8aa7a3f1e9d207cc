/**
 * Tensor-op rows of `deno task bench`: wgtorch and TF.js (WebGPU backend) run the same op on the
 * same shapes in the same process; each row gives the memory traffic (GB/s: every input read and
 * the output written once) or, for matrix products, GFLOP/s.
 *
 * @module
 */

// deno-lint-ignore no-import-prefix
import type * as tfjs from "npm:@tensorflow/tfjs@4.22.0";
import type { Tf } from "./tfjs_models.ts";
import { LAYER_CASES, layerCaseFlops } from "./layer_cases.ts";
import { NORM_CASES } from "./norm_cases.ts";
import { AVG_POOL_CASES, poolBytes } from "./pool_cases.ts";
import {
  add,
  avgPool2d,
  conv2d,
  layerNorm,
  matmul,
  randUniform,
  softmax,
  sum,
  sync,
  type Tensor,
  tidy,
  transpose,
} from "../mod.ts";

/** One op measured by both libraries. */
export interface OpCase {
  /** The row's name. */
  name: string;
  /** The inputs' shapes (random uniform values). */
  shapes: readonly (readonly number[])[];
  /** TF.js's inputs' shapes, where its layout differs (NHWC images, HWIO filters). */
  tfjsShapes?: readonly (readonly number[])[];
  /** The unit of the figure: per-call throughput, or whole forward+backward steps per second. */
  unit: "GB/s" | "GFLOP/s" | "steps/s";
  /** Bytes moved or floating-point operations per call (1 for steps/s). */
  work: number;
  /**
   * Time forward and backward: the gradient of sum(output) with respect to every input (wgtorch's
   * `backward()`, TF.js's `tf.grads`).
   */
  backward?: boolean;
  /** wgtorch's call. */
  wgtorch: (inputs: Tensor[]) => Tensor;
  /** TF.js's call. */
  tfjs: (tf: Tf, inputs: tfjs.Tensor[]) => tfjs.Tensor;
}

const bytes = (...sizes: number[]) => 4 * sizes.reduce((total, size) => total + size, 0);
const M = 1024;

/** The rows: the shapes the tensor-ops issue names. */
export const OP_CASES: readonly OpCase[] = [
  {
    name: "add [128,256] + [256] (broadcast)",
    shapes: [[128, 256], [256]],
    unit: "GB/s",
    work: bytes(128 * 256, 256, 128 * 256),
    wgtorch: ([a, b]) => add(a, b),
    tfjs: (tf, [a, b]) => tf.add(a, b),
  },
  {
    name: "softmax [128,1000] dim -1",
    shapes: [[128, 1000]],
    unit: "GB/s",
    work: bytes(128 * 1000, 128 * 1000),
    wgtorch: ([x]) => softmax(x, { dim: -1 }),
    tfjs: (tf, [x]) => tf.softmax(x, -1),
  },
  {
    name: "sum [1024,1024] dim 0",
    shapes: [[M, M]],
    unit: "GB/s",
    work: bytes(M * M, M),
    wgtorch: ([x]) => sum(x, { dim: 0 }),
    tfjs: (tf, [x]) => tf.sum(x, 0),
  },
  {
    name: "sum [1024,1024] dim 1",
    shapes: [[M, M]],
    unit: "GB/s",
    work: bytes(M * M, M),
    wgtorch: ([x]) => sum(x, { dim: 1 }),
    tfjs: (tf, [x]) => tf.sum(x, 1),
  },
  {
    name: "transpose [1024,1024]",
    shapes: [[M, M]],
    unit: "GB/s",
    work: bytes(M * M, M * M),
    wgtorch: ([x]) => transpose(x, 0, 1),
    tfjs: (tf, [x]) => tf.transpose(x, [1, 0]),
  },
  ...CONV_CASES(),
  ...LAYER_NORM_CASES(),
  ...POOL_CASES(),
  {
    name: "bmm [32,64,64] @ [32,64,64]",
    shapes: [[32, 64, 64], [32, 64, 64]],
    unit: "GFLOP/s",
    work: 2 * 32 * 64 * 64 * 64,
    wgtorch: ([a, b]) => matmul(a, b),
    tfjs: (tf, [a, b]) => tf.matMul(a as tfjs.Tensor3D, b as tfjs.Tensor3D),
  },
];

/** Convolution forwards: TF.js gets the same tensors in NHWC / HWIO. */
function CONV_CASES(): OpCase[] {
  return LAYER_CASES.map((c): OpCase => {
    const [n, channels, h, w] = c.input;
    const [kh, kw] = c.kernel;
    const groups = c.options.groups ?? 1;
    const depthwise = groups > 1;
    const dilation = c.options.dilation ?? 1;
    return {
      name: c.name,
      shapes: [c.input, [c.outChannels, channels / groups, kh, kw]],
      tfjsShapes: [
        [n, h, w, channels],
        depthwise ? [kh, kw, channels, 1] : [kh, kw, channels, c.outChannels],
      ],
      unit: "GFLOP/s",
      work: layerCaseFlops(c),
      wgtorch: ([x, weight]) => conv2d(x, weight, c.options),
      tfjs: (tf, [x, weight]) => {
        const padding = c.options.padding === "same" ? "same" : "valid";
        return depthwise
          ? tf.depthwiseConv2d(
            x as tfjs.Tensor4D,
            weight as tfjs.Tensor4D,
            1,
            padding,
            "NHWC",
            dilation as number,
          )
          : tf.conv2d(
            x as tfjs.Tensor4D,
            weight as tfjs.Tensor4D,
            1,
            padding,
            "NHWC",
            dilation as number,
          );
      },
    };
  });
}

/** Layer norm over the last dimension, forward and backward (TF.js: moments and arithmetic). */
function LAYER_NORM_CASES(): OpCase[] {
  return NORM_CASES.map((c): OpCase => {
    const d = c.shape.at(-1)!;
    return {
      name: `${c.name}, forward + backward`,
      shapes: [c.shape, [d], [d]],
      unit: "steps/s",
      work: 1e9,
      backward: true,
      wgtorch: ([x, weight, bias]) => layerNorm(x, d, { weight, bias }),
      tfjs: (tf, [x, weight, bias]) => {
        const { mean, variance } = tf.moments(x, -1, true);
        return x.sub(mean).mul(tf.rsqrt(variance.add(1e-5))).mul(weight).add(bias);
      },
    };
  });
}

/** Average pools (TF.js: NHWC, the same explicit padding). */
function POOL_CASES(): OpCase[] {
  return AVG_POOL_CASES.map((c): OpCase => {
    const [n, channels, h, w] = c.shape;
    const options = { kernelSize: c.kernelSize, stride: c.stride, padding: c.padding };
    return {
      name: c.name,
      shapes: [c.shape],
      tfjsShapes: [[n, h, w, channels]],
      unit: "GB/s",
      work: poolBytes(c),
      wgtorch: ([x]) => avgPool2d(x, options),
      tfjs: (tf, [x]) => tf.avgPool(x as tfjs.Tensor4D, c.kernelSize, c.stride, c.padding),
    };
  });
}

/** Calls timed together to estimate the cost of one. */
const PROBE_CALLS = 10;

/** Calls per window: enough for about `targetMs`, given the cost of one call. */
function callsFor(msPerCall: number, targetMs: number): number {
  return Math.max(5, Math.min(2000, Math.round(targetMs / Math.max(msPerCall, 1e-3))));
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Timing of the op rows. */
export interface OpTiming {
  /** Timed windows (median taken). */
  windows: number;
  /** Milliseconds each window should take. */
  targetMs: number;
}

/** wgtorch's figure for one case: GB/s or GFLOP/s, median over windows. */
export async function wgtorchOpRate(c: OpCase, timing: OpTiming): Promise<number> {
  const inputs = c.shapes.map((shape, k) =>
    randUniform(shape, { seed: k + 1, requiresGrad: c.backward })
  );
  const clearGrads = () => {
    for (const input of inputs) {
      input.grad?.dispose();
      input.grad = null;
    }
  };
  try {
    const call = () =>
      tidy(() => {
        if (!c.backward) return void c.wgtorch(inputs);
        clearGrads();
        sum(c.wgtorch(inputs)).backward();
      });
    for (let i = 0; i < 3; i++) call();
    await sync();
    // The per-call cost from a probe of PROBE_CALLS calls: one sync would dominate a single one.
    const t0 = performance.now();
    for (let i = 0; i < PROBE_CALLS; i++) call();
    await sync();
    const calls = callsFor((performance.now() - t0) / PROBE_CALLS, timing.targetMs);
    const rates: number[] = [];
    for (let w = 0; w < timing.windows; w++) {
      const start = performance.now();
      for (let i = 0; i < calls; i++) call();
      await sync();
      rates.push(c.work * calls / ((performance.now() - start) / 1000) / 1e9);
    }
    return median(rates);
  } finally {
    clearGrads();
    for (const input of inputs) input.dispose();
  }
}

/** TF.js's figure for one case (its webgpu backend set up by `setupTfjs`). */
export async function tfjsOpRate(tf: Tf, c: OpCase, timing: OpTiming): Promise<number> {
  const inputs = (c.tfjsShapes ?? c.shapes).map((shape) => tf.randomUniform([...shape], -1, 1));
  const grads = tf.grads((...xs: tfjs.Tensor[]) => tf.sum(c.tfjs(tf, xs)));
  // One call: the output, or (backward) the first input's gradient (the others disposed).
  const call = (): tfjs.Tensor => {
    if (!c.backward) return c.tfjs(tf, inputs);
    const [first, ...rest] = grads(inputs);
    tf.dispose(rest);
    return first;
  };
  // Reading one element of the last output waits for every kernel queued before it.
  const wait = async (t: tfjs.Tensor) => {
    const one = tf.tidy(() => tf.slice(tf.reshape(t, [-1]), [0], [1]));
    await one.data();
    one.dispose();
  };
  try {
    for (let i = 0; i < 3; i++) {
      const t = call();
      await wait(t);
      t.dispose();
    }
    const t0 = performance.now();
    let probe: tfjs.Tensor | undefined;
    for (let i = 0; i < PROBE_CALLS; i++) {
      probe?.dispose();
      probe = call();
    }
    await wait(probe!);
    probe!.dispose();
    const calls = callsFor((performance.now() - t0) / PROBE_CALLS, timing.targetMs);
    const rates: number[] = [];
    for (let w = 0; w < timing.windows; w++) {
      const start = performance.now();
      let last: tfjs.Tensor | undefined;
      for (let i = 0; i < calls; i++) {
        last?.dispose();
        last = call();
      }
      await wait(last!);
      last!.dispose();
      rates.push(c.work * calls / ((performance.now() - start) / 1000) / 1e9);
    }
    return median(rates);
  } finally {
    for (const input of inputs) input.dispose();
  }
}

if (import.meta.main) {
  // `deno run -A bench/ops.ts`: only the tensor-op rows, wgtorch then TF.js, side by side.
  const { init } = await import("../mod.ts");
  const { tfjsModule } = await import("./tfjs.ts");
  await init();
  const tf = await tfjsModule();
  const timing = { windows: 3, targetMs: 300 };
  console.log("| op | unit | wgtorch | TF.js webgpu | ratio |\n|---|---|---:|---:|---:|");
  for (const c of OP_CASES) {
    const ours = await wgtorchOpRate(c, timing);
    const theirs = await tfjsOpRate(tf, c, timing);
    console.log(
      `| ${c.name} | ${c.unit} | ${ours.toFixed(2)} | ${theirs.toFixed(2)} | ${
        (ours / theirs).toFixed(1)
      } |`,
    );
  }
}
