/**
 * 2-D average pooling of NCHW tensors: `avgPool2d` (windows of a given size, stride and padding,
 * as PyTorch's `avg_pool2d`) and `adaptiveAvgPool2d` (windows chosen to give an output size, as
 * PyTorch's `adaptive_avg_pool2d`). Both are one kernel forward and one backward, with shapes
 * and window rules baked in as constants.
 *
 * The forward reads x through its texture: when rows are whole texels (W and OW multiples of
 * 4), an invocation owns 4 adjacent outputs of a row and loads, for each window row, only the
 * few texels those 4 windows cover (their alignment in the texel is a compile-time constant,
 * since 4 outputs advance 4 * SW columns), summing components picked at compile time; otherwise
 * each output sums its window element by element. The backward gathers (WGSL has no float
 * atomics): each input element sums grad / divisor over the windows that contain it, at most
 * a fixed number of them per axis, so the loops have fixed trip counts; when W is a multiple of
 * 4, an invocation owns 4 adjacent elements of a row and loads each window's gradient once for
 * all of them.
 *
 * Window rules, per axis, as PyTorch: a pooling window starts at o * S - P and covers K elements;
 * its divisor is `divisorOverride` if given, else with `countIncludePad` the window's size
 * clipped to the padded input (min(start + K, size + P) - start), else the number of input
 * elements it covers. An adaptive window runs from floor(o * size / out) to
 * ceil((o + 1) * size / out), its divisor its size.
 *
 * @module
 */

import { recordOp } from "../autograd.ts";
import { f32, u32 } from "../gpu/kernel.ts";
import { itemLoop, type LoopPlan, loopPlan } from "../gpu/item_loop.ts";
import { type KernelSpec, runKernel } from "../gpu/program.ts";
import { formatShape, Tensor } from "../tensor.ts";
import { pair2d, poolAxes, type PoolAxis, type Size2d } from "./pool_geometry.ts";

/** Options of `avgPool2d` (PyTorch's `avg_pool2d`, camelCase). */
export interface AvgPoolOptions {
  /** Window height and width: a number for a square window, or [h, w]. */
  kernelSize: Size2d;
  /** Step between windows (number or [h, w]); default `kernelSize`. */
  stride?: Size2d;
  /** Implicit zero border on each side (number or [h, w]); default 0, at most kernelSize / 2. */
  padding?: Size2d;
  /** Output size rounded up instead of down (windows may run past the input); default false. */
  ceilMode?: boolean;
  /** Whether the padding counts in a window's divisor; default true. */
  countIncludePad?: boolean;
  /** A fixed divisor for every window (a nonzero integer) instead of the window's size. */
  divisorOverride?: number;
}

/** One axis of an average pool: a pooling axis, or an adaptive one (kernel etc. unused). */
interface AvgAxis extends PoolAxis {
  adaptive: boolean;
}

/** Everything an average-pool kernel bakes in. */
interface AvgGeometry {
  planes: number;
  rows: AvgAxis;
  cols: AvgAxis;
  countIncludePad: boolean;
  /** 0: none. */
  divisorOverride: number;
}

function key(g: AvgGeometry): string {
  const axis = (a: AvgAxis) =>
    a.adaptive ? `${a.size}a${a.out}` : `${a.size}o${a.out}k${a.kernel}s${a.stride}p${a.padding}`;
  return `${g.planes}_${axis(g.rows)}_${axis(g.cols)}_${g.countIncludePad ? "i" : "e"}` +
    `${g.divisorOverride}`;
}

/** The most windows of the axis that contain any one input position. */
function span(a: AvgAxis): number {
  if (!a.adaptive) return Math.ceil(a.kernel / a.stride);
  let most = 1;
  for (let h = 0; h < a.size; h++) {
    const first = Math.floor(h * a.out / a.size);
    const last = Math.ceil((h + 1) * a.out / a.size) - 1;
    most = Math.max(most, last - first + 1);
  }
  return most;
}

