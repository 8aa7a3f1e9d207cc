/**
 * 2-D max pooling of NCHW tensors, optionally fused with a ReLU of its output, with each
 * window's argmax saved (privately) for the backward pass.
 *
 * Inputs are read through textures and outputs written with vec4 stores (see the cost table in
 * docs/DESIGN.md). The common 2×2, stride-2 pooling of planes whose width is a multiple of 8
 * has its own kernels: an invocation owns 4 adjacent windows (4 texel loads, one vec4 store of
 * the outputs) and saves their 4 argmaxes packed into one float; its backward writes the 2 × 8
 * block of dx those windows cover with 4 vec4 stores. Other geometries without dilation whose
 * input and output rows are whole vectors (W and OW multiples of 4) take a row kernel: an
 * invocation owns 4 adjacent outputs of a row and loads each window row's texels once for all 4
 * (3 texel loads per window row for 3×3, stride 2, padding 1, against 12 element reads).
 * Rectangular windows, strides, padding, dilation and ceil mode follow PyTorch's `max_pool2d`
 * (geometry in `pool_geometry.ts`). All but the packed kernels save the argmax index
 * h * W + w inside the plane (as an f32, exact below 2^24) and the backward gathers rather than
 * scatters (WGSL has no float atomics): each input element sums the gradients of the windows
 * that contain it and chose it, so overlapping windows (stride < kernel) add up without races
 * (without dilation and with W a multiple of 4, 4 adjacent elements of a row per invocation,
 * each candidate window's argmax and gradient loaded once for all 4).
 *
 * Kernels run narrow workgroups (under the software policy 8 invocations, one SIMD vector on
 * llvmpipe), each looping over a run of work: this measured faster than one item per invocation
 * in workgroups of 64.
 *
 * @module
 */

import { recordOp } from "../autograd.ts";
import { u32 } from "../gpu/kernel.ts";
import { itemLoop, type LoopPlan, loopPlan } from "../gpu/item_loop.ts";
import { type KernelSpec, runKernel } from "../gpu/program.ts";
import { Tensor } from "../tensor.ts";
import { cast } from "./cast.ts";
import { isNan, isNan4, relu1, relu4 } from "./nan_wgsl.ts";
import { poolAxes, type PoolAxis } from "./pool_geometry.ts";
import { PACKED_ARGMAX, quadCorners, quadGradient, quadMax, spreadGradient } from "./pool_quads.ts";

/** Options of `maxPool2d` (PyTorch's `max_pool2d`, camelCase). */
export interface MaxPoolOptions {
  /** Window height and width: a number for a square window, or [h, w]. */
  kernelSize: number | readonly [number, number];
  /** Step between windows (number or [h, w]); default `kernelSize`. */
  stride?: number | readonly [number, number];
  /** Implicit -inf border on each side (number or [h, w]); default 0, at most kernelSize / 2. */
  padding?: number | readonly [number, number];
  /** Spacing between the elements of a window (number or [h, w]); default 1. */
  dilation?: number | readonly [number, number];
  /** Output size rounded up instead of down (windows may run past the input); default false. */
  ceilMode?: boolean;
  /**
   * Returns relu(maxPool(x)), computed in the same kernel; equal to maxPool(relu(x)) (ReLU is
   * monotonic), gradient included: a window whose output is 0 passes none (a NaN output passes
   * its gradient, as PyTorch's relu). Default false.
   */
  relu?: boolean;
}

/** Everything a max-pool kernel bakes in. */
interface PoolGeometry {
  planes: number;
  rows: PoolAxis;
  cols: PoolAxis;
  relu: boolean;
  /** Saves one argmax h * W + w per window (never packed), for `maxPool2dWithIndices`. */
  windowIndices: boolean;
}

function geometry(
  op: string,
  x: Tensor,
  options: MaxPoolOptions,
  windowIndices = false,
): PoolGeometry {
  const [rows, cols] = poolAxes(op, x, options);
  return { planes: x.shape[0] * x.shape[1], rows, cols, relu: !!options.relu, windowIndices };
}

