/**
 * The TensorFlow.js half of `deno task bench`: TF.js 4.22 on its WebGPU backend, in the same
 * Deno process and on the same WebGPU adapter as wgtorch, so the two are compared side by side.
 *
 * TF.js is loaded with a dynamic `import()` inside {@linkcode setupTfjs}, so importing this
 * module costs nothing until a TF.js number is asked for. Nothing outside `bench/` may import
 * TF.js.
 *
 * How the numbers are taken (all of them):
 * - Inputs are random tensors created on the GPU before timing; labels are one-hot.
 * - Warm-up first (pipelines compile on the first step), then several timed windows. Each window
 *   ends by awaiting data that depends on the window's last GPU work (`await t.data()` on the
 *   loss, the output, or a one-element slice of the kernel's output); TF.js submits to one queue
 *   in order, so the window's clock covers all of its GPU work. The result is the median window.
 * - One GPU→CPU sync costs ~11.5 ms here, so windows are sized to last about `targetWindowMs`
 *   (default 1,000 ms for models, 400 ms for kernels) from the timing of the last warm-up step,
 *   unless `stepsPerWindow` / `repsPerWindow` is given.
 * - Training uses the lowest-overhead TF.js path: `optimizer.minimize(lossClosure, true,
 *   trainableVariables)` with raw ops, no tf.layers (`model.fit` reads the loss back every batch;
 *   on llvmpipe, tf.layers + `minimize` and `model.fit` measured the same as raw ops within
 *   noise, because the GPU work dominates). `minimize` runs the closure in a tidy scope and
 *   disposes the gradients; the returned loss of every step but a window's last is disposed.
 * - Adam: lr 0.01, beta 0.9 / 0.999, epsilon 1e-8 (PyTorch's; TF.js defaults to 1e-7).
 * - Loss: mean NLL of `tf.logSoftmax(logits)` against one-hot labels (see
 *   `bench/tfjs_models.ts`), as the study's LogSoftmax + NLLLoss.
 * - Linear and conv layers use `tf.fused.matMul` / `tf.fused.conv2d` (bias and ReLU fused), as
 *   tf.layers does; TF.js unfuses the ReLU by itself while recording gradients.
 * - The number of live tensors is checked before and after the windows (`tensorsLeaked`).
 *
 * Order of use: {@linkcode setupTfjs}, then any of {@linkcode tfjsTrainThroughput},
 * {@linkcode tfjsEvalThroughput}, {@linkcode tfjsKernelGflops}; {@linkcode disposeTfjs} frees
 * TF.js's GPU memory when done.
 *
 * Run alone: `deno run -A bench/tfjs.ts` prints every TF.js number as a Markdown table (about
 * 2-4 minutes on the 2-core llvmpipe machine, depending on load). Flags: `--windows=N`,
 * `--warmup=N`, `--target-ms=N` (model windows), `--kernel-target-ms=N`, `--batches=32,128`,
 * `--models=mlp,cnn,cnn-bn`, `--no-kernels`.
 *
 * @module
 */

// Inline npm: specifiers on purpose: TF.js is a bench-only dependency kept out of deno.json.
// deno-lint-ignore no-import-prefix
import type * as tfjs from "npm:@tensorflow/tfjs@4.22.0";
import type { Tf, TfjsModel, TfjsModelName } from "./tfjs_models.ts";
import { buildTfjsModel, tfjsInputShape } from "./tfjs_models.ts";

export type { TfjsModelName } from "./tfjs_models.ts";

/** What {@linkcode setupTfjs} reports. */
export interface TfjsSetup {
  /** TF.js version, e.g. `"4.22.0"`. */
  version: string;
  /** The active TF.js backend: `"webgpu"`. */
  backend: string;
  /** The WebGPU adapter TF.js runs on, e.g. `"llvmpipe (LLVM 15.0.6, 256 bits)"`. */
  adapter?: string;
}

/** Options of {@linkcode tfjsTrainThroughput} and {@linkcode tfjsEvalThroughput}. */
export interface TfjsThroughputOptions {
  /** Images per step. */
  batchSize: number;
  /** Untimed steps first (pipeline compilation happens here). Default 2. */
  warmupSteps?: number;
  /** Timed windows; the result is their median. Default 3. */
  windows?: number;
  /**
   * Steps per window. Default: enough steps for the window to last about `targetWindowMs`,
   * estimated from the last warm-up step, at least 2 and at most 200.
   */
  stepsPerWindow?: number;
  /** Target window length in ms when `stepsPerWindow` is not given. Default 1,000. */
  targetWindowMs?: number;
}