/**
 * WGSL helpers of one axis (`X` is H or W): `startX(o)` and `endX(o)`, the window's bounds
 * before clipping to the input (`endX` clipped to the padded input, as PyTorch's divisor), and
 * `coverX(o)`, the end of the input positions the window holds.
 */
function axisHelpers(x: "H" | "W", a: AvgAxis): string {
  if (a.adaptive) {
    return /* wgsl */ `
const IN_${x}: i32 = ${a.size};
const OUT_${x}: i32 = ${a.out};
fn start${x}(o: i32) -> i32 { return (o * IN_${x}) / OUT_${x}; }
fn end${x}(o: i32) -> i32 { return ((o + 1) * IN_${x} + OUT_${x} - 1) / OUT_${x}; }
fn cover${x}(o: i32) -> i32 { return end${x}(o); }
// The first window that can contain position p; the others that can follow it.
fn first${x}(p: i32) -> i32 { return (p * OUT_${x}) / IN_${x}; }
// The first window whose cover passes position p (the first that contains it).
fn reach${x}(p: i32) -> i32 { return first${x}(p); }
const STEP_${x}: i32 = 1;`;
  }
  return /* wgsl */ `
const IN_${x}: i32 = ${a.size};
const OUT_${x}: i32 = ${a.out};
const K${x}: i32 = ${a.kernel};
const S${x}: i32 = ${a.stride};
const P${x}: i32 = ${a.padding};
fn start${x}(o: i32) -> i32 { return o * S${x} - P${x}; }
fn end${x}(o: i32) -> i32 { return min(start${x}(o) + K${x}, IN_${x} + P${x}); }
fn cover${x}(o: i32) -> i32 { return start${x}(o) + K${x}; }
// The last window that can contain position p; the others precede it.
fn first${x}(p: i32) -> i32 { return min((p + P${x}) / S${x}, OUT_${x} - 1); }
// The first window whose cover passes position p: o * S - P + K > p.
fn reach${x}(p: i32) -> i32 {
  let n = p + P${x} - K${x};
  return select(n / S${x} + 1, 0, n < 0);
}
const STEP_${x}: i32 = -1;`;
}

/** Whether every window of a pooling axis ends inside the padded input (no ceil-mode overhang). */
function fullWindows(a: AvgAxis): boolean {
  return !a.adaptive && (a.out - 1) * a.stride + a.kernel <= a.size + 2 * a.padding;
}

/** WGSL constants and helpers: both axes, and `divisor(oh, ow)` (a constant when it is one). */
function prelude(g: AvgGeometry): string {
  const clipped = /* wgsl */ `
  let h0 = max(startH(oh), 0);
  let h1 = min(endH(oh), IN_H);
  let w0 = max(startW(ow), 0);
  let w1 = min(endW(ow), IN_W);
  return f32((h1 - h0) * (w1 - w0));`;
  const divisor = g.divisorOverride !== 0
    ? `\n  return ${f32(g.divisorOverride)};`
    : g.countIncludePad && fullWindows(g.rows) && fullWindows(g.cols)
    ? `\n  return ${f32(g.rows.kernel * g.cols.kernel)};`
    : g.countIncludePad
    ? /* wgsl */ `
  return f32((endH(oh) - startH(oh)) * (endW(ow) - startW(ow)));`
    : clipped;
  return /* wgsl */ `${axisHelpers("H", g.rows)}${axisHelpers("W", g.cols)}
const PLANE: u32 = ${u32(g.rows.size * g.cols.size)};
const OUT_PLANE: u32 = ${u32(g.rows.out * g.cols.out)};

/** The divisor of window (oh, ow). */
fn divisor(oh: i32, ow: i32) -> f32 {${divisor}
}`;
}

/** Whether the forward reads whole texels per row: 4 outputs of one row per invocation. */
function rowTexels(g: AvgGeometry): boolean {
  return !g.rows.adaptive && !g.cols.adaptive && g.cols.size % 4 === 0 && g.cols.out % 4 === 0;
}

function outVectors(g: AvgGeometry): number {
  return Math.ceil(g.planes * g.rows.out * g.cols.out / 4);
}

