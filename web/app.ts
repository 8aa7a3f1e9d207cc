/// <reference no-default-lib="true" />
/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/// <reference lib="esnext" />
/**
 * The browser training page: trains one of the study's models (CNN-BN by default) on
 * FashionMNIST with WebGPU, plots loss and accuracy, shows test images with their predictions,
 * and downloads the trained weights as safetensors (loadable by `cli.ts evaluate` and PyTorch).
 *
 * Bundled by `deno task web` (web/serve.ts), which also serves the IDX files. It imports the
 * library only through its browser-safe entry points (`mod.ts`, `models/mod.ts`); the `./data`
 * entry point reads files with Node's modules, so the tiny IDX parser lives here.
 *
 * Query options: `model` (mlp|cnn|cnn-bn), `batch` (64), `epochs` (2), `steps` (stop after this
 * many steps: the quick mode), `lr` (0.01, Adam), `seed` (0), `test` (test images evaluated,
 * 10000), `autostart` (1: start at once).
 *
 * @module
 */

import {
  Adam,
  correctCount,
  describeAdapter,
  encodeSafetensors,
  init,
  nllLoss,
  noGrad,
  Rng,
  type Tensor,
  tensor,
  tidy,
} from "../mod.ts";
import { type Classifier, createModel, isModelName, type ModelName } from "../models/mod.ts";
import { CLASS_NAMES } from "../data/classes.ts";
import { gunzip, parseImages, parseLabels } from "../data/idx.ts";

const PIXELS = 784;
const GRID_IMAGES = 24;
const EVAL_BATCH = 500;

/** One set of images and labels (pixels 0..255). */
interface ImageSet {
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
}

/** A point of the plot: where in training (epochs) and the values. */
interface PlotPoint {
  epoch: number;
  loss: number;
  accuracy: number;
}

/** What the page has done so far; `globalThis.webState` for tests and curious users. */
interface WebState {
  phase: "loading" | "ready" | "training" | "stopped" | "done" | "error";
  adapter: string;
  model: ModelName;
  batch: number;
  steps: number;
  imagesPerSecond: number;
  trainLoss: number;
  trainAccuracy: number;
  testAccuracy: number | null;
  testLoss: number | null;
  error: string | null;
}

const query = new URLSearchParams(location.search);
const number = (name: string, fallback: number) => {
  const value = Number(query.get(name) ?? fallback);
  return Number.isFinite(value) && value > 0 ? value : fallback;
};
const modelName = query.get("model") ?? "cnn-bn";
const settings = {
  model: (isModelName(modelName) ? modelName : "cnn-bn") as ModelName,
  batch: Math.floor(number("batch", 64)),
  epochs: number("epochs", 2),
  steps: query.has("steps") ? Math.floor(number("steps", 200)) : Infinity,
  lr: number("lr", 0.01),
  seed: Math.floor(number("seed", 0)),
  testLimit: Math.floor(number("test", 10_000)),
  autostart: query.get("autostart") === "1",
};

const state: WebState = {
  phase: "loading",
  adapter: "",
  model: settings.model,
  batch: settings.batch,
  steps: 0,
  imagesPerSecond: 0,
  trainLoss: NaN,
  trainAccuracy: NaN,
  testAccuracy: null,
  testLoss: null,
  error: null,
};
(globalThis as Record<string, unknown>).webState = state;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

function show(): void {
  $("phase").textContent = state.phase;
  $("steps").textContent = String(state.steps);
  $("speed").textContent = state.imagesPerSecond ? state.imagesPerSecond.toFixed(0) : "–";
  $("train-loss").textContent = Number.isFinite(state.trainLoss) ? state.trainLoss.toFixed(4) : "–";
  $("train-acc").textContent = Number.isFinite(state.trainAccuracy)
    ? (100 * state.trainAccuracy).toFixed(1) + "%"
    : "–";
  $("test-acc").textContent = state.testAccuracy === null
    ? "–"
    : (100 * state.testAccuracy).toFixed(2) + "%";
  $("error").textContent = state.error ?? "";
  document.body.dataset.phase = state.phase;
  $<HTMLButtonElement>("start").disabled = state.phase !== "ready" && state.phase !== "stopped";
  $<HTMLButtonElement>("stop").disabled = state.phase !== "training";
  $<HTMLButtonElement>("download").disabled = model === null || state.phase === "training" ||
    state.steps === 0;
}