/** Whether some window of the axis reaches outside the input (padding, or ceil mode). */
function overhangs(a: PoolAxis): boolean {
  return a.padding > 0 || (a.out - 1) * a.stride + (a.kernel - 1) * a.dilation >= a.size;
}

/** WGSL constants shared by the kernels. */
function constants(g: PoolGeometry): string {
  const { rows, cols } = g;
  return /* wgsl */ `
const H: i32 = ${rows.size};
const W: i32 = ${cols.size};
const OH: u32 = ${u32(rows.out)};
const OW: u32 = ${u32(cols.out)};
const KH: i32 = ${rows.kernel};
const KW: i32 = ${cols.kernel};
const SH: i32 = ${rows.stride};
const SW: i32 = ${cols.stride};
const PH: i32 = ${rows.padding};
const PW: i32 = ${cols.padding};
const DH: i32 = ${rows.dilation};
const DW: i32 = ${cols.dilation};`;
}

/** 2×2 windows, stride 2, whole texel pairs per row: the packed kernels. */
function pairs(g: PoolGeometry): boolean {
  if (g.windowIndices) return false;
  const square = [g.rows, g.cols].every((a) =>
    a.kernel === 2 && a.stride === 2 && a.padding === 0 && a.dilation === 1 &&
    a.out * 2 === a.size
  );
  return square && g.cols.size % 8 === 0;
}

/** Output vectors: the forward's items, and the packed backward's. */
function outVectors(g: PoolGeometry): number {
  return Math.ceil(g.planes * g.rows.out * g.cols.out / 4);
}

/** Items of the backward: quads (packed), else vectors of dx. */
function backwardItems(g: PoolGeometry): number {
  return pairs(g) ? outVectors(g) : Math.ceil(g.planes * g.rows.size * g.cols.size / 4);
}

function key(g: PoolGeometry): string {
  const axis = (a: PoolAxis) =>
    `${a.size}o${a.out}k${a.kernel}s${a.stride}p${a.padding}d${a.dilation}`;
  return `${g.planes}_${axis(g.rows)}_${axis(g.cols)}` + (g.relu ? "_relu" : "") +
    (g.windowIndices ? "_indices" : "");
}

/**
 * Max pooling over kh × kw windows of x [N, C, H, W], as PyTorch's `max_pool2d`: output
 * [N, C, OH, OW] with OH = floor((H + 2 ph - dh (kh - 1) - 1) / sh) + 1 (the ceiling with
 * `ceilMode`); padding counts as -inf. Ties go to the first maximum in row-major window order;
 * a window holding NaN gives NaN, its argmax the last NaN (as PyTorch). With `relu`, the output
 * is relu(maxPool(x)).
 * Differentiable (the gradient goes to each window's argmax; with `relu`, only from windows
 * whose output is positive).
 *
 * @example 3×3 windows, stride 2, padding 1
 * ```ts ignore
 * const y = maxPool2d(x, { kernelSize: 3, stride: 2, padding: 1 }); // [N, C, 16, 16] from 32x32
 * ```
 */
export function maxPool2d(x: Tensor, options: MaxPoolOptions): Tensor {
  return pool("maxPool2d", geometry("maxPool2d", x, options), x).out;
}

/**
 * `maxPool2d` that also returns where each maximum came from, as PyTorch's
 * `max_pool2d(..., return_indices=True)`: `[output, indices]`, indices (i32, PyTorch's are
 * int64) of the output's shape holding each window's argmax as h * W + w inside its plane (the
 * first maximum in window order; a window holding NaN, its last NaN). `maxUnpool2d` takes them.
 * The output is differentiable, the indices are not. No `relu` option (an all-negative window
 * has no position to give).
 *
 * @example Pool, then put the maxima back where they were
 * ```ts
 * import { init, maxPool2dWithIndices, maxUnpool2d, tensor } from "@wgtorch/wgtorch";
 *
 * await init();
 * const x = tensor([1, 5, 2, 0, 3, 4, 8, 7], [1, 1, 2, 4]);
 * const [y, indices] = maxPool2dWithIndices(x, { kernelSize: 2 });
 * console.log(await y.toArray(), await indices.toTypedArray()); // [5, 8] Int32Array [1, 6]
 * console.log(await maxUnpool2d(y, indices, { kernelSize: 2 }).toArray()); // [0, 5, 0, 0, 0, 0, 8, 0]
 * ```
 */
