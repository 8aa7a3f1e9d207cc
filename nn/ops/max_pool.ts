/**
 * 2-D max pooling of NCHW tensors, with the argmax of each window saved (privately, as i32
 * indices h * W + w inside the input plane) for the backward pass.
 *
 * The backward pass gathers rather than scatters (WGSL has no float atomics): each input
 * element sums the gradients of the windows that contain it and chose it, so overlapping windows
 * (stride < kernel) add up without races. When windows tile the input exactly (stride ==
 * kernel, no padding, sizes divisible), each invocation instead writes one window's k × k
 * gradient block, which reads every index and gradient once.
 *
 * @module
 */

import { recordOp } from "../autograd.ts";
import { grid, kernel, u32, workgroupIndex } from "../kernel.ts";
import { dispatch } from "../stream.ts";
import { formatShape, Tensor } from "../tensor.ts";

const WORKGROUP = 16;
const PER_INVOCATION = 4;

/** Options of `maxPool2d`. */
export interface MaxPoolOptions {
  /** Window height and width. */
  kernelSize: number;
  /** Step between windows; default `kernelSize`. */
  stride?: number;
  /** Implicit -inf border on each side; default 0, at most kernelSize / 2. */
  padding?: number;
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
}

function checkInteger(name: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min) {
    throw new Error(`maxPool2d: ${name} must be an integer >= ${min}, got ${value}`);
  }
}

function geometry(x: Tensor, options: MaxPoolOptions): PoolGeometry {
  const { kernelSize, stride = kernelSize, padding = 0 } = options;
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
  return { planes: n * c, height, width, outHeight, outWidth, kernelSize, stride, padding };
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

/** Encodes `body` for every index `i < count`, PER_INVOCATION per invocation. */
function encodeEach(
  name: string,
  count: number,
  header: string,
  body: string,
  buffers: GPUBuffer[],
  bindings: readonly ("read" | "read_write")[],
): void {
  const groups = Math.ceil(count / (WORKGROUP * PER_INVOCATION));
  const code = /* wgsl */ `
${header}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let base = ${workgroupIndex(groups)} * ${u32(WORKGROUP * PER_INVOCATION)} + lid;
  for (var k = 0u; k < ${u32(PER_INVOCATION)}; k++) {
    let i = base + k * ${u32(WORKGROUP)};
    if (i < ${u32(count)}) {
${body}
    }
  }
}`;
  dispatch(kernel({ name, code, bindings }), buffers, grid(groups));
}

function key(g: PoolGeometry): string {
  return `${g.planes}x${g.height}x${g.width}_k${g.kernelSize}s${g.stride}p${g.padding}`;
}

/**
 * Max pooling over k × k windows of x [N, C, H, W]: output [N, C, OH, OW] with
 * OH = floor((H + 2 padding - k) / stride) + 1; padding counts as -inf. Ties go to the first
 * maximum in row-major window order. Differentiable (the gradient goes to each window's argmax).
 */
export function maxPool2d(x: Tensor, options: MaxPoolOptions): Tensor {
  const g = geometry(x, options);
  const outShape = [x.shape[0], x.shape[1], g.outHeight, g.outWidth];
  const out = Tensor.empty(outShape);
  const indices = Tensor.empty(outShape, "i32");
  // Rows and columns outside the input are skipped; a window always holds one real element.
  const inside = g.padding > 0 ? "if (h < 0 || h >= H || w < 0 || w >= W) { continue; }" : "";
  encodeEach(
    `max_pool_${key(g)}`,
    out.size,
    /* wgsl */ `
${constants(g)}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read_write> indices: array<i32>;`,
    /* wgsl */ `
      let plane = i / (OH * OW);
      let oh = i32(i / OW % OH);
      let ow = i32(i % OW);
      let planeBase = plane * u32(H * W);
      var best = 0.0;
      var arg = -1;
      for (var dh = 0; dh < K; dh++) {
        for (var dw = 0; dw < K; dw++) {
          let h = oh * STRIDE - PAD + dh;
          let w = ow * STRIDE - PAD + dw;
          ${inside}
          let value = x[planeBase + u32(h * W + w)];
          if (arg < 0 || value > best) { best = value; arg = h * W + w; }
        }
      }
      out[i] = best;
      indices[i] = arg;`,
    [x.buffer, out.buffer, indices.buffer],
    ["read", "read_write", "read_write"],
  );
  return recordOp(
    "maxPool2d",
    out,
    [x],
    (grad) => [maxPool2dBackward(grad, indices, x.shape, g)],
    [indices],
  );
}

function tilesExactly(g: PoolGeometry): boolean {
  return g.stride === g.kernelSize && g.padding === 0 && g.height % g.kernelSize === 0 &&
    g.width % g.kernelSize === 0;
}

function maxPool2dBackward(
  grad: Tensor,
  indices: Tensor,
  inputShape: readonly number[],
  g: PoolGeometry,
): Tensor {
  const dx = Tensor.empty(inputShape);
  const header = /* wgsl */ `
${constants(g)}
@group(0) @binding(0) var<storage, read> grad: array<f32>;
@group(0) @binding(1) var<storage, read> indices: array<i32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;`;
  const buffers = [grad.buffer, indices.buffer, dx.buffer];
  const bindings = ["read", "read", "read_write"] as const;
  if (tilesExactly(g)) {
    encodeEach(
      `max_pool_backward_tiled_${key(g)}`,
      grad.size,
      header,
      tiledBody,
      buffers,
      bindings,
    );
  } else {
    encodeEach(`max_pool_backward_${key(g)}`, dx.size, header, gatherBody(g), buffers, bindings);
  }
  return dx;
}

/** Invocation i owns output window i and writes its whole k × k block of dx. */
const tiledBody = /* wgsl */ `
      let plane = i / (OH * OW);
      let oh = i32(i / OW % OH);
      let ow = i32(i % OW);
      let planeBase = plane * u32(H * W);
      let value = grad[i];
      let arg = indices[i];
      for (var dh = 0; dh < K; dh++) {
        for (var dw = 0; dw < K; dw++) {
          let at = (oh * K + dh) * W + ow * K + dw;
          dx[planeBase + u32(at)] = select(0.0, value, at == arg);
        }
      }`;

/**
 * Invocation i owns input element i and sums the gradients of the windows that chose it. The
 * windows containing row h are those with oh * STRIDE - PAD <= h < oh * STRIDE - PAD + K, at
 * most ceil(K / STRIDE) of them, so the loops have fixed trip counts.
 */
function gatherBody(g: PoolGeometry): string {
  const span = Math.ceil(g.kernelSize / g.stride);
  return /* wgsl */ `
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
          if (indices[o] == at) { total += grad[o]; }
        }
      }
      dx[i] = total;`;
}