function inVectors(g: AvgGeometry): number {
  return Math.ceil(g.planes * g.rows.size * g.cols.size / 4);
}

/**
 * Item t owns the 4 outputs 4q..4q+3 of one output row. Output e's window starts at column
 * 4q * SW - PW + e * SW, so relative to texel q * SW + floor(-PW / 4) of the row its columns
 * are ALIGN + e * SW + j with ALIGN = (-PW) mod 4: which texel and component each column is
 * in is known here, and each window row loads `texels` texels once for all 4 windows.
 */
function rowTexelBody(g: AvgGeometry): string {
  const { rows, cols } = g;
  const texelsPerRow = cols.size / 4;
  const first = Math.floor(-cols.padding / 4);
  const align = ((-cols.padding % 4) + 4) % 4;
  const texels = Math.floor((align + 3 * cols.stride + cols.kernel - 1) / 4) + 1;
  const quads = cols.out / 4;
  const loads: string[] = [];
  for (let k = 0; k < texels; k++) {
    // Texel index within the row: q * SW + first + k, for q in [0, quads).
    const low = first + k, high = (quads - 1) * cols.stride + first + k;
    const index = `i32(q) * SW + ${first + k}`;
    const guard = [low < 0 ? "c >= 0" : "", high >= texelsPerRow ? `c < ${texelsPerRow}` : ""]
      .filter((c) => c).join(" && ");
    loads.push(
      guard
        ? /* wgsl */ `
          var v${k} = vec4<f32>(0.0);
          { let c = ${index}; if (${guard}) { v${k} = xVec4(row + u32(c)); } }`
        : /* wgsl */ `
          let v${k} = xVec4(row + u32(${index}));`,
    );
  }
  const sums = [0, 1, 2, 3].map((e) => {
    const terms = [];
    for (let j = 0; j < cols.kernel; j++) {
      const column = align + e * cols.stride + j;
      terms.push(`v${column >> 2}[${column & 3}]`);
    }
    return `          acc[${e}] += ${terms.join(" + ")};`;
  }).join("\n");
  const rowsInside = rows.padding === 0 &&
    (rows.out - 1) * rows.stride + rows.kernel <= rows.size;
  return /* wgsl */ `
      let q = t % ${u32(quads)};
      let planeRow = t / ${u32(quads)};
      let plane = planeRow / u32(OUT_H);
      let oh = i32(planeRow % u32(OUT_H));
      var acc = vec4<f32>(0.0);
      for (var i = 0; i < KH; i++) {
        let h = startH(oh) + i;
        ${rowsInside ? "" : "if (h < 0 || h >= IN_H) { continue; }"}
        let row = (plane * u32(IN_H) + u32(h)) * ${u32(texelsPerRow)};${loads.join("")}
${sums}
      }
      let ow = 4 * i32(q);
      out[t] = acc / vec4<f32>(divisor(oh, ow), divisor(oh, ow + 1), divisor(oh, ow + 2),
        divisor(oh, ow + 3));`;
}

/** Item t owns outputs 4t..4t+3 (any geometry); each sums its window element by element. */
const windowBody = /* wgsl */ `
      var result = vec4<f32>(0.0);
      for (var e = 0u; e < 4u; e++) {
        let o = 4u * t + e;
        let plane = o / OUT_PLANE;
        let oh = i32(o / u32(OUT_W) % u32(OUT_H));
        let ow = i32(o % u32(OUT_W));
        let h0 = max(startH(oh), 0);
        let h1 = min(endH(oh), IN_H);
        let w0 = max(startW(ow), 0);
        let w1 = min(endW(ow), IN_W);
        let planeBase = plane * PLANE;
        var total = 0.0;
        for (var h = h0; h < h1; h++) {
          for (var w = w0; w < w1; w++) {
            total += xAt(planeBase + u32(h * IN_W + w));
          }
        }
        result[e] = total / divisor(oh, ow);
      }
      out[t] = result;`;