export function maxPool2dWithIndices(
  x: Tensor,
  options: Omit<MaxPoolOptions, "relu">,
): [Tensor, Tensor] {
  if ((options as MaxPoolOptions).relu) {
    throw new Error("maxPool2dWithIndices: relu is not supported (use maxPool2d with relu)");
  }
  const g = geometry("maxPool2dWithIndices", x, options, true);
  const { out, positions } = pool("maxPool2dWithIndices", g, x);
  return [out, positions!];
}

/**
 * Runs the forward kernel; the output records the backward, which holds the argmaxes (freed at
 * once without a graph). With `windowIndices`, `positions` is an i32 copy of them.
 */
function pool(op: string, g: PoolGeometry, x: Tensor): { out: Tensor; positions?: Tensor } {
  const outShape = [x.shape[0], x.shape[1], g.rows.out, g.cols.out];
  const out = Tensor.empty(outShape);
  // Packed: one float per 4 windows; else one index per window (as f32: exact below 2^24).
  const indices = Tensor.empty(pairs(g) ? [outVectors(g)] : outShape);
  runKernel(MAX_POOL, g, { x, out, indices });
  const positions = g.windowIndices ? cast(indices, "i32") : undefined;
  const recorded = recordOp(
    op,
    out,
    [x],
    (grad) => [maxPool2dBackward(grad, indices, x.shape, g)],
    [indices],
  );
  return { out: recorded, positions };
}

/** WGSL: `top`, the upper-left texel of item t's quad (see `pairsForward`). */
const QUAD_TOP = /* wgsl */ `
      let q = t % (OW / 4u);
      let row = t / (OW / 4u);
      let top = (row / OH) * u32(H * W / 4) + (row % OH) * u32(W / 2) + 2u * q;`;
/** WGSL: texels per input row. */
const INPUT_ROW_TEXELS = "u32(W / 4)";

/**
 * Item t owns outputs 4t..4t+3: windows 4q..4q+3 of output row oh, which read texels
 * 2q, 2q + 1 of input rows 2oh and 2oh + 1. Their argmaxes (0..3 in window order, or 4 for "no
 * gradient" when relu zeroes the output) are packed in base 8 into one float.
 */
function pairsForward(g: PoolGeometry): string {
  return /* wgsl */ `${QUAD_TOP}
      ${quadCorners("v", INPUT_ROW_TEXELS)}
      ${quadMax("v", g.relu)}
      out[t] = result;
      indices[t] = ${PACKED_ARGMAX};`;
}

/**
 * Whether the general forward reads whole texels per row: no dilation, and input and output
 * rows of whole vectors, so an invocation's 4 outputs share one output row.
 */
function rowTexels(g: PoolGeometry): boolean {
  return !pairs(g) && g.rows.dilation === 1 && g.cols.dilation === 1 &&
    g.cols.size % 4 === 0 && g.cols.out % 4 === 0;
}

/**
 * Item t owns the 4 outputs 4q..4q+3 of one output row (see `rowTexels`), indices as in
 * `windowsForward`. Output e's window starts at column 4q * SW - PW + e * SW: relative to
 * texel q * SW + floor(-PW / 4) of the row its columns are ALIGN + e * SW + j with
 * ALIGN = (-PW) mod 4, so the texel and component of each are known here and each window row
 * loads its few texels once for all 4 windows. Texels outside the row (padding) are skipped, as
 * `windowsForward` skips positions; windows are scanned in the same row-major order.
 */