/** A throughput measurement. */
export interface TfjsThroughput {
  /** Median over the windows, images per second. */
  imagesPerSecond: number;
  /** Each window's images per second, in the order measured. */
  windows: number[];
  /** Batch size used. */
  batchSize: number;
  /** Steps in each timed window. */
  stepsPerWindow: number;
  /** Untimed warm-up steps run first. */
  warmupSteps: number;
  /** Live TF.js tensors after the windows minus before them (0 when memory stays flat). */
  tensorsLeaked: number;
}

/** A matmul shape: [m x k] · [k x n]. */
export interface MatmulShape {
  /** Rows of A and C. */
  m: number;
  /** Inner dimension. */
  k: number;
  /** Columns of B and C. */
  n: number;
}

/** A conv2d shape, TF.js layout: input [batch, height, width, inChannels] (NHWC), filter
 * [kernel, kernel, inChannels, outChannels], stride 1, valid padding. */
export interface Conv2dShape {
  /** Batch size. */
  batch: number;
  /** Input height. */
  height: number;
  /** Input width. */
  width: number;
  /** Input channels. */
  inChannels: number;
  /** Output channels. */
  outChannels: number;
  /** Square kernel size. */
  kernel: number;
}

/** Options of {@linkcode tfjsKernelGflops}. */
export interface TfjsKernelOptions {
  /** Untimed runs of the kernel first (the first compiles the pipeline). Default 2. */
  warmupReps?: number;
  /** Timed windows; the result is their median. Default 3. */
  windows?: number;
  /** Kernel runs per window. Default: enough to last about `targetWindowMs`, 2 to 5,000. */
  repsPerWindow?: number;
  /** Target window length in ms when `repsPerWindow` is not given. Default 400. */
  targetWindowMs?: number;
}

/** The matmul shapes of the study's models at batch 128 (forward pass of each linear layer). */
export const TFJS_MATMUL_SHAPES: readonly MatmulShape[] = [
  { m: 128, k: 784, n: 256 },
  { m: 128, k: 256, n: 128 },
  { m: 128, k: 128, n: 10 },
  { m: 128, k: 320, n: 10 },
];

/** The conv2d shapes of the CNNs at batch 128 (5x5, valid). */
export const TFJS_CONV2D_SHAPES: readonly Conv2dShape[] = [
  { batch: 128, height: 28, width: 28, inChannels: 1, outChannels: 10, kernel: 5 },
  { batch: 128, height: 12, width: 12, inChannels: 10, outChannels: 20, kernel: 5 },
];

/** How TF.js trains in {@linkcode tfjsTrainThroughput}, for reports. */
export const TFJS_TRAINING_PATH =
  "raw ops + optimizer.minimize(tidy'd loss closure, returnCost, varList); Adam(0.01, eps 1e-8)";

let tfModule: Tf | undefined;
let setupResult: TfjsSetup | undefined;

/**
 * Loads TF.js 4.22 and its WebGPU backend (dynamic import), selects the `webgpu` backend and
 * waits for it. TF.js makes its own `GPUDevice` from `navigator.gpu` (the same adapter as
 * wgtorch's). Safe to call more than once.
 */
export async function setupTfjs(): Promise<TfjsSetup> {
  if (setupResult) return setupResult;
  try {
    // lavapipe prints a warning on every adapter request while XDG_RUNTIME_DIR is unset.
    if (!Deno.env.get("XDG_RUNTIME_DIR")) Deno.env.set("XDG_RUNTIME_DIR", Deno.makeTempDirSync());
  } catch { /* no env permission: the warning is harmless */ }
  // deno-lint-ignore no-import-prefix
  const tf: Tf = tfModule ?? await import("npm:@tensorflow/tfjs@4.22.0");
  // Registers the "webgpu" backend factory as a side effect.
  // deno-lint-ignore no-import-prefix
  await import("npm:@tensorflow/tfjs-backend-webgpu@4.22.0");
  if (!(await tf.setBackend("webgpu"))) {
    throw new Error("TF.js could not initialise its webgpu backend (navigator.gpu unavailable?)");
  }
  await tf.ready();
  tfModule = tf;
  let adapter: string | undefined;
  try {
    // The device TF.js created; fall back to asking navigator.gpu for the same adapter.
    const device = (tf.backend() as unknown as { device?: { adapterInfo?: GPUAdapterInfo } })
      .device;
    const info = device?.adapterInfo ??
      (await navigator.gpu.requestAdapter({ powerPreference: "high-performance" }))?.info;
    if (info) adapter = info.description || `${info.vendor} ${info.device}`.trim() || undefined;
  } catch { /* adapter name is optional */ }
  setupResult = { version: tf.version.tfjs, backend: tf.getBackend(), adapter };
  return setupResult;
}