// ---- data ---------------------------------------------------------------------------------

/** Fetches a gzipped IDX file and inflates it. */
async function fetchIdx(name: string): Promise<Uint8Array> {
  const response = await fetch(`data/${name}`);
  if (!response.ok) {
    throw new Error(`fetching data/${name}: ${response.status} ${await response.text()}`);
  }
  return await gunzip(new Uint8Array(await response.arrayBuffer()), `data/${name}`);
}

async function loadSet(prefix: "train" | "t10k"): Promise<ImageSet> {
  const images = `${prefix}-images-idx3-ubyte.gz`, labels = `${prefix}-labels-idx1-ubyte.gz`;
  const [imageBytes, labelBytes] = await Promise.all([fetchIdx(images), fetchIdx(labels)]);
  const imageSet = parseImages(imageBytes, images, { rows: 28, cols: 28 });
  const labelSet = parseLabels(labelBytes, labels, { count: imageSet.count, classes: 10 });
  return { images: imageSet.pixels, labels: labelSet.labels, count: imageSet.count };
}

/** Images `indices` as a [N, 1, 28, 28] tensor scaled to [0, 1] and their labels (i32). */
function batchOf(set: ImageSet, indices: ArrayLike<number>): { x: Tensor; y: Tensor } {
  const n = indices.length;
  const pixels = new Float32Array(n * PIXELS);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const offset = indices[i] * PIXELS;
    for (let p = 0; p < PIXELS; p++) pixels[i * PIXELS + p] = set.images[offset + p] / 255;
    labels[i] = set.labels[indices[i]];
  }
  return {
    x: tensor(pixels, [n, 1, 28, 28]),
    y: tensor(labels, [n], { dtype: "i32" }),
  };
}

// ---- plot and grid -------------------------------------------------------------------------

const trainPoints: PlotPoint[] = [];
const testPoints: PlotPoint[] = [];

/** Loss (left axis) and accuracy (right axis, 0..1) against epochs, on a canvas. */
function drawPlot(): void {
  const canvas = $<HTMLCanvasElement>("plot");
  const ctx = canvas.getContext("2d")!;
  const { width, height } = canvas;
  const left = 48, right = 48, top = 16, bottom = 32;
  ctx.clearRect(0, 0, width, height);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, width, height);
  const all = [...trainPoints, ...testPoints];
  const maxEpoch = Math.max(
    all.reduce((m, p) => Math.max(m, p.epoch), 0),
    Number.isFinite(settings.steps) ? settings.steps * settings.batch / 60_000 : settings.epochs,
    1e-3,
  );
  const maxLoss = Math.max(all.reduce((m, p) => Math.max(m, p.loss), 0), 0.5);
  const x = (epoch: number) => left + (width - left - right) * epoch / maxEpoch;
  const yLoss = (loss: number) => top + (height - top - bottom) * (1 - loss / maxLoss);
  const yAcc = (acc: number) => top + (height - top - bottom) * (1 - acc);
  ctx.strokeStyle = "#ccc";
  ctx.lineWidth = 1;
  ctx.font = "11px sans-serif";
  ctx.fillStyle = "#444";
  for (let k = 0; k <= 4; k++) {
    const y = top + (height - top - bottom) * k / 4;
    ctx.beginPath();
    ctx.moveTo(left, y);
    ctx.lineTo(width - right, y);
    ctx.stroke();
    ctx.textAlign = "right";
    ctx.fillText((maxLoss * (1 - k / 4)).toFixed(2), left - 4, y + 4);
    ctx.textAlign = "left";
    ctx.fillText(`${100 - 25 * k}%`, width - right + 4, y + 4);
  }
  ctx.textAlign = "center";
  for (let k = 0; k <= 4; k++) {
    const digits = maxEpoch >= 4 ? 0 : maxEpoch >= 0.4 ? 1 : maxEpoch >= 0.04 ? 2 : 3;
    ctx.fillText((maxEpoch * k / 4).toFixed(digits), x(maxEpoch * k / 4), height - bottom + 14);
  }
  ctx.fillText("epochs", width / 2, height - 4);
  const line = (points: PlotPoint[], y: (p: PlotPoint) => number, colour: string) => {
    ctx.strokeStyle = colour;
    ctx.lineWidth = 2;
    ctx.beginPath();
    points.forEach((p, i) => i ? ctx.lineTo(x(p.epoch), y(p)) : ctx.moveTo(x(p.epoch), y(p)));
    ctx.stroke();
  };
  const dots = (points: PlotPoint[], y: (p: PlotPoint) => number, colour: string) => {
    ctx.fillStyle = colour;
    for (const p of points) {
      ctx.beginPath();
      ctx.arc(x(p.epoch), y(p), 4, 0, 2 * Math.PI);
      ctx.fill();
    }
  };
  line(trainPoints, (p) => yLoss(p.loss), "#d62728");
  line(trainPoints, (p) => yAcc(p.accuracy), "#1f77b4");
  dots(testPoints, (p) => yLoss(p.loss), "#ff7f0e");
  dots(testPoints, (p) => yAcc(p.accuracy), "#2ca02c");
}

