/**
 * `deno task bench`: training and evaluation throughput of the study's models, and GFLOP/s of
 * their matmul and conv2d shapes, for wgtorch and for TensorFlow.js (WebGPU backend) in the same
 * process on the same adapter, side by side with the ratio.
 *
 * Each training and evaluation row also runs in PyTorch on the CPU (`bench/pytorch_bench.py`, a
 * subprocess), its timed windows alternating with wgtorch's, by default whenever
 * `python3 -c "import torch"` works.
 *
 * Usage: `deno task bench [--json FILE] [--no-tfjs] [--pytorch | --no-pytorch]
 * [--models mlp,cnn,cnn-bn] [--batches 32,128] [--windows N] [--profile]` (`--help` says more).
 *
 * @module
 */

import process from "node:process";
import { type CommandSpec, formatHelp, parseFlags, UsageError } from "../cli/args.ts";
import { HELP_FLAG } from "../cli/flags.ts";
import {
  Adam,
  conv2d,
  describeAdapter,
  init,
  matmul,
  memoryStats,
  nllLoss,
  noGrad,
  randUniform,
  startProfiling,
  stopProfiling,
  streamStats,
  sync,
  type Tensor,
  tensor,
  tidy,
} from "../mod.ts";
import { createModel, MODEL_NAMES, type ModelName } from "../models/mod.ts";
import { writeJsonAtomic } from "../train/tune/fs_atomic.ts";
import {
  findTorchPython,
  type PytorchReport,
  type PytorchRow,
  type PytorchRowSpec,
  PytorchServer,
} from "./pytorch.ts";
import { OP_CASES, tfjsOpRate, wgtorchOpRate } from "./ops.ts";
import { SEQ_CASES, tfjsSeqMs, wgtorchSeqMs } from "./seq_cases.ts";
import { describeDrivers, loadedDrivers } from "./driver.ts";
import { threadShares, threadTimes } from "./thread_cpu.ts";

/** One measured throughput. */
export interface Throughput {
  /** Images per second: median over the timed windows. */
  imagesPerSecond: number;
  /** Each window's images per second. */
  windows: number[];
  /** Process CPU milliseconds per step (all threads; robust to other processes). */
  cpuMsPerStep: number;
  /** Steps in each timed window. */
  stepsPerWindow: number;
  /** Compute dispatches encoded per step. */
  dispatchesPerStep: number;
  /** Buffer→texture copies per step (texture mirrors refreshed; each breaks the pass). */
  textureCopiesPerStep: number;
  /** KiB those copies move per step. */
  textureCopyKiBPerStep: number;
  /**
   * Milliseconds per step spent in JavaScript encoding the step (GPU work not awaited, nor the
   * previous submission inside `queue.submit()`).
   */
  hostMsPerStep: number;
}