/**
 * Releases what TF.js holds on the GPU (its backend, pooled buffers and any live tensors), so
 * that whatever is measured next does not share the adapter with TF.js's memory. A later
 * {@linkcode setupTfjs} starts TF.js's backend again.
 */
export function disposeTfjs(): void {
  if (!tfModule) return;
  tfModule.disposeVariables();
  tfModule.engine().reset();
  setupResult = undefined;
}

/** The TF.js module, set up (webgpu backend) by `setupTfjs`. */
export async function tfjsModule(): Promise<Tf> {
  await setupTfjs();
  return getTf();
}

function getTf(): Tf {
  if (!tfModule) throw new Error("call setupTfjs() before any TF.js benchmark");
  return tfModule;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function stepsFor(lastStepMs: number, targetMs: number, min: number, max: number): number {
  return Math.max(min, Math.min(max, Math.ceil(targetMs / Math.max(lastStepMs, 1e-3))));
}

/**
 * Runs `step` (which returns the tensor to await, or null) warm-up times, then `windows` timed
 * windows; each window ends with `await` on its last step's tensor. Returns per-window
 * durations in ms and the steps per window.
 */
async function timeWindows(
  tf: Tf,
  step: () => tfjs.Tensor,
  sync: (t: tfjs.Tensor) => Promise<void>,
  o: { warmup: number; windows: number; steps?: number; targetMs: number; maxSteps: number },
): Promise<{ ms: number[]; steps: number; leaked: number }> {
  let lastMs = 0;
  for (let i = 0; i < Math.max(1, o.warmup); i++) {
    const t0 = performance.now();
    const t = step();
    await sync(t);
    t.dispose();
    lastMs = performance.now() - t0;
  }
  const steps = o.steps ?? stepsFor(lastMs, o.targetMs, 2, o.maxSteps);
  const before = tf.memory().numTensors;
  const ms: number[] = [];
  for (let w = 0; w < o.windows; w++) {
    const t0 = performance.now();
    let last: tfjs.Tensor | undefined;
    for (let s = 0; s < steps; s++) {
      last?.dispose();
      last = step();
    }
    await sync(last!);
    ms.push(performance.now() - t0);
    last!.dispose();
  }
  return { ms, steps, leaked: tf.memory().numTensors - before };
}

interface Prepared {
  model: TfjsModel;
  x: tfjs.Tensor;
  labels: tfjs.Tensor2D;
  dispose(): void;
}

function prepare(tf: Tf, name: TfjsModelName, batchSize: number): Prepared {
  const model = buildTfjsModel(tf, name);
  const x = tf.randomUniform(tfjsInputShape(name, batchSize), 0, 1);
  const labels = tf.tidy(() =>
    tf.oneHot(tf.randomUniform([batchSize], 0, 10, "int32") as tfjs.Tensor1D, 10)
  ) as tfjs.Tensor2D;
  return {
    model,
    x,
    labels,
    dispose() {
      model.dispose();
      x.dispose();
      labels.dispose();
    },
  };
}

function checkName(model: string): asserts model is TfjsModelName {
  if (model !== "mlp" && model !== "cnn" && model !== "cnn-bn") {
    throw new Error(`unknown model "${model}" (expected mlp, cnn or cnn-bn)`);
  }
}

/**
 * Training throughput of TF.js on one of the study's models: images per second, median over
 * timed windows after warm-up, on random data already on the GPU. Each step is forward,
 * backward and an Adam update through `optimizer.minimize` (see {@linkcode TFJS_TRAINING_PATH}).
 * Requires {@linkcode setupTfjs} first.
 */
export async function tfjsTrainThroughput(
  model: TfjsModelName,
  options: TfjsThroughputOptions,
): Promise<TfjsThroughput> {
  checkName(model);
  const tf = getTf();
  const p = prepare(tf, model, options.batchSize);
  const optimizer = tf.train.adam(0.01, 0.9, 0.999, 1e-8);
  try {
    return await modelThroughput(
      tf,
      () => optimizer.minimize(() => p.model.loss(p.x, p.labels, true), true, p.model.trainable)!,
      options,
      200,
    );
  } finally {
    optimizer.dispose();
    p.dispose();
  }
}

/**
 * Inference throughput of TF.js on one of the study's models (forward only, evaluation mode:
 * no dropout, BatchNorm running statistics), images per second, measured like
 * {@linkcode tfjsTrainThroughput}. Requires {@linkcode setupTfjs} first.
 */
export async function tfjsEvalThroughput(
  model: TfjsModelName,
  options: TfjsThroughputOptions,
): Promise<TfjsThroughput> {
  checkName(model);
  const tf = getTf();
  const p = prepare(tf, model, options.batchSize);
  try {
    return await modelThroughput(
      tf,
      () => tf.tidy(() => p.model.forward(p.x, false)),
      options,
      500,
    );
  } finally {
    p.dispose();
  }
}

/**
 * Images per second of `step` (one batch's work, returning a tensor that depends on it), timed
 * in windows of at most `maxSteps` steps after the warm-up (see the module documentation).
 */
async function modelThroughput(
  tf: Tf,
  step: () => tfjs.Tensor,
  options: TfjsThroughputOptions,
  maxSteps: number,
): Promise<TfjsThroughput> {
  const { batchSize } = options;
  const warmupSteps = options.warmupSteps ?? 2;
  const r = await timeWindows(tf, step, async (t) => void await t.data(), {
    warmup: warmupSteps,
    windows: options.windows ?? 3,
    steps: options.stepsPerWindow,
    targetMs: options.targetWindowMs ?? 1000,
    maxSteps,
  });
  const windows = r.ms.map((ms) => (r.steps * batchSize) / (ms / 1000));
  return {
    imagesPerSecond: median(windows),
    windows,
    batchSize,
    stepsPerWindow: r.steps,
    warmupSteps,
    tensorsLeaked: r.leaked,
  };
}

/** Forward FLOPs of a kernel shape: 2·M·N·K for matmul, 2·N·Ho·Wo·Cout·Cin·K·K for conv2d. */
export function kernelFlops(kind: "matmul", shape: MatmulShape): number;
/** Forward FLOPs of a conv2d shape (valid padding, stride 1). */
export function kernelFlops(kind: "conv2d", shape: Conv2dShape): number;
export function kernelFlops(kind: "matmul" | "conv2d", shape: MatmulShape | Conv2dShape): number {
  if (kind === "matmul") {
    const { m, k, n } = shape as MatmulShape;
    return 2 * m * n * k;
  }
  const c = shape as Conv2dShape;
  const ho = c.height - c.kernel + 1, wo = c.width - c.kernel + 1;
  return 2 * c.batch * ho * wo * c.outChannels * c.inChannels * c.kernel * c.kernel;
}

/** Forward GFLOP/s of TF.js's matmul `[m x k]·[k x n]` (float32), median over windows. */
export function tfjsKernelGflops(
  kind: "matmul",
  shape: MatmulShape,
  options?: TfjsKernelOptions,
): Promise<number>;
/** Forward GFLOP/s of TF.js's conv2d (NHWC, stride 1, valid), median over windows. */
export function tfjsKernelGflops(
  kind: "conv2d",
  shape: Conv2dShape,
  options?: TfjsKernelOptions,
): Promise<number>;
export async function tfjsKernelGflops(
  kind: "matmul" | "conv2d",
  shape: MatmulShape | Conv2dShape,
  options: TfjsKernelOptions = {},
): Promise<number> {
  const tf = getTf();
  let inputs: tfjs.Tensor[];
  let run: () => tfjs.Tensor;
  let flops: number;
  if (kind === "matmul") {
    const s = shape as MatmulShape;
    const a = tf.randomUniform([s.m, s.k], -1, 1) as tfjs.Tensor2D;
    const b = tf.randomUniform([s.k, s.n], -1, 1) as tfjs.Tensor2D;
    inputs = [a, b];
    run = () => tf.matMul(a, b);
    flops = kernelFlops("matmul", s);
  } else if (kind === "conv2d") {
    const s = shape as Conv2dShape;
    const x = tf.randomUniform([s.batch, s.height, s.width, s.inChannels], -1, 1) as tfjs.Tensor4D;
    const w = tf.randomUniform(
      [s.kernel, s.kernel, s.inChannels, s.outChannels],
      -1,
      1,
    ) as tfjs.Tensor4D;
    inputs = [x, w];
    run = () => tf.conv2d(x, w, 1, "valid");
    flops = kernelFlops("conv2d", s);
  } else {
    throw new Error(`unknown kernel kind "${kind}"`);
  }
  try {
    const r = await timeWindows(
      tf,
      run,
      // Read back one element that depends on the output: the queue is in order, so this waits
      // for every kernel of the window without timing a large download.
      async (t) => {
        const one = tf.tidy(() => tf.slice(tf.reshape(t, [-1]), [0], [1]));
        await one.data();
        one.dispose();
      },
      {
        warmup: options.warmupReps ?? 2,
        windows: options.windows ?? 3,
        steps: options.repsPerWindow,
        targetMs: options.targetWindowMs ?? 400,
        maxSteps: 5000,
      },
    );
    return median(r.ms.map((ms) => (r.steps * flops) / (ms / 1000) / 1e9));
  } finally {
    for (const t of inputs) t.dispose();
  }
}

function describeShape(kind: "matmul" | "conv2d", s: MatmulShape | Conv2dShape): string {
  if (kind === "matmul") {
    const m = s as MatmulShape;
    return `[${m.m}x${m.k}]·[${m.k}x${m.n}]`;
  }
  const c = s as Conv2dShape;
  return `[${c.batch},${c.height},${c.width},${c.inChannels}] * ` +
    `${c.kernel}x${c.kernel}x${c.inChannels}x${c.outChannels}`;
}

if (import.meta.main) {
  // Flags: --windows=N --warmup=N (model steps) --target-ms=N (model windows)
  //        --kernel-target-ms=N --batches=32,128 --models=mlp,cnn,cnn-bn --no-kernels
  const { parseArgs } = await import("node:util");
  const { values: args } = parseArgs({
    args: Deno.args,
    options: {
      windows: { type: "string" },
      warmup: { type: "string" },
      "target-ms": { type: "string" },
      "kernel-target-ms": { type: "string" },
      batches: { type: "string", default: "32,128" },
      models: { type: "string", default: "mlp,cnn,cnn-bn" },
      "no-kernels": { type: "boolean", default: false },
    },
  });
  const num = (v: string | undefined): number | undefined => v === undefined ? undefined : +v;
  const common = {
    windows: num(args.windows),
    warmupSteps: num(args.warmup),
    targetWindowMs: num(args["target-ms"]),
  };
  const fmt = (x: number, digits = 0): string =>
    x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  const t0 = performance.now();
  const info = await setupTfjs();
  console.log(
    `TF.js ${info.version}, backend ${info.backend}, adapter ${info.adapter ?? "?"}` +
      ` (setup ${fmt((performance.now() - t0) / 1000, 1)} s)`,
  );
  console.log(`training path: ${TFJS_TRAINING_PATH}\n`);
  console.log(
    "| model | batch | train img/s (median) | train windows | eval img/s (median) | eval windows |",
  );
  console.log("|---|---|---|---|---|---|");
  const windowsCell = (r: TfjsThroughput): string =>
    `${r.windows.map((w) => fmt(w)).join(" / ")} (${r.stepsPerWindow} steps each)` +
    (r.tensorsLeaked ? ` LEAKED ${r.tensorsLeaked} tensors` : "");
  for (const model of args.models.split(",")) {
    checkName(model);
    for (const batchSize of args.batches.split(",").map(Number)) {
      const tr = await tfjsTrainThroughput(model, { batchSize, ...common });
      const ev = await tfjsEvalThroughput(model, { batchSize, ...common });
      console.log(
        `| ${model} | ${batchSize} | ${fmt(tr.imagesPerSecond)} | ${windowsCell(tr)} | ` +
          `${fmt(ev.imagesPerSecond)} | ${windowsCell(ev)} |`,
      );
    }
  }
  if (!args["no-kernels"]) {
    const kernelOptions = {
      windows: num(args.windows),
      targetWindowMs: num(args["kernel-target-ms"]),
    };
    console.log("\n| kernel (forward) | shape | GFLOP/s (median) |");
    console.log("|---|---|---|");
    for (const shape of TFJS_MATMUL_SHAPES) {
      const g = await tfjsKernelGflops("matmul", shape, kernelOptions);
      console.log(`| matmul | ${describeShape("matmul", shape)} | ${fmt(g, 3)} |`);
    }
    for (const shape of TFJS_CONV2D_SHAPES) {
      const g = await tfjsKernelGflops("conv2d", shape, kernelOptions);
      console.log(`| conv2d | ${describeShape("conv2d", shape)} | ${fmt(g, 3)} |`);
    }
  }
  console.log(
    `\ntotal ${fmt((performance.now() - t0) / 1000, 1)} s; live TF.js tensors at end: ` +
      `${getTf().memory().numTensors}`,
  );
  disposeTfjs();
}