function rowTexelForward(g: PoolGeometry): string {
  const { rows, cols } = g;
  const texelsPerRow = cols.size / 4;
  const first = Math.floor(-cols.padding / 4);
  const align = ((-cols.padding % 4) + 4) % 4;
  const texels = Math.floor((align + 3 * cols.stride + cols.kernel - 1) / 4) + 1;
  const quads = cols.out / 4;
  const guarded: boolean[] = [];
  const loads: string[] = [];
  for (let k = 0; k < texels; k++) {
    const low = first + k, high = (quads - 1) * cols.stride + first + k;
    const index = `i32(q) * SW + ${first + k}`;
    const guard = [low < 0 ? "c >= 0" : "", high >= texelsPerRow ? `c < ${texelsPerRow}` : ""]
      .filter((c) => c).join(" && ");
    guarded.push(guard !== "");
    loads.push(
      guard
        ? /* wgsl */ `
          var v${k} = vec4<f32>(0.0);
          var ok${k} = false;
          { let c = ${index}; if (${guard}) { v${k} = xVec4(row + u32(c)); ok${k} = true; } }`
        : /* wgsl */ `
          let v${k} = xVec4(row + u32(${index}));`,
    );
  }
  const picks: string[] = [];
  for (let e = 0; e < 4; e++) {
    for (let j = 0; j < cols.kernel; j++) {
      const column = align + e * cols.stride + j;
      const k = column >> 2;
      const value = `v${k}[${column & 3}]`;
      picks.push(/* wgsl */ `
          if (${guarded[k] ? `ok${k} && ` : ""}(arg[${e}] < 0 || ${value} > best[${e}] || ${
        isNan(value)
      })) {
            best[${e}] = ${value};
            arg[${e}] = h * W + columns + ${column};
          }`);
    }
  }
  const rowsInside = rows.padding === 0 &&
    (rows.out - 1) * rows.stride + rows.kernel <= rows.size;
  // As windowsForward: relu keeps NaN and its gradient; a zeroed output passes none.
  const relu = g.relu
    ? /* wgsl */ `
      best = ${relu4("best")};
      arg = select(vec4<i32>(-1), arg, (best > vec4<f32>(0.0)) | ${isNan4("best")});`
    : "";
  return /* wgsl */ `
      let q = t % ${u32(quads)};
      let planeRow = t / ${u32(quads)};
      let plane = planeRow / OH;
      let oh = i32(planeRow % OH);
      // Column of component 0 of v0.
      let columns = (i32(q) * SW + ${first}) * 4;
      // -inf from a runtime value: Tint refuses a constant-folded -inf.
      var negInfBits = 0xff800000u;
      var best = vec4<f32>(bitcast<f32>(negInfBits));
      var arg = vec4<i32>(-1);
      for (var i = 0; i < KH; i++) {
        let h = oh * SH - PH + i;
        ${rowsInside ? "" : "if (h < 0 || h >= H) { continue; }"}
        let row = (plane * u32(H) + u32(h)) * ${u32(texelsPerRow)};${loads.join("")}${
    picks.join("")
  }
      }${relu}
      out[t] = best;
      indices[t] = vec4<f32>(arg);`;
}

/** Item t owns outputs 4t..4t+3 (any geometry); indices are h * W + w, -1 for no gradient. */
function windowsForward(g: PoolGeometry): string {
  // Rows and columns outside the input are skipped; a window always holds one real element.
  const inside = overhangs(g.rows) || overhangs(g.cols)
    ? "if (h < 0 || h >= H || w < 0 || w >= W) { continue; }"
    : "";
  // As quadMax: NaN wins, the last NaN over earlier ones; relu keeps NaN and its gradient.
  const relu = g.relu
    ? /* wgsl */ `
        best = ${relu1("best")};
        if (!(best > 0.0) && !${isNan("best")}) { arg = -1; }`
    : "";
  return /* wgsl */ `
      var result = vec4<f32>(0.0);
      var args = vec4<f32>(0.0);
      for (var e = 0u; e < 4u; e++) {
        let o = 4u * t + e;
        let plane = o / (OH * OW);
        let oh = i32(o / OW % OH);
        let ow = i32(o % OW);
        let planeBase = plane * u32(H * W);
        // -inf: a window of padding alone (possible with dilation) gives -inf, as PyTorch.
        var negInfBits = 0xff800000u; // runtime: Tint refuses a constant-folded -inf
        var best = bitcast<f32>(negInfBits);
        var arg = -1;
        for (var i = 0; i < KH; i++) {
          for (var j = 0; j < KW; j++) {
            let h = oh * SH - PH + i * DH;
            let w = ow * SW - PW + j * DW;
            ${inside}
            let value = xAt(planeBase + u32(h * W + w));
            if (arg < 0 || value > best || ${isNan("value")}) { best = value; arg = h * W + w; }
          }
        }${relu}
        result[e] = best;
        args[e] = f32(arg);
      }
      out[t] = result;
      indices[t] = args;`;
}

