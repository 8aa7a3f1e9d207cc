/**
 * 2-D max pooling of NCHW tensors, optionally fused with a ReLU of its output, with each
 * window's argmax saved (privately) for the backward pass.
 *
 * Inputs are read through textures and outputs written with vec4 stores (see the cost table in
 * docs/DESIGN.md). The common 2×2, stride-2 pooling of planes whose width is a multiple of 8
 * has its own kernels: an invocation owns 4 adjacent windows (4 texel loads, one vec4 store of
 * the outputs) and saves their 4 argmaxes packed into one float; its backward writes the 2 × 8
 * block of dx those windows cover with 4 vec4 stores. Other geometries save the argmax index
 * h * W + w inside the plane (as an f32, exact below 2^24) and the backward gathers rather than
 * scatters (WGSL has no float atomics): each input element sums the gradients of the windows
 * that contain it and chose it, so overlapping windows (stride < kernel) add up without races.
 *
 * Kernels run narrow workgroups (under the software policy 8 invocations, one SIMD vector on
 * llvmpipe), each looping over a run of work: this measured faster than one item per invocation
 * in workgroups of 64.
 *
 * @module
 */

import { recordOp } from "../autograd.ts";
import { u32 } from "../gpu/kernel.ts";
import type { KernelPolicy } from "../gpu/policy.ts";
import { type KernelPlan, type KernelSpec, runKernel } from "../gpu/program.ts";
import { formatShape, Tensor } from "../tensor.ts";
import { isNan, relu1 } from "./nan_wgsl.ts";
import { PACKED_ARGMAX, quadCorners, quadGradient, quadMax, spreadGradient } from "./pool_quads.ts";

/** Options of `maxPool2d`. */
export interface MaxPoolOptions {
  /** Window height and width. */
  kernelSize: number;
  /** Step between windows; default `kernelSize`. */
  stride?: number;
  /** Implicit -inf border on each side; default 0, at most kernelSize / 2. */
  padding?: number;
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
  height: number;
  width: number;
  outHeight: number;
  outWidth: number;
  kernelSize: number;
  stride: number;
  padding: number;
  relu: boolean;
}

function checkInteger(name: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min) {
    throw new Error(`maxPool2d: ${name} must be an integer >= ${min}, got ${value}`);
  }
}

function geometry(x: Tensor, options: MaxPoolOptions): PoolGeometry {
  const { kernelSize, stride = kernelSize, padding = 0, relu = false } = options;
  if (x.rank !== 4) {
    throw new Error(`maxPool2d: needs x of shape [N, C, H, W], got ${formatShape(x.shape)}`);
  }
  if (x.dtype !== "f32") throw new Error(`maxPool2d: needs an f32 tensor, got ${x.dtype}`);
  checkInteger("kernelSize", kernelSize, 1);
  checkInteger("stride", stride, 1);
  checkInteger("padding", padding, 0);
  if (2 * padding > kernelSize) {
    throw new Error(
      `maxPool2d: padding ${padding} must be at most half the kernel size ${kernelSize}`,
    );
  }
  const [n, c, height, width] = x.shape;
  const outHeight = Math.floor((height + 2 * padding - kernelSize) / stride) + 1;
  const outWidth = Math.floor((width + 2 * padding - kernelSize) / stride) + 1;
  if (outHeight < 1 || outWidth < 1) {
    throw new Error(
      `maxPool2d: a ${kernelSize}x${kernelSize} window with padding ${padding} does not fit ` +
        `x of shape ${formatShape(x.shape)}`,
    );
  }
  return {
    planes: n * c,
    height,
    width,
    outHeight,
    outWidth,
    kernelSize,
    stride,
    padding,
    relu: !!relu,
  };
}

/** WGSL constants shared by the kernels. */
function constants(g: PoolGeometry): string {
  return /* wgsl */ `
const H: i32 = ${g.height};
const W: i32 = ${g.width};
const OH: u32 = ${u32(g.outHeight)};
const OW: u32 = ${u32(g.outWidth)};
const K: i32 = ${g.kernelSize};
const STRIDE: i32 = ${g.stride};
const PAD: i32 = ${g.padding};`;
}

/** 2×2 windows, stride 2, whole texel pairs per row: the packed kernels. */
function pairs(g: PoolGeometry): boolean {
  return g.kernelSize === 2 && g.stride === 2 && g.padding === 0 && g.width % 8 === 0 &&
    g.height % 2 === 0;
}

/** A plan in which each invocation loops over a run of `perInvocation` items. */
interface LoopPlan extends KernelPlan {
  groups: number;
  perInvocation: number;
}

/** Narrow workgroups, at most `updateMaxGroups` of them (a few dozen keep both cores busy). */
function loopPlan(items: number, policy: KernelPolicy): LoopPlan {
  const workgroupSize = policy.narrowWorkgroup;
  const groups = Math.min(policy.updateMaxGroups, Math.ceil(items / workgroupSize));
  return { workgroupSize, groups, perInvocation: Math.ceil(items / (groups * workgroupSize)) };
}

/** WGSL running `body` for every item `t < items` (WGSL `t: u32`), lanes on adjacent items. */
function itemLoop(items: number, plan: LoopPlan, body: string): string {
  return /* wgsl */ `
  let base = group * ${u32(plan.perInvocation * plan.workgroupSize)} + lid;
  for (var k = 0u; k < ${u32(plan.perInvocation)}; k++) {
    let t = base + k * ${u32(plan.workgroupSize)};
    if (t < ${u32(items)}) {
${body}
    }
  }`;
}