/** The first test images with predicted and true labels; wrong ones marked. */
function drawGrid(set: ImageSet, predictions: ArrayLike<number>): void {
  const grid = $("grid");
  grid.replaceChildren();
  const count = Math.min(GRID_IMAGES, predictions.length);
  for (let i = 0; i < count; i++) {
    const cell = document.createElement("figure");
    const wrong = predictions[i] !== set.labels[i];
    cell.className = wrong ? "wrong" : "right";
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = 28;
    const image = new ImageData(28, 28);
    for (let p = 0; p < PIXELS; p++) {
      const v = 255 - set.images[i * PIXELS + p];
      image.data.set([v, v, v, 255], 4 * p);
    }
    canvas.getContext("2d")!.putImageData(image, 0, 0);
    const caption = document.createElement("figcaption");
    caption.innerHTML = `<b>${CLASS_NAMES[predictions[i]]}</b><br>${
      wrong ? `✗ true: ${CLASS_NAMES[set.labels[i]]}` : "✓"
    }`;
    cell.append(canvas, caption);
    grid.append(cell);
  }
}

// ---- training ------------------------------------------------------------------------------

let train: ImageSet | null = null;
let test: ImageSet | null = null;
let model: Classifier | null = null;
let optimizer: Adam | null = null;
let stopRequested = false;

/** Test loss, accuracy and the grid's predictions (eval mode, no gradients). */
async function evaluateTest(): Promise<void> {
  if (!model || !test) return;
  model.eval();
  const count = Math.min(settings.testLimit, test.count);
  let lossSum = 0, correct = 0;
  let firstPredictions: Int32Array | null = null;
  for (let start = 0; start < count; start += EVAL_BATCH) {
    const indices = Array.from(
      { length: Math.min(EVAL_BATCH, count - start) },
      (_, i) => start + i,
    );
    const { x, y } = batchOf(test, indices);
    const [loss, hits, scores] = noGrad(() =>
      tidy(() => {
        const out = model!.forward(x);
        const loss = nllLoss(out, y);
        return [loss, correctCount(out, y), start === 0 ? out : null] as const;
      })
    );
    lossSum += (await loss.item()) * indices.length;
    correct += await hits.item();
    if (scores) {
      const values = await scores.toArray();
      firstPredictions = Int32Array.from({ length: indices.length }, (_, i) => {
        let best = 0;
        for (let c = 1; c < 10; c++) if (values[i * 10 + c] > values[i * 10 + best]) best = c;
        return best;
      });
      scores.dispose();
    }
    for (const t of [loss, hits, x, y]) t.dispose();
  }
  model.train();
  state.testLoss = lossSum / count;
  state.testAccuracy = correct / count;
  testPoints.push({
    epoch: state.steps * settings.batch / train!.count,
    loss: state.testLoss,
    accuracy: state.testAccuracy,
  });
  if (firstPredictions) drawGrid(test, firstPredictions);
  drawPlot();
  show();
}