interface TimingOptions {
  warmup: number;
  windows: number;
  targetMs: number;
  /** Runs after each timed window (PyTorch's window of the same row, alternating with ours). */
  afterWindow?: () => Promise<void>;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * Milliseconds per step, for sizing windows: a run of steps timed to the end of their GPU work,
 * long enough that the wait for it (Deno reports finished work ~10 ms late on llvmpipe) is small
 * next to the run (one step timed alone counted that wait as part of the step).
 */
async function stepMs(step: () => void): Promise<number> {
  for (let steps = 1;; steps *= 4) {
    const start = performance.now();
    for (let i = 0; i < steps; i++) step();
    await sync();
    const elapsed = performance.now() - start;
    if (elapsed >= 100 || steps >= 64) return elapsed / steps;
  }
}

/** Times `step` (which encodes one batch of `batch` images): warm-up, then windows of steps. */
async function timeSteps(
  step: () => void,
  batch: number,
  options: TimingOptions,
): Promise<Throughput> {
  for (let i = 0; i < options.warmup; i++) step();
  await sync();
  const stepsPerWindow = Math.max(
    2,
    Math.min(500, Math.round(options.targetMs / await stepMs(step))),
  );
  const windows: number[] = [];
  let cpu = 0;
  let host = 0;
  const stats0 = streamStats();
  for (let w = 0; w < options.windows; w++) {
    const c0 = process.cpuUsage();
    const submitted = streamStats().submitMilliseconds;
    const start = performance.now();
    for (let i = 0; i < stepsPerWindow; i++) step();
    host += performance.now() - start - (streamStats().submitMilliseconds - submitted);
    await sync();
    const seconds = (performance.now() - start) / 1000;
    const used = process.cpuUsage(c0);
    cpu += (used.user + used.system) / 1000 / stepsPerWindow;
    windows.push(batch * stepsPerWindow / seconds);
    await options.afterWindow?.();
  }
  const steps = options.windows * stepsPerWindow;
  return {
    imagesPerSecond: median(windows),
    windows,
    cpuMsPerStep: cpu / options.windows,
    stepsPerWindow,
    dispatchesPerStep: (streamStats().dispatches - stats0.dispatches) / steps,
    textureCopiesPerStep: (streamStats().textureCopies - stats0.textureCopies) / steps,
    textureCopyKiBPerStep: (streamStats().textureCopyBytes - stats0.textureCopyBytes) / steps /
      1024,
    hostMsPerStep: host / steps,
  };
}

/** Training throughput of wgtorch on one of the study's models (Adam 0.01, random data on the GPU). */
export async function trainThroughput(
  name: ModelName,
  options: { batchSize: number } & Partial<TimingOptions>,
): Promise<Throughput & { liveBytesGrowth: number }> {
  const model = createModel(name);
  const optimizer = new Adam(model.parameters(), { lr: 0.01 });
  const x = randUniform([options.batchSize, 1, 28, 28], { seed: 1 });
  const y = tensor(Int32Array.from({ length: options.batchSize }, (_, i) => i % 10), [
    options.batchSize,
  ], {
    dtype: "i32",
  });
  const step = () =>
    tidy(() => {
      optimizer.zeroGrad();
      nllLoss(model.forward(x), y).backward();
      optimizer.step();
    });
  const timing = { warmup: 3, windows: 5, targetMs: 1500, ...options };
  for (let i = 0; i < timing.warmup; i++) step();
  await sync();
  const before = memoryStats().liveBytes;
  const result = await timeSteps(step, options.batchSize, timing);
  const growth = memoryStats().liveBytes - before;
  optimizer.zeroGrad();
  optimizer.dispose();
  model.dispose();
  x.dispose();
  y.dispose();
  return { ...result, liveBytesGrowth: growth };
}

/** Evaluation (forward only, eval mode) throughput of wgtorch on one of the study's models. */
export async function evalThroughput(
  name: ModelName,
  options: { batchSize: number } & Partial<TimingOptions>,
): Promise<Throughput> {
  const model = createModel(name).eval();
  const x = randUniform([options.batchSize, 1, 28, 28], { seed: 1 });
  const step = () => tidy(() => void noGrad(() => model.forward(x)));
  const result = await timeSteps(step, options.batchSize, {
    warmup: 2,
    windows: 5,
    targetMs: 1000,
    ...options,
  });
  model.dispose();
  x.dispose();
  return result;
}

/** A kernel shape of the study's models (forward). */
export interface KernelCase {
  /** Short description. */
  name: string;
  /** "matmul" (x · Wᵀ as in Linear) or "conv2d" (valid, stride 1). */
  kind: "matmul" | "conv2d";
  /** For matmul: [m, k, n]; for conv2d: [batch, inChannels, size, outChannels, kernel]. */
  dims: number[];
}

/** The matmul and conv2d shapes of the study's models at batch 128. */
export const KERNEL_CASES: readonly KernelCase[] = [
  { name: "matmul 128x784 · 784x256", kind: "matmul", dims: [128, 784, 256] },
  { name: "matmul 128x256 · 256x128", kind: "matmul", dims: [128, 256, 128] },
  { name: "matmul 128x128 · 128x10", kind: "matmul", dims: [128, 128, 10] },
  { name: "matmul 128x320 · 320x10", kind: "matmul", dims: [128, 320, 10] },
  { name: "conv2d [128,1,28,28] * [10,1,5,5]", kind: "conv2d", dims: [128, 1, 28, 10, 5] },
  { name: "conv2d [128,10,12,12] * [20,10,5,5]", kind: "conv2d", dims: [128, 10, 12, 20, 5] },
];

function kernelFlops(c: KernelCase): number {
  if (c.kind === "matmul") return 2 * c.dims[0] * c.dims[1] * c.dims[2];
  const [batch, inC, size, outC, k] = c.dims;
  const out = size - k + 1;
  return 2 * batch * outC * out * out * inC * k * k;
}

/** GFLOP/s of wgtorch on one kernel shape (forward, the GPU work awaited). */
export async function kernelGflops(c: KernelCase): Promise<number> {
  let inputs: Tensor[];
  let run: () => void;
  if (c.kind === "matmul") {
    const [m, k, n] = c.dims;
    inputs = [randUniform([m, k], { seed: 1 }), randUniform([n, k], { seed: 2 })];
    run = () => tidy(() => void matmul(inputs[0], inputs[1], { transposeB: true }));
  } else {
    const [batch, inC, size, outC, k] = c.dims;
    inputs = [
      randUniform([batch, inC, size, size], { seed: 1 }),
      randUniform([outC, inC, k, k], { seed: 2 }),
    ];
    run = () => tidy(() => void conv2d(inputs[0], inputs[1]));
  }
  const result = await timeSteps(run, 1, { warmup: 2, windows: 5, targetMs: 400 });
  for (const t of inputs) t.dispose();
  return kernelFlops(c) * result.imagesPerSecond / 1e9;
}

/** One row of the report. */
export interface BenchRow {
  /** What was measured. */
  what: string;
  /** wgtorch's figure. */
  wgtorch: number;
  /** TF.js's figure, when measured. */
  tfjs?: number;
  /** wgtorch / TF.js. */
  ratio?: number;
  /** PyTorch CPU's figure, when measured. */
  pytorch?: number;
  /** wgtorch / PyTorch CPU. */
  ratioPytorch?: number;
  /** wgtorch's timed windows (throughput rows), in the row's unit. */
  windows?: number[];
  /** PyTorch's timed windows, each run right after wgtorch's window of the same index. */
  pytorchWindows?: number[];
  /** The unit of both figures. */
  unit: string;
  /** wgtorch's process CPU milliseconds per step, for throughput rows. */
  cpuMsPerStep?: number;
  /** Steps in each of wgtorch's timed windows, for throughput rows. */
  stepsPerWindow?: number;
  /** wgtorch's compute dispatches per step, for throughput rows. */
  dispatchesPerStep?: number;
  /** wgtorch's buffer→texture copies per step, for throughput rows. */
  textureCopiesPerStep?: number;
  /** KiB wgtorch's buffer→texture copies move per step, for throughput rows. */
  textureCopyKiBPerStep?: number;
  /** wgtorch's JavaScript (encoding) milliseconds per step, for throughput rows. */
  hostMsPerStep?: number;
}

function fmt(value: number | undefined, digits = 0): string {
  if (value === undefined) return "—";
  return value.toLocaleString("en-US", {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  });
}

/** The rows as a Markdown table: wgtorch, TF.js webgpu and PyTorch CPU with both ratios. */
export function benchTable(rows: readonly BenchRow[]): string {
  const cell = (value: number | undefined, digits: number) =>
    value === undefined ? "—" : fmt(value, digits);
  const ratio = (value: number | undefined) => value === undefined ? "—" : `${fmt(value, 2)}x`;
  const lines = rows.map((r) => {
    const digits = r.unit === "img/s" ? 0 : 2;
    return `| ${r.what} | ${r.unit} | ${cell(r.wgtorch, digits)} | ${cell(r.tfjs, digits)} | ${
      cell(r.pytorch, digits)
    } | ${ratio(r.ratio)} | ${ratio(r.ratioPytorch)} | ${cell(r.dispatchesPerStep, 0)} |`;
  });
  return [
    "| measurement | unit | wgtorch | TF.js webgpu | PyTorch CPU | wgtorch / TF.js | " +
    "wgtorch / PyTorch | dispatches per step |",
    "|---|---|---:|---:|---:|---:|---:|---:|",
    ...lines,
  ].join("\n");
}

/** The bench's models. */
export type BenchModel = Exclude<ModelName, "tuning-cnn">;

/** Training steps timed by `--profile`, per model and batch size. */
const PROFILED_STEPS = 5;
/** Milliseconds of unprofiled steps over which `--profile` reads each thread's CPU time. */
const THREAD_CPU_MS = 2000;

/** The registry's models that TF.js also builds (it has no tuning CNN). */
const BENCH_MODELS: readonly BenchModel[] = MODEL_NAMES.filter((name): name is BenchModel =>
  name !== "tuning-cnn"
);

/** `deno task bench`'s flags and help. */
const BENCH_COMMAND: CommandSpec = {
  name: "bench",
  invocation: "deno task bench",
  description: `
Training and evaluation throughput of the study's models, and GFLOP/s of their matmul and conv2d
shapes, for wgtorch and TensorFlow.js (WebGPU) on the same adapter, and PyTorch on the CPU. PyTorch
CPU rows run by default when python3 can import torch; --pytorch makes that required.`,
  flags: [
    { name: "json", kind: "string", metavar: "FILE", help: "also write every figure to FILE" },
    { name: "no-tfjs", kind: "boolean", help: "leave TensorFlow.js out" },
    { name: "pytorch", kind: "boolean", help: "require the PyTorch CPU rows (fail without torch)" },
    { name: "no-pytorch", kind: "boolean", help: "leave PyTorch out" },
    {
      name: "models",
      kind: "string",
      metavar: "LIST",
      default: BENCH_MODELS.join(","),
      help: `comma-separated models among ${BENCH_MODELS.join(", ")}`,
    },
    {
      name: "batches",
      kind: "string",
      metavar: "LIST",
      default: "32,128",
      help: "comma-separated training batch sizes",
    },
    { name: "windows", kind: "integer", min: 1, default: 5, help: "timed windows per row" },
    {
      name: "profile",
      kind: "boolean",
      help:
        "also print the GPU time of each kernel in a training step of each model and batch size (timestamp queries), and each thread's CPU time per step (Linux)",
    },
    HELP_FLAG,
  ],
};

/** What `deno task bench`'s flags ask for. */
export interface BenchSettings {
  /** Where to write the JSON report, if asked. */
  json?: string;
  /** Whether to time TensorFlow.js. */
  tfjs: boolean;
  /** PyTorch: `required`, `auto` (when importable) or `off`. */
  pytorch: "required" | "auto" | "off";
  /** The models to time. */
  models: BenchModel[];
  /** The training batch sizes. */
  batches: number[];
  /** Timed windows per row. */
  windows: number;
  /** Whether to profile the kernels of a training step. */
  profile: boolean;
  /** Whether `--help` was given. */
  help: boolean;
}

/** Parses `deno task bench`'s arguments; mistakes throw `UsageError` naming the flag. */
export function parseBenchArgs(args: readonly string[]): BenchSettings {
  const flags = parseFlags(BENCH_COMMAND, args);
  const list = (name: string, valid: (item: string) => boolean, expected: string) => {
    const raw = flags.string(name)!;
    const items = raw.split(",");
    if (!items.every(valid)) {
      throw new UsageError(`bench: --${name} ${JSON.stringify(raw)}: expected ${expected}`);
    }
    return items;
  };
  const models = list(
    "models",
    (item) => (BENCH_MODELS as readonly string[]).includes(item),
    `a comma-separated list of ${BENCH_MODELS.join(", ")}`,
  ) as BenchModel[];
  const batches = list(
    "batches",
    (item) => /^[1-9][0-9]*$/.test(item),
    "a comma-separated list of integers >= 1",
  ).map(Number);
  if (flags.boolean("pytorch") && flags.boolean("no-pytorch")) {
    throw new UsageError("bench: --pytorch and --no-pytorch contradict each other: give one");
  }
  return {
    json: flags.string("json"),
    tfjs: !flags.boolean("no-tfjs"),
    pytorch: flags.boolean("pytorch") ? "required" : flags.boolean("no-pytorch") ? "off" : "auto",
    models,
    batches,
    windows: flags.number("windows")!,
    profile: flags.boolean("profile"),
    help: flags.boolean("help"),
  };
}

/** `deno task bench --help`. */
export function benchHelp(): string {
  return formatHelp(BENCH_COMMAND);
}

async function main(args: readonly string[]): Promise<void> {
  let settings: BenchSettings;
  try {
    settings = parseBenchArgs(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(error.message);
    Deno.exit(2);
  }
  if (settings.help) {
    console.log(benchHelp());
    return;
  }
  const { models, batches, windows } = settings;
  const python = settings.pytorch === "off" ? null : await findTorchPython();
  if (settings.pytorch === "required" && !python) {
    console.error(
      "bench: --pytorch needs a python3 that can import torch (Debian: apt-get install " +
        "python3-torch libopenblas0-pthread)",
    );
    Deno.exit(2);
  }
  const gpu = await init();
  console.error(`adapter: ${describeAdapter(gpu.adapter)}`);
  const drivers = loadedDrivers(gpu.adapter.description);
  const driverLine = describeDrivers(drivers);
  if (driverLine) console.error(`driver: ${driverLine}`);
  const tfjs = !settings.tfjs ? null : await import("./tfjs.ts");
  const tfjsSetup = tfjs ? await tfjs.setupTfjs() : null;
  if (tfjsSetup) console.error(`TF.js ${tfjsSetup.version}, backend ${tfjsSetup.backend}`);
  const rows: BenchRow[] = [];
  const add = (row: BenchRow) => {
    if (row.tfjs !== undefined) row.ratio = row.wgtorch / row.tfjs;
    if (row.pytorch !== undefined) row.ratioPytorch = row.wgtorch / row.pytorch;
    rows.push(row);
    console.error(
      `${row.what}: wgtorch ${fmt(row.wgtorch, row.unit === "img/s" ? 0 : 2)} ${row.unit}` +
        (row.tfjs !== undefined
          ? `, TF.js ${fmt(row.tfjs, row.unit === "img/s" ? 0 : 2)} (x${fmt(row.ratio, 1)})`
          : "") +
        (row.pytorch !== undefined
          ? `, PyTorch ${fmt(row.pytorch, 0)} (x${fmt(row.ratioPytorch, 2)})`
          : ""),
    );
  };
  // PyTorch's timed windows alternate with wgtorch's, row by row: the machine's speed drifts by
  // tens of percent within a minute, so figures taken apart would compare two machines.
  const torch = python ? PytorchServer.start(python, navigator.hardwareConcurrency) : null;
  const torchInfo = torch ? await torch.info() : null;
  const torchRows: PytorchRow[] = [];
  /** Times a row in both: `measure` gets the hook that runs PyTorch's window after each of ours. */
  const sideBySide = async <T extends Throughput>(
    row: PytorchRowSpec,
    measure: (afterWindow?: () => Promise<void>) => Promise<T>,
  ): Promise<{ ours: T; theirs?: PytorchRow }> => {
    if (!torch) return { ours: await measure() };
    await torch.setup(row);
    const rates: number[] = [];
    let cpu = 0;
    const ours = await measure(async () => {
      const window = await torch.window();
      rates.push(window.imagesPerSecond);
      cpu += window.cpuMsPerStep;
    });
    const theirs: PytorchRow = {
      what: `${row.kind} ${row.model} batch ${row.batch}`,
      imagesPerSecond: median(rates),
      windows: rates,
      cpuMsPerStep: cpu / rates.length,
    };
    torchRows.push(theirs);
    return { ours, theirs };
  };
  if (torch) console.error(`PyTorch CPU (${python}), ${navigator.hardwareConcurrency} threads`);
  for (const model of models) {
    for (const batchSize of batches) {
      const { ours, theirs: torchRow } = await sideBySide(
        { kind: "train", model, batch: batchSize },
        (afterWindow) => trainThroughput(model, { batchSize, windows, afterWindow }),
      );
      if (ours.liveBytesGrowth !== 0) {
        console.error(`  live GPU bytes grew by ${ours.liveBytesGrowth} during ${model} training`);
      }
      const theirs = tfjs
        ? await tfjs.tfjsTrainThroughput(model, { batchSize, windows: 3 })
        : undefined;
      add({
        what: `train ${model} batch ${batchSize}`,
        wgtorch: ours.imagesPerSecond,
        tfjs: theirs?.imagesPerSecond,
        pytorch: torchRow?.imagesPerSecond,
        windows: ours.windows,
        pytorchWindows: torchRow?.windows,
        unit: "img/s",
        cpuMsPerStep: ours.cpuMsPerStep,
        stepsPerWindow: ours.stepsPerWindow,
        dispatchesPerStep: ours.dispatchesPerStep,
        textureCopiesPerStep: ours.textureCopiesPerStep,
        textureCopyKiBPerStep: ours.textureCopyKiBPerStep,
        hostMsPerStep: ours.hostMsPerStep,
      });
      console.error(
        `  ${fmt(ours.dispatchesPerStep, 0)} dispatches, ${
          fmt(ours.textureCopiesPerStep, 0)
        } texture copies (${fmt(ours.textureCopyKiBPerStep, 0)} KiB), ${
          fmt(ours.hostMsPerStep, 2)
        } ms of ` +
          `JavaScript, ${fmt(ours.cpuMsPerStep, 1)} ms of process CPU per step`,
      );
    }
  }
  for (const model of models) {
    const { ours, theirs: torchRow } = await sideBySide(
      { kind: "eval", model, batch: 128 },
      (afterWindow) => evalThroughput(model, { batchSize: 128, windows, afterWindow }),
    );
    const theirs = tfjs
      ? await tfjs.tfjsEvalThroughput(model, { batchSize: 128, windows: 3 })
      : undefined;
    add({
      what: `eval ${model} batch 128`,
      wgtorch: ours.imagesPerSecond,
      tfjs: theirs?.imagesPerSecond,
      pytorch: torchRow?.imagesPerSecond,
      windows: ours.windows,
      pytorchWindows: torchRow?.windows,
      unit: "img/s",
      stepsPerWindow: ours.stepsPerWindow,
    });
  }
  for (const c of KERNEL_CASES) {
    const ours = await kernelGflops(c);
    let theirs: number | undefined;
    if (tfjs) {
      theirs = c.kind === "matmul"
        ? await tfjs.tfjsKernelGflops("matmul", { m: c.dims[0], k: c.dims[1], n: c.dims[2] })
        : await tfjs.tfjsKernelGflops("conv2d", {
          batch: c.dims[0],
          inChannels: c.dims[1],
          height: c.dims[2],
          width: c.dims[2],
          outChannels: c.dims[3],
          kernel: c.dims[4],
        });
    }
    add({ what: c.name, wgtorch: ours, tfjs: theirs, unit: "GFLOP/s" });
  }
  for (const c of OP_CASES) {
    const timing = { windows: 3, targetMs: 300 };
    const ours = await wgtorchOpRate(c, timing);
    const theirs = tfjs ? await tfjsOpRate(await tfjs.tfjsModule(), c, timing) : undefined;
    add({ what: c.name, wgtorch: ours, tfjs: theirs, unit: c.unit });
  }
  for (const c of SEQ_CASES) {
    const ours = 1000 / await wgtorchSeqMs(c);
    const theirs = tfjs ? 1000 / await tfjsSeqMs(await tfjs.tfjsModule(), c) : undefined;
    add({ what: c.name, wgtorch: ours, tfjs: theirs, unit: "steps/s" });
  }
  await torch?.close();
  const pytorch: PytorchReport | null = torchInfo && { ...torchInfo, rows: torchRows };
  if (pytorch) {
    const { torch, threads, blas, openblasCoretype } = pytorch;
    console.error(
      `PyTorch ${torch}, ${threads} threads, BLAS ${blas.join(", ") || "unknown"}` +
        (openblasCoretype ? `, OPENBLAS_CORETYPE=${openblasCoretype}` : ""),
    );
  }
  console.log(`Adapter: ${describeAdapter(gpu.adapter)}`);
  if (driverLine) console.log(`Driver: ${driverLine}`);
  if (pytorch) {
    console.log(
      `PyTorch ${pytorch.torch} on the CPU, ${pytorch.threads} threads, BLAS: ${
        pytorch.blas.map((path) => path.split("/").pop()).join(", ") || "unknown"
      }`,
    );
  }
  console.log(`\n${benchTable(rows)}`);
  if (settings.profile) {
    for (const model of models) {
      for (const batchSize of batches) {
        if (!await profileStep(model, batchSize)) break;
      }
    }
  }
  if (settings.json) {
    const report = {
      date: new Date().toISOString(),
      adapter: gpu.adapter,
      drivers,
      tfjs: tfjsSetup,
      pytorch: pytorch && { ...pytorch, rows: undefined },
      deno: Deno.version.deno,
      rows,
    };
    await writeJsonAtomic(settings.json, report);
    console.error(`wrote ${settings.json}`);
  }
}

if (import.meta.main) await main(Deno.args);

/**
 * Prints each thread's CPU time per step over unprofiled steps (Linux; nothing elsewhere): on a
 * software adapter the driver's threads are the GPU, and they share the cores with JavaScript.
 */
async function printThreadCpu(step: () => void): Promise<void> {
  const steps = Math.max(10, Math.ceil(THREAD_CPU_MS / await stepMs(step)));
  const before = threadTimes();
  if (!before) return;
  const start = performance.now();
  for (let i = 0; i < steps; i++) step();
  await sync();
  const wallMs = (performance.now() - start) / steps;
  const after = threadTimes();
  if (!after) return;
  const shares = threadShares(before, after, steps).filter((share) => share.msPerStep > 0);
  const cores = navigator.hardwareConcurrency;
  const inAll = shares.reduce((sum, share) => sum + share.msPerStep, 0);
  console.log(
    `CPU per step by thread (${steps} steps without profiling, ${wallMs.toFixed(2)} ms each; ` +
      "/proc counts 10 ms ticks):",
  );
  for (const share of shares) {
    const who = share.main ? "the JavaScript thread" : `thread ${share.tid} (${share.name})`;
    console.log(`${share.msPerStep.toFixed(2).padStart(8)} ms  ${who}`);
  }
  console.log(
    `${inAll.toFixed(2).padStart(8)} ms  in all, of ${(cores * wallMs).toFixed(2)} core-ms ` +
      `(${cores} cores x the step)`,
  );
}

/**
 * Prints the GPU time of each kernel of one training step (Adam) of `model` at `batchSize`, with
 * the dispatches, texture copies and JavaScript time per step, then each thread's CPU time per
 * step (`printThreadCpu`); false where timestamps are off.
 */
async function profileStep(model: ModelName, batchSize: number): Promise<boolean> {
  const m = createModel(model);
  const optimizer = new Adam(m.parameters(), { lr: 0.01 });
  const x = randUniform([batchSize, 1, 28, 28]);
  const labels = Int32Array.from({ length: batchSize }, (_, i) => i % 10);
  const y = tensor(labels, [batchSize], { dtype: "i32" });
  const step = () =>
    tidy(() => {
      optimizer.zeroGrad();
      nllLoss(m.forward(x), y).backward();
      optimizer.step();
    });
  try {
    for (let i = 0; i < 3; i++) step();
    await sync();
    if (!startProfiling()) return false;
    const stats0 = streamStats();
    const start = performance.now();
    for (let i = 0; i < PROFILED_STEPS; i++) step();
    const hostMs = (performance.now() - start) / PROFILED_STEPS;
    const stats = streamStats();
    const dispatches = (stats.dispatches - stats0.dispatches) / PROFILED_STEPS;
    const copies = (stats.textureCopies - stats0.textureCopies) / PROFILED_STEPS;
    const copyKiB = (stats.textureCopyBytes - stats0.textureCopyBytes) / PROFILED_STEPS / 1024;
    const times = await stopProfiling();
    console.log(`\nKernel time per ${model} training step, batch ${batchSize} (GPU timestamps):`);
    for (const t of times) {
      console.log(`${(t.milliseconds / PROFILED_STEPS).toFixed(2).padStart(8)} ms  ${t.name}`);
    }
    const total = times.reduce((sum, t) => sum + t.milliseconds, 0) / PROFILED_STEPS;
    console.log(
      `${total.toFixed(2).padStart(8)} ms  in kernels; ${dispatches} dispatches, ${copies} ` +
        `texture copies (${copyKiB.toFixed(0)} KiB, not timed) and ` +
        `${hostMs.toFixed(2)} ms of JavaScript (encoding, with profiling on) per step`,
    );
    await printThreadCpu(step);
    return true;
  } finally {
    optimizer.dispose();
    m.dispose();
    x.dispose();
    y.dispose();
  }
}