/** Output vectors: the forward's items, and the packed backward's. */
function outVectors(g: PoolGeometry): number {
  return Math.ceil(g.planes * g.outHeight * g.outWidth / 4);
}

/** Items of the backward: quads (packed), else vectors of dx. */
function backwardItems(g: PoolGeometry): number {
  return pairs(g) ? outVectors(g) : Math.ceil(g.planes * g.height * g.width / 4);
}

function key(g: PoolGeometry): string {
  return `${g.planes}x${g.height}x${g.width}_k${g.kernelSize}s${g.stride}p${g.padding}` +
    (g.relu ? "_relu" : "");
}

/**
 * Max pooling over k × k windows of x [N, C, H, W]: output [N, C, OH, OW] with
 * OH = floor((H + 2 padding - k) / stride) + 1; padding counts as -inf. Ties go to the first
 * maximum in row-major window order; a window holding NaN gives NaN, its argmax the last NaN
 * (as PyTorch). With `relu`, the output is relu(maxPool(x)).
 * Differentiable (the gradient goes to each window's argmax; with `relu`, only from windows
 * whose output is positive).
 */
export function maxPool2d(x: Tensor, options: MaxPoolOptions): Tensor {
  if (x.size === 0) {
    throw new Error(
      `maxPool2d: empty tensors are not supported (input ${formatShape(x.shape)}): every ` +
        "dimension must be at least 1",
    );
  }
  const g = geometry(x, options);
  const outShape = [x.shape[0], x.shape[1], g.outHeight, g.outWidth];
  const out = Tensor.empty(outShape);
  // Packed: one float per 4 windows; else one index per window.
  const indices = Tensor.empty([pairs(g) ? outVectors(g) : out.size]);
  runKernel(MAX_POOL, g, { x, out, indices });
  return recordOp(
    "maxPool2d",
    out,
    [x],
    (grad) => [maxPool2dBackward(grad, indices, x.shape, g)],
    [indices],
  );
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

/** Item t owns outputs 4t..4t+3 (any geometry); indices are h * W + w, -1 for no gradient. */
function windowsForward(g: PoolGeometry): string {
  // Rows and columns outside the input are skipped; a window always holds one real element.
  const inside = g.padding > 0 ? "if (h < 0 || h >= H || w < 0 || w >= W) { continue; }" : "";
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
        var best = 0.0;
        var arg = -1;
        for (var dh = 0; dh < K; dh++) {
          for (var dw = 0; dw < K; dw++) {
            let h = oh * STRIDE - PAD + dh;
            let w = ow * STRIDE - PAD + dw;
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

/** Item t owns windows 4t..4t+3 (as in `pairsForward`) and writes the 2 × 8 block of dx. */
const pairsBackward = /* wgsl */ `${QUAD_TOP}
      ${quadGradient("gradVec4(t)", "indicesAt(t)")}
      ${spreadGradient(INPUT_ROW_TEXELS, (texel, dy) => `dx[${texel}] = ${dy};`)}`;

/**
 * Item t owns input elements 4t..4t+3; each sums the gradients of the windows that chose it.
 * The windows containing row h are those with oh * STRIDE - PAD <= h < oh * STRIDE - PAD + K,
 * at most ceil(K / STRIDE) of them, so the loops have fixed trip counts.
 */
function gatherBody(g: PoolGeometry): string {
  const span = Math.ceil(g.kernelSize / g.stride);
  return /* wgsl */ `
      var result = vec4<f32>(0.0);
      for (var e = 0u; e < 4u; e++) {
        let i = 4u * t + e;
        let plane = i / u32(H * W);
        let at = i32(i % u32(H * W));
        let h = at / W;
        let w = at % W;
        let lastH = min((h + PAD) / STRIDE, i32(OH) - 1);
        let lastW = min((w + PAD) / STRIDE, i32(OW) - 1);
        var total = 0.0;
        for (var a = 0; a < ${span}; a++) {
          let oh = lastH - a;
          if (oh < 0 || oh * STRIDE - PAD + K <= h) { continue; }
          for (var b = 0; b < ${span}; b++) {
            let ow = lastW - b;
            if (ow < 0 || ow * STRIDE - PAD + K <= w) { continue; }
            let o = plane * OH * OW + u32(oh) * OW + u32(ow);
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
  key: (g) => `${pairs(g) ? "2x2_" : ""}${key(g)}`,
  bindings: (g) => [
    { name: "x", role: "input" },
    { name: "out", role: "write", type: "vec4<f32>" },
    { name: "indices", role: "write", type: pairs(g) ? "f32" : "vec4<f32>" },
  ],
  plan: (g, policy) => loopPlan(outVectors(g), policy),
  prelude: constants,
  body: (g, { plan }) =>
    itemLoop(outVectors(g), plan, pairs(g) ? pairsForward(g) : windowsForward(g)),
};

/** The backward: spreads each quad's gradient (`pairs`), else gathers it per input element. */
const MAX_POOL_BACKWARD: KernelSpec<PoolGeometry, LoopPlan> = {
  name: "max_pool_backward",
  key: (g) => `${pairs(g) ? "2x2_" : ""}${key(g)}`,
  bindings: () => [
    { name: "grad", role: "input" },
    { name: "indices", role: "input" },
    { name: "dx", role: "write", type: "vec4<f32>" },
  ],
  plan: (g, policy) => loopPlan(backwardItems(g), policy),
  prelude: constants,
  body: (g, { plan }) => itemLoop(backwardItems(g), plan, pairs(g) ? pairsBackward : gatherBody(g)),
};