function maxPool2dBackward(
  grad: Tensor,
  indices: Tensor,
  inputShape: readonly number[],
  g: PoolGeometry,
): Tensor {
  const dx = Tensor.empty(inputShape);
  runKernel(MAX_POOL_BACKWARD, g, { grad, indices, dx });
  return dx;
}

/**
 * The input gradient [N, C, H, W] of relu(maxPool2d(x, 2)) for an x of even H and W a multiple
 * of 8, from the pooled gradient and the packed argmaxes the quad kernels write (`maxPool2d`'s,
 * or a fused op's that writes the same).
 */
export function reluQuadPoolBackward(
  grad: Tensor,
  indices: Tensor,
  inputShape: readonly number[],
): Tensor {
  const [batch, channels, height, width] = inputShape;
  const axis = (size: number): PoolAxis => ({
    size,
    out: size / 2,
    kernel: 2,
    stride: 2,
    padding: 0,
    dilation: 1,
  });
  const g: PoolGeometry = {
    planes: batch * channels,
    rows: axis(height),
    cols: axis(width),
    relu: true,
    windowIndices: false,
  };
  if (!pairs(g)) {
    throw new Error(
      `reluQuadPoolBackward: needs an input of even height and a width that is a multiple of 8, ` +
        `got [${inputShape.join(", ")}]`,
    );
  }
  return maxPool2dBackward(grad, indices, inputShape, g);
}

/** Item t owns windows 4t..4t+3 (as in `pairsForward`) and writes the 2 × 8 block of dx. */
const pairsBackward = /* wgsl */ `${QUAD_TOP}
      ${quadGradient("gradVec4(t)", "indicesAt(t)")}
      ${spreadGradient(INPUT_ROW_TEXELS, (texel, dy) => `dx[${texel}] = ${dy};`)}`;

/**
 * WGSL: a loop over the windows along one axis that contain input position `at` (a WGSL i32),
 * setting `o<axis>` (i32) and continuing past those that do not. Without dilation the windows
 * containing h are those with o * S - P <= h < o * S - P + K, at most ceil(K / S) of them,
 * counted down from the last; with dilation, kernel offset i holds h when h + P - i * D is a
 * multiple of S. Either way the trip count is fixed.
 */
function windowsContaining(axis: "H" | "W", a: PoolAxis, at: string, out: string): string {
  const index = `o${axis}`;
  if (a.dilation === 1) {
    return /* wgsl */ `
        let last${axis} = min((${at} + P${axis}) / S${axis}, ${out} - 1);
        for (var a${axis} = 0; a${axis} < ${Math.ceil(a.kernel / a.stride)}; a${axis}++) {
          let ${index} = last${axis} - a${axis};
          if (${index} < 0 || ${index} * S${axis} - P${axis} + K${axis} <= ${at}) { continue; }`;
  }
  return /* wgsl */ `
        for (var a${axis} = 0; a${axis} < K${axis}; a${axis}++) {
          let num${axis} = ${at} + P${axis} - a${axis} * D${axis};
          if (num${axis} < 0 || num${axis} % S${axis} != 0 || num${axis} / S${axis} >= ${out}) {
            continue;
          }
          let ${index} = num${axis} / S${axis};`;
}

/** Whether the gather reads rows of whole vectors: W a multiple of 4, no dilation. */
function rowGather(g: PoolGeometry): boolean {
  return !pairs(g) && g.cols.size % 4 === 0 && g.rows.dilation === 1 && g.cols.dilation === 1;
}