/** The most windows of a column axis that overlap 4 columns 4r..4r+3 (consecutive windows). */
function quadSpan(a: AvgAxis): number {
  let most = 1;
  for (let w = 0; w < a.size; w += 4) {
    let count = 0;
    for (let o = 0; o < a.out; o++) {
      const start = a.adaptive ? Math.floor(o * a.size / a.out) : o * a.stride - a.padding;
      const cover = a.adaptive ? Math.ceil((o + 1) * a.size / a.out) : start + a.kernel;
      if (start <= w + 3 && cover > w) count++;
    }
    most = Math.max(most, count);
  }
  return most;
}

/**
 * Rows of whole vectors (W a multiple of 4): item t owns input elements 4t..4t+3, one row's
 * columns w..w+3. The windows holding any of them are, per window row, a run of consecutive
 * columns from `reachW(w)`: each window's grad / divisor is loaded once and added to the
 * elements it covers.
 */
function rowGatherBody(g: AvgGeometry): string {
  return /* wgsl */ `
      let plane = (4u * t) / PLANE;
      let at = i32((4u * t) % PLANE);
      let h = at / IN_W;
      let w = at % IN_W;
      let columns = vec4<i32>(w) + vec4<i32>(0, 1, 2, 3);
      let owFirst = reachW(w);
      var result = vec4<f32>(0.0);
      for (var a = 0; a < ${span(g.rows)}; a++) {
        let oh = firstH(h) + STEP_H * a;
        if (oh < 0 || oh >= OUT_H || startH(oh) > h || coverH(oh) <= h) { continue; }
        for (var b = 0; b < ${quadSpan(g.cols)}; b++) {
          let ow = owFirst + b;
          if (ow >= OUT_W || startW(ow) > w + 3) { continue; }
          let value = gradAt(plane * OUT_PLANE + u32(oh * OUT_W + ow)) / divisor(oh, ow);
          let inside = (columns >= vec4<i32>(startW(ow))) & (columns < vec4<i32>(coverW(ow)));
          result += select(vec4<f32>(0.0), vec4<f32>(value), inside);
        }
      }
      dx[t] = result;`;
}

/** Item t owns input elements 4t..4t+3; each gathers grad / divisor of the windows holding it. */
function gatherBody(g: AvgGeometry): string {
  if (g.cols.size % 4 === 0) return rowGatherBody(g);
  return /* wgsl */ `
      var result = vec4<f32>(0.0);
      for (var e = 0u; e < 4u; e++) {
        let i = 4u * t + e;
        let plane = i / PLANE;
        let at = i32(i % PLANE);
        let h = at / IN_W;
        let w = at % IN_W;
        var total = 0.0;
        for (var a = 0; a < ${span(g.rows)}; a++) {
          let oh = firstH(h) + STEP_H * a;
          if (oh < 0 || oh >= OUT_H || startH(oh) > h || coverH(oh) <= h) { continue; }
          for (var b = 0; b < ${span(g.cols)}; b++) {
            let ow = firstW(w) + STEP_W * b;
            if (ow < 0 || ow >= OUT_W || startW(ow) > w || coverW(ow) <= w) { continue; }
            let o = plane * OUT_PLANE + u32(oh * OUT_W + ow);
            total += gradAt(o) / divisor(oh, ow);
          }
        }
        result[e] = total;
      }
      dx[t] = result;`;
}

/** The forward: rows of whole texels (`rowTexels`), else window by window. */
const AVG_POOL: KernelSpec<AvgGeometry, LoopPlan> = {
  name: "avg_pool",
  key: (g) => `${rowTexels(g) ? "rows_" : ""}${key(g)}`,
  bindings: () => [
    { name: "x", role: "input" },
    { name: "out", role: "write", type: "vec4<f32>" },
  ],
  plan: (g, policy) => loopPlan(outVectors(g), policy),
  prelude,
  body: (g, { plan }) => itemLoop(outVectors(g), plan, rowTexels(g) ? rowTexelBody(g) : windowBody),
};