async function trainLoop(): Promise<void> {
  if (!train || !model || !optimizer) return;
  state.phase = "training";
  stopRequested = false;
  show();
  const rng = new Rng(settings.seed + 1);
  const stepsPerEpoch = Math.floor(train.count / settings.batch);
  const totalSteps = Math.min(settings.steps, Math.ceil(settings.epochs * stepsPerEpoch));
  let order = rng.permutation(train.count);
  let lossSum = 0, hitSum = 0, seen = 0, timedImages = 0, timedMs = 0;
  let windowStart = performance.now();
  const pending: [Tensor, Tensor, number][] = [];
  while (state.steps < totalSteps && !stopRequested) {
    const inEpoch = state.steps % stepsPerEpoch;
    if (inEpoch === 0 && state.steps > 0) order = rng.permutation(train.count);
    const indices = order.subarray(inEpoch * settings.batch, (inEpoch + 1) * settings.batch);
    const { x, y } = batchOf(train, indices);
    const [loss, hits] = tidy(() => {
      optimizer!.zeroGrad();
      const out = model!.forward(x);
      const loss = nllLoss(out, y);
      loss.backward();
      optimizer!.step();
      return [loss, noGrad(() => correctCount(out, y))] as const;
    });
    x.dispose();
    y.dispose();
    pending.push([loss, hits, indices.length]);
    state.steps++;
    // Read the losses back every 10 steps (a readback waits for the GPU: ~10 ms or more).
    if (state.steps % 10 === 0 || state.steps === totalSteps) {
      const values = await Promise.all(pending.map(([l, h]) => Promise.all([l.item(), h.item()])));
      for (const [k, [lossValue, hitValue]] of values.entries()) {
        lossSum += lossValue * pending[k][2];
        hitSum += hitValue;
        seen += pending[k][2];
      }
      for (const [l, h] of pending) {
        l.dispose();
        h.dispose();
      }
      pending.length = 0;
      // The first 10 steps compile the kernels (seconds in a browser): not counted in img/s.
      if (state.steps > 10) {
        timedMs += performance.now() - windowStart;
        timedImages += seen;
        state.imagesPerSecond = 1000 * timedImages / timedMs;
      }
      windowStart = performance.now();
      state.trainLoss = lossSum / seen;
      state.trainAccuracy = hitSum / seen;
      trainPoints.push({
        epoch: state.steps * settings.batch / train.count,
        loss: state.trainLoss,
        accuracy: state.trainAccuracy,
      });
      lossSum = hitSum = seen = 0;
      drawPlot();
      show();
    }
    if (state.steps % stepsPerEpoch === 0) await evaluateTest();
  }
  for (const [l, h] of pending) {
    l.dispose();
    h.dispose();
  }
  if (state.steps % stepsPerEpoch !== 0 || stopRequested) await evaluateTest();
  state.phase = state.steps >= totalSteps ? "done" : "stopped";
  show();
}

/** The model's weights as safetensors with the metadata `cli.ts evaluate` reads. */
async function weightsFile(): Promise<Uint8Array> {
  const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [name, value] of Object.entries(model!.stateDict())) {
    tensors[name] = { shape: [...value.shape], data: await value.toArray() };
  }
  return encodeSafetensors(tensors, {
    "wgtorch.model": JSON.stringify(model!.config),
    "wgtorch.web": JSON.stringify({ steps: state.steps, batch: settings.batch, lr: settings.lr }),
  });
}

async function download(): Promise<void> {
  const bytes = await weightsFile();
  const url = URL.createObjectURL(new Blob([bytes as BlobPart]));
  const a = document.createElement("a");
  a.href = url;
  a.download = `${settings.model}-${state.steps}steps.safetensors`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function fail(error: unknown): void {
  state.phase = "error";
  state.error = error instanceof Error ? error.message : String(error);
  console.error(error);
  show();
}

async function main(): Promise<void> {
  $("settings").textContent = `${settings.model}, batch ${settings.batch}, Adam lr ${settings.lr}` +
    (Number.isFinite(settings.steps)
      ? `, ${settings.steps} steps`
      : `, ${settings.epochs} epochs`) +
    `, seed ${settings.seed}`;
  $("start").addEventListener("click", () => trainLoop().catch(fail));
  $("stop").addEventListener("click", () => (stopRequested = true));
  $("download").addEventListener("click", () => download().catch(fail));
  show();
  const context = await init();
  state.adapter = describeAdapter(context.adapter);
  $("adapter").textContent = state.adapter;
  $("phase").textContent = "loading FashionMNIST";
  [train, test] = await Promise.all([loadSet("train"), loadSet("t10k")]);
  model = createModel(settings.model, { rng: new Rng(settings.seed) });
  optimizer = new Adam(model.parameters(), { lr: settings.lr });
  state.phase = "ready";
  drawPlot();
  show();
  if (settings.autostart) await trainLoop();
}

/** For tests: the weights as safetensors bytes, base64. */
(globalThis as Record<string, unknown>).webWeightsBase64 = async () => {
  const bytes = await weightsFile();
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
};

main().catch(fail);