/**
 * Rows of whole vectors (`rowGather`): item t owns input elements 4t..4t+3, columns w..w+3 of
 * one row. The windows that may have chosen one of them are, per window row, the
 * ceil((KW + 3) / SW) consecutive windows from the first whose end passes w: each window's
 * argmax and gradient are loaded once and the gradient added to the element that is its argmax.
 */
function rowGatherBody(g: PoolGeometry): string {
  return /* wgsl */ `
      let plane = (4u * t) / u32(H * W);
      let at = i32((4u * t) % u32(H * W));
      let h = at / W;
      let w = at % W;
      let elements = vec4<i32>(at) + vec4<i32>(0, 1, 2, 3);
      // The first window whose end passes w: ow * SW - PW + KW > w.
      let n = w + PW - KW;
      let owFirst = select(n / SW + 1, 0, n < 0);
      var result = vec4<f32>(0.0);${windowsContaining("H", g.rows, "h", "i32(OH)")}
          for (var b = 0; b < ${Math.ceil((g.cols.kernel + 3) / g.cols.stride)}; b++) {
            let oW = owFirst + b;
            if (oW >= i32(OW) || oW * SW - PW > w + 3) { continue; }
            let o = plane * OH * OW + u32(oH) * OW + u32(oW);
            let chosen = vec4<i32>(i32(indicesAt(o))) == elements;
            result += select(vec4<f32>(0.0), vec4<f32>(gradAt(o)), chosen);
          }
        }
      dx[t] = result;`;
}

/**
 * Item t owns input elements 4t..4t+3; each sums the gradients of the windows that chose it
 * (see `windowsContaining`).
 */
function gatherBody(g: PoolGeometry): string {
  if (rowGather(g)) return rowGatherBody(g);
  return /* wgsl */ `
      var result = vec4<f32>(0.0);
      for (var e = 0u; e < 4u; e++) {
        let i = 4u * t + e;
        let plane = i / u32(H * W);
        let at = i32(i % u32(H * W));
        let h = at / W;
        let w = at % W;
        var total = 0.0;${windowsContaining("H", g.rows, "h", "i32(OH)")}${
    windowsContaining("W", g.cols, "w", "i32(OW)")
  }
            let o = plane * OH * OW + u32(oH) * OW + u32(oW);
            if (i32(indicesAt(o)) == at) { total += gradAt(o); }
          }
        }
        result[e] = total;
      }
      dx[t] = result;`;
}

/** The forward: 2×2 quads with packed argmaxes (`pairs`), else windows of any geometry. */
const MAX_POOL: KernelSpec<PoolGeometry, LoopPlan> = {
  name: "max_pool",
  key: (g) => `${pairs(g) ? "2x2_" : rowTexels(g) ? "rows_" : ""}${key(g)}`,
  bindings: (g) => [
    { name: "x", role: "input" },
    { name: "out", role: "write", type: "vec4<f32>" },
    { name: "indices", role: "write", type: pairs(g) ? "f32" : "vec4<f32>" },
  ],
  plan: (g, policy) => loopPlan(outVectors(g), policy),
  prelude: constants,
  body: (g, { plan }) =>
    itemLoop(
      outVectors(g),
      plan,
      pairs(g) ? pairsForward(g) : rowTexels(g) ? rowTexelForward(g) : windowsForward(g),
    ),
};

/** The backward: spreads each quad's gradient (`pairs`), else gathers it per input element. */
const MAX_POOL_BACKWARD: KernelSpec<PoolGeometry, LoopPlan> = {
  name: "max_pool_backward",
  key: (g) => `${pairs(g) ? "2x2_" : rowGather(g) ? "rows_" : ""}${key(g)}`,
  bindings: () => [
    { name: "grad", role: "input" },
    { name: "indices", role: "input" },
    { name: "dx", role: "write", type: "vec4<f32>" },
  ],
  plan: (g, policy) => loopPlan(backwardItems(g), policy),
  prelude: constants,
  body: (g, { plan }) => itemLoop(backwardItems(g), plan, pairs(g) ? pairsBackward : gatherBody(g)),
};