/** The backward: dx by gathering, four elements per item. */
const AVG_POOL_BACKWARD: KernelSpec<AvgGeometry, LoopPlan> = {
  name: "avg_pool_backward",
  key: (g) => `${g.cols.size % 4 === 0 ? "rows_" : ""}${key(g)}`,
  bindings: () => [
    { name: "grad", role: "input" },
    { name: "dx", role: "write", type: "vec4<f32>" },
  ],
  plan: (g, policy) => loopPlan(inVectors(g), policy),
  prelude,
  body: (g, { plan }) => itemLoop(inVectors(g), plan, gatherBody(g)),
};

/** Runs the forward and records the backward. */
function avgPool(name: string, x: Tensor, g: AvgGeometry): Tensor {
  const out = Tensor.empty([x.shape[0], x.shape[1], g.rows.out, g.cols.out]);
  runKernel(AVG_POOL, g, { x, out });
  const shape = x.shape;
  return recordOp(name, out, [x], (grad) => {
    const dx = Tensor.empty(shape);
    runKernel(AVG_POOL_BACKWARD, g, { grad, dx });
    return [dx];
  });
}

/**
 * Average pooling over kh × kw windows of x [N, C, H, W], as PyTorch's `avg_pool2d`: output
 * [N, C, OH, OW] with OH = floor((H + 2 ph - kh) / sh) + 1 (the ceiling with `ceilMode`); the
 * border counts as zeros. Each window's sum is divided by `divisorOverride` if given, else by its
 * size clipped to the padded input (`countIncludePad`, the default) or by the number of input
 * elements it covers. Differentiable.
 *
 * @example 3×3 windows, stride 2, padding 1
 * ```ts ignore
 * const y = avgPool2d(x, { kernelSize: 3, stride: 2, padding: 1 }); // [N, C, 16, 16] from 32x32
 * ```
 */
export function avgPool2d(x: Tensor, options: AvgPoolOptions): Tensor {
  const [rows, cols] = poolAxes("avgPool2d", x, { ...options, dilation: 1 });
  const { countIncludePad = true, divisorOverride } = options;
  if (
    divisorOverride !== undefined &&
    (!Number.isInteger(divisorOverride) || divisorOverride === 0)
  ) {
    throw new Error(
      `avgPool2d: divisorOverride must be a nonzero integer, got ${divisorOverride}`,
    );
  }
  return avgPool("avgPool2d", x, {
    planes: x.shape[0] * x.shape[1],
    rows: { ...rows, adaptive: false },
    cols: { ...cols, adaptive: false },
    countIncludePad: !!countIncludePad,
    divisorOverride: divisorOverride ?? 0,
  });
}

/**
 * Adaptive average pooling of x [N, C, H, W] to [N, C, oh, ow] (`outputSize`: a number for
 * both, or [oh, ow]), as PyTorch's `adaptive_avg_pool2d`: output row i averages input rows
 * floor(i H / oh) to ceil((i + 1) H / oh) - 1, and likewise for columns, so windows may overlap
 * when the sizes do not divide. Differentiable.
 */
export function adaptiveAvgPool2d(x: Tensor, outputSize: Size2d): Tensor {
  if (x.rank !== 4) {
    throw new Error(
      `adaptiveAvgPool2d: needs x of shape [N, C, H, W] (rank 4), got ${formatShape(x.shape)} ` +
        `(rank ${x.rank})`,
    );
  }
  if (x.dtype !== "f32") {
    throw new Error(`adaptiveAvgPool2d: needs an f32 tensor, got ${x.dtype}`);
  }
  if (x.size === 0) {
    throw new Error(
      `adaptiveAvgPool2d: empty tensors are not supported (input ${formatShape(x.shape)})`,
    );
  }
  const out = pair2d("adaptiveAvgPool2d", "outputSize", outputSize, 1);
  const axis = (a: number): AvgAxis => ({
    size: x.shape[2 + a],
    out: out[a],
    kernel: 1,
    stride: 1,
    padding: 0,
    dilation: 1,
    adaptive: true,
  });
  return avgPool("adaptiveAvgPool2d", x, {
    planes: x.shape[0] * x.shape[1],
    rows: axis(0),
    cols: axis(1),
    countIncludePad: true,
    divisorOverride: 0,
  });
}
