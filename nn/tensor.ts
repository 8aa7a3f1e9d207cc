/**
 * `Tensor`: a float32 (or int32 / uint8) array on the GPU, with a shape, an autograd node and
 * explicit ownership of its buffer.
 *
 * @module
 */

import { acquireBuffer, releaseBuffer } from "./gpu/buffer_pool.ts";
import { formatShape, resolveShape } from "./shape.ts";
import { gpu } from "./gpu/device.ts";
import { type BackwardOptions, type GradNode, recordOp, runBackward } from "./graph.ts";
import { fillWords, valueBits } from "./ops/fill.ts";
import { defaultGenerator, Rng } from "./random.ts";
import { type Disposable, track } from "./scope.ts";
import { readBuffer, writeBuffer } from "./gpu/stream.ts";
import { textureFits } from "./gpu/texture.ts";

/** Element types: `f32` for data, `i32` for labels and indices, `u8` for raw image bytes. */
export type DType = "f32" | "i32" | "u8";

/** The typed array that holds a tensor's elements on the CPU. */
export type TypedArray = Float32Array | Int32Array | Uint8Array;

const BYTES_PER_ELEMENT: Record<DType, number> = { f32: 4, i32: 4, u8: 1 };

/** A GPU buffer shared by a tensor and its views; returned to the pool when the last goes. */
class Storage {
  refs = 1;
  constructor(readonly buffer: GPUBuffer, readonly byteLength: number) {}
}

/** Options for creating a tensor. */
export interface TensorOptions {
  /** Element type; `f32` unless said. */
  dtype?: DType;
  /** Whether gradients should be computed for this tensor (a leaf, such as a weight). */
  requiresGrad?: boolean;
}

export { formatShape };

function checkShape(shape: readonly number[]): number {
  let size = 1;
  for (const dim of shape) {
    if (!Number.isInteger(dim) || dim < 0) {
      throw new Error(`Invalid shape ${formatShape(shape)}: dimensions must be integers >= 0`);
    }
    size *= dim;
  }
  return size;
}

/** The most elements a tensor of `dtype` can have on this device (one storage binding). */
export function maxTensorElements(dtype: DType = "f32"): number {
  return Math.floor(gpu().limits.maxStorageBufferBindingSize / BYTES_PER_ELEMENT[dtype]);
}

/**
 * Whether a tensor of `shape` and `dtype` fits in one storage buffer of this device and, for
 * f32, can be read by the ops (see `textureFits` in texture.ts). Needs `init()`.
 */
export function tensorFits(shape: readonly number[], dtype: DType = "f32"): boolean {
  const size = checkShape(shape);
  return size <= maxTensorElements(dtype) && (dtype !== "f32" || textureFits(shape));
}

/**
 * The names of Tensor's op methods (`add`, `matmul`, `relu`, ...): every method returning a
 * Tensor except Tensor's own (`view`, `reshape`, `flatten`).
 */
export type TensorMethodName = {
  [K in keyof Tensor]: K extends "view" | "reshape" | "flatten" ? never
    : Tensor[K] extends (...args: never[]) => Tensor ? K
    : never;
}[keyof Tensor];

/**
 * The ops behind Tensor's op methods: for each method, the op function taking the tensor first
 * (`add(self, other)` for `self.add(other)`). `nn/tensor_methods.ts` installs it.
 */
export type TensorMethodTable = {
  readonly [K in TensorMethodName]: Tensor[K] extends (...args: infer A) => Tensor
    ? (self: Tensor, ...args: A) => Tensor
    : never;
};

let methodTable: TensorMethodTable | null = null;

/**
 * Installs the ops behind Tensor's op methods (called once by `nn/tensor_methods.ts`: tensor.ts
 * cannot import the ops, which import it).
 */
export function installTensorMethods(table: TensorMethodTable): void {
  methodTable = table;
}

function tensorOps(): TensorMethodTable {
  if (!methodTable) {
    throw new Error(
      "Tensor methods (x.add(y), x.matmul(w), ...) are not loaded: import wgtorch from its " +
        "entry point (mod.ts), which installs them (or import nn/tensor_methods.ts)",
    );
  }
  return methodTable;
}

/**
 * A multi-dimensional array on the GPU. Contiguous, row-major. Make one with `tensor`, `zeros`,
 * `ones`, `full`, `randUniform` or `randNormal`; free it with `dispose()`, or let `tidy` do it.
 *
 * @example Autograd: the gradient of sum(w * x) with respect to w is x
 * ```ts
 * import { init, mul, sum, tensor } from "@wgtorch/wgtorch";
 *
 * await init();
 * const w = tensor([1, 2, 3], [3], { requiresGrad: true });
 * const x = tensor([4, 5, 6], [3]);
 * sum(mul(w, x)).backward();
 * console.log(await w.grad!.toArray()); // Float32Array(3) [4, 5, 6]
 * ```
 *
 * @example Op methods, as in PyTorch: a linear layer, ReLU and a sum, with backward
 * ```ts
 * import { init, tensor } from "@wgtorch/wgtorch";
 *
 * await init();
 * const x = tensor([1, -2, 3, 4], [2, 2]);
 * const w = tensor([1, 0, 0, 1], [2, 2], { requiresGrad: true });
 * const b = tensor([0.5, -0.5], [2], { requiresGrad: true });
 * const loss = x.matmul(w).add(b).relu().sum();
 * loss.backward();
 * console.log(await loss.item()); // 1.5 + 0 + 3.5 + 3.5 = 8.5
 * console.log(await b.grad!.toArray()); // Float32Array(2) [2, 1]
 * ```
 */
export class Tensor implements Disposable {
  /** Dimensions, outermost first. */
  readonly shape: readonly number[];
  /** Element type. */
  readonly dtype: DType;
  /** Number of elements. */
  readonly size: number;
  /** Whether autograd tracks this tensor. */
  requiresGrad: boolean;
  /** Gradient accumulated by `backward()` (leaves only); `null` until then. */
  grad: Tensor | null = null;
  /**
   * The op that produced this tensor, while the graph behind it is alive (autograd's internal
   * bookkeeping: not part of the public API).
   *
   * @ignore
   */
  node: GradNode | null = null;
  #storage: Storage | null;

  private constructor(storage: Storage, shape: readonly number[], dtype: DType, grad: boolean) {
    this.#storage = storage;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.size = checkShape(shape);
    this.requiresGrad = grad;
    track(this);
  }

  /** An uninitialised tensor with its own (pooled) buffer: for op outputs. */
  static empty(shape: readonly number[], dtype: DType = "f32"): Tensor {
    const size = checkShape(shape);
    const byteLength = Math.ceil(size * BYTES_PER_ELEMENT[dtype] / 4) * 4;
    const maxBytes = gpu().limits.maxStorageBufferBindingSize;
    if (byteLength > maxBytes) {
      throw new Error(
        `A ${dtype} tensor of shape ${formatShape(shape)} (${size} elements) is too large: the ` +
          `largest this adapter holds has ${maxTensorElements(dtype)} elements ` +
          `(maxStorageBufferBindingSize = ${maxBytes} bytes). Use a smaller batch.`,
      );
    }
    const storage = new Storage(acquireBuffer(Math.max(4, byteLength)), byteLength);
    return new Tensor(storage, shape, dtype, false);
  }

  /** The GPU buffer holding the elements. Throws if the tensor was disposed. */
  get buffer(): GPUBuffer {
    if (!this.#storage) {
      throw new Error(
        `A ${this.dtype} tensor of shape ${formatShape(this.shape)} was used after dispose()` +
          (this.node ? ` (it was made by ${this.node.name})` : "") +
          ". Keep it alive (keep(), or return it from tidy()) while it is still needed.",
      );
    }
    return this.#storage.buffer;
  }

  /** Bytes used by the elements (padded to whole 32-bit words). */
  get byteLength(): number {
    return Math.ceil(this.size * BYTES_PER_ELEMENT[this.dtype] / 4) * 4;
  }

  /** True once `dispose()` was called. */
  get isDisposed(): boolean {
    return this.#storage === null;
  }

  /** Number of dimensions. */
  get rank(): number {
    return this.shape.length;
  }

  /** Gives the buffer back to the pool (once no view shares it) and frees saved autograd state. */
  dispose(): void {
    const storage = this.#storage;
    if (!storage) return;
    this.#storage = null;
    if (--storage.refs === 0) releaseBuffer(storage.buffer);
    this.node?.release();
  }

  /** A new tensor object over the same elements (no copy), with its own ownership. */
  view(shape: readonly number[] = this.shape): Tensor {
    const size = checkShape(shape);
    if (size !== this.size) {
      throw new Error(
        `reshape: cannot view ${this.size} elements of shape ${formatShape(this.shape)} as ` +
          `${formatShape(shape)} (${size} elements)`,
      );
    }
    const storage = this.#storage;
    if (!storage) void this.buffer; // throws the used-after-dispose error
    storage!.refs++;
    return new Tensor(storage!, shape, this.dtype, false);
  }

  /**
   * The same elements with another shape (no copy). One dimension may be -1 (inferred).
   * Differentiable.
   */
  reshape(shape: readonly number[]): Tensor {
    const out = this.view(resolveShape("reshape", this.shape, shape));
    const inputShape = this.shape;
    return recordOp("reshape", out, [this], (grad) => [grad.view(inputShape)]);
  }

  /** Flattens every dimension from `startDim` on into one (no copy), like `torch.flatten`. */
  flatten(startDim = 1): Tensor {
    const kept = this.shape.slice(0, startDim);
    return this.reshape([...kept, this.shape.slice(startDim).reduce((a, b) => a * b, 1)]);
  }

  /** Copies the elements to the CPU as their own typed array. Waits for the GPU. */
  async toTypedArray(): Promise<TypedArray> {
    const bytes = await readBuffer(this.buffer, this.byteLength);
    if (this.dtype === "f32") return new Float32Array(bytes, 0, this.size);
    if (this.dtype === "i32") return new Int32Array(bytes, 0, this.size);
    return new Uint8Array(bytes, 0, this.size);
  }

  /** Copies the elements to the CPU as a Float32Array (ints converted). Waits for the GPU. */
  async toArray(): Promise<Float32Array> {
    const data = await this.toTypedArray();
    return data instanceof Float32Array ? data : Float32Array.from(data);
  }

  /** The value of a one-element tensor. Waits for the GPU. */
  async item(): Promise<number> {
    if (this.size !== 1) {
      throw new Error(
        `item(): the tensor has ${this.size} elements (shape ${formatShape(this.shape)}), not 1`,
      );
    }
    return (await this.toTypedArray())[0];
  }

  /**
   * Computes the gradient of this scalar with respect to every tensor that requires one, adding
   * it to their `.grad`. Frees the graph behind it unless `retainGraph` is set.
   */
  backward(options: BackwardOptions = {}): void {
    runBackward(this, options);
  }

  // Op methods, as PyTorch's (`x.matmul(w).add(b).relu()`): each calls the op of its name,
  // installed by `nn/tensor_methods.ts` (which mod.ts loads). A new one is two lines: its
  // declaration here and its entry in that table.

  /** this + other, broadcasting (see `add`). */
  add(other: Tensor | number): Tensor {
    return tensorOps().add(this, other);
  }

  /** this - other, broadcasting (see `sub`). */
  sub(other: Tensor | number): Tensor {
    return tensorOps().sub(this, other);
  }

  /** this * other, element by element, broadcasting (see `mul`). */
  mul(other: Tensor | number): Tensor {
    return tensorOps().mul(this, other);
  }

  /** this / other, element by element, broadcasting (see `div`). */
  div(other: Tensor | number): Tensor {
    return tensorOps().div(this, other);
  }

  /** this raised to the power other, broadcasting (see `pow`). */
  pow(other: Tensor | number): Tensor {
    return tensorOps().pow(this, other);
  }

  /** The larger of this and other, element by element, broadcasting (see `maximum`). */
  maximum(other: Tensor | number): Tensor {
    return tensorOps().maximum(this, other);
  }

  /** The smaller of this and other, element by element, broadcasting (see `minimum`). */
  minimum(other: Tensor | number): Tensor {
    return tensorOps().minimum(this, other);
  }

  /** this == other as a u8 mask, broadcasting (see `eq`). */
  eq(other: Tensor | number): Tensor {
    return tensorOps().eq(this, other);
  }

  /** this != other as a u8 mask, broadcasting (see `ne`). */
  ne(other: Tensor | number): Tensor {
    return tensorOps().ne(this, other);
  }

  /** this < other as a u8 mask, broadcasting (see `lt`). */
  lt(other: Tensor | number): Tensor {
    return tensorOps().lt(this, other);
  }

  /** this <= other as a u8 mask, broadcasting (see `le`). */
  le(other: Tensor | number): Tensor {
    return tensorOps().le(this, other);
  }

  /** this > other as a u8 mask, broadcasting (see `gt`). */
  gt(other: Tensor | number): Tensor {
    return tensorOps().gt(this, other);
  }

  /** this >= other as a u8 mask, broadcasting (see `ge`). */
  ge(other: Tensor | number): Tensor {
    return tensorOps().ge(this, other);
  }

  /** -this (see `neg`). */
  neg(): Tensor {
    return tensorOps().neg(this);
  }

  /** |this| (see `abs`). */
  abs(): Tensor {
    return tensorOps().abs(this);
  }

  /** e^this (see `exp`). */
  exp(): Tensor {
    return tensorOps().exp(this);
  }

  /** The natural logarithm (see `log`). */
  log(): Tensor {
    return tensorOps().log(this);
  }

  /** The square root (see `sqrt`). */
  sqrt(): Tensor {
    return tensorOps().sqrt(this);
  }

  /** 1 / sqrt(this) (see `rsqrt`). */
  rsqrt(): Tensor {
    return tensorOps().rsqrt(this);
  }

  /** this * this (see `square`). */
  square(): Tensor {
    return tensorOps().square(this);
  }

  /** The sine (see `sin`). */
  sin(): Tensor {
    return tensorOps().sin(this);
  }

  /** The cosine (see `cos`). */
  cos(): Tensor {
    return tensorOps().cos(this);
  }

  /** 1 / (1 + e^-this) (see `sigmoid`). */
  sigmoid(): Tensor {
    return tensorOps().sigmoid(this);
  }

  /** The hyperbolic tangent (see `tanh`). */
  tanh(): Tensor {
    return tensorOps().tanh(this);
  }

  /** max(this, 0) (see `relu`). */
  relu(): Tensor {
    return tensorOps().relu(this);
  }

  /** The leaky ReLU (see `leakyRelu`). */
  leakyRelu(options?: { negativeSlope?: number }): Tensor {
    return tensorOps().leakyRelu(this, options);
  }

  /** The ELU (see `elu`). */
  elu(options?: { alpha?: number }): Tensor {
    return tensorOps().elu(this, options);
  }

  /** The GELU (see `gelu`). */
  gelu(options?: { approximate?: "none" | "tanh" }): Tensor {
    return tensorOps().gelu(this, options);
  }

  /** this * sigmoid(this) (see `silu`). */
  silu(): Tensor {
    return tensorOps().silu(this);
  }

  /** log(1 + e^(beta this)) / beta (see `softplus`). */
  softplus(options?: { beta?: number; threshold?: number }): Tensor {
    return tensorOps().softplus(this, options);
  }

  /** this clamped to [min, max] (see `clamp`). */
  clamp(options: { min?: number; max?: number }): Tensor {
    return tensorOps().clamp(this, options);
  }

  /** The matrix product this · other of 2-D tensors (see `matmul`). */
  matmul(other: Tensor, options?: { transposeA?: boolean; transposeB?: boolean }): Tensor {
    return tensorOps().matmul(this, other, options);
  }

  /** The sum over `dim` (default: every element) (see `sum`). */
  sum(options?: { dim?: number | readonly number[]; keepdim?: boolean }): Tensor {
    return tensorOps().sum(this, options);
  }

  /** The mean over `dim` (default: every element) (see `mean`). */
  mean(options?: { dim?: number | readonly number[]; keepdim?: boolean }): Tensor {
    return tensorOps().mean(this, options);
  }

  /** The largest value over `dim` (default: every element) (see `max`). */
  max(options?: { dim?: number | readonly number[]; keepdim?: boolean }): Tensor {
    return tensorOps().max(this, options);
  }

  /** The smallest value over `dim` (default: every element) (see `min`). */
  min(options?: { dim?: number | readonly number[]; keepdim?: boolean }): Tensor {
    return tensorOps().min(this, options);
  }

  /** The product over `dim` (default: every element) (see `prod`). */
  prod(options?: { dim?: number | readonly number[]; keepdim?: boolean }): Tensor {
    return tensorOps().prod(this, options);
  }

  /** log(sum(exp(this))) over `dim`, computed stably (see `logsumexp`). */
  logsumexp(options?: { dim?: number | readonly number[]; keepdim?: boolean }): Tensor {
    return tensorOps().logsumexp(this, options);
  }

  /** The variance over `dim`, with Bessel's correction unless `correction: 0` (see `variance`). */
  var(
    options?: { dim?: number | readonly number[]; keepdim?: boolean; correction?: number },
  ): Tensor {
    return tensorOps().var(this, options);
  }

  /** The standard deviation over `dim` (see `std`). */
  std(
    options?: { dim?: number | readonly number[]; keepdim?: boolean; correction?: number },
  ): Tensor {
    return tensorOps().std(this, options);
  }

  /** The index of the first maximum over `dim` (default: of the flattened tensor), as i32. */
  argmax(options?: { dim?: number; keepdim?: boolean }): Tensor {
    return tensorOps().argmax(this, options);
  }

  /** The index of the first minimum over `dim` (default: of the flattened tensor), as i32. */
  argmin(options?: { dim?: number; keepdim?: boolean }): Tensor {
    return tensorOps().argmin(this, options);
  }

  /** softmax over `dim` (default -1) (see `softmax`). */
  softmax(options?: { dim?: number }): Tensor {
    return tensorOps().softmax(this, options);
  }

  /** log(softmax(this)) over `dim` (default -1) (see `logSoftmax`). */
  logSoftmax(options?: { dim?: number }): Tensor {
    return tensorOps().logSoftmax(this, options);
  }

  /** Without the size-1 dimensions (all, or those of `dim`): a view (see `squeeze`). */
  squeeze(options?: { dim?: number | readonly number[] }): Tensor {
    return tensorOps().squeeze(this, options);
  }

  /** With a size-1 dimension inserted at `dim`: a view (see `unsqueeze`). */
  unsqueeze(dim: number): Tensor {
    return tensorOps().unsqueeze(this, dim);
  }

  /** Dimensions `dim0` and `dim1` swapped, as a contiguous copy (see `transpose`). */
  transpose(dim0: number, dim1: number): Tensor {
    return tensorOps().transpose(this, dim0, dim1);
  }

  /** The dimensions reordered, as a contiguous copy (see `permute`). */
  permute(dims: readonly number[]): Tensor {
    return tensorOps().permute(this, dims);
  }

  /** Size-1 dimensions repeated to `shape` (see `expand`). */
  expand(shape: readonly number[]): Tensor {
    return tensorOps().expand(this, shape);
  }

  /** `length` elements of dimension `dim` from `start` (see `narrow`). */
  narrow(dim: number, start: number, length: number): Tensor {
    return tensorOps().narrow(this, dim, start, length);
  }

  /** The entries of `index` (1-D, i32) along `dim` (see `indexSelect`). */
  indexSelect(dim: number, index: Tensor): Tensor {
    return tensorOps().indexSelect(this, dim, index);
  }

  /** Values picked along `dim` by an i32 `index` of the same rank (see `gather`). */
  gather(dim: number, index: Tensor): Tensor {
    return tensorOps().gather(this, dim, index);
  }

  /** The elements converted to `dtype` (see `cast`; PyTorch's `x.to(dtype)`). */
  cast(dtype: DType): Tensor {
    return tensorOps().cast(this, dtype);
  }

  /** A short description, e.g. `Tensor(f32, [128, 10])`. */
  toString(): string {
    return `Tensor(${this.dtype}, ${formatShape(this.shape)}${
      this.isDisposed ? ", disposed" : ""
    })`;
  }
}

function fromData(
  data: ArrayLike<number>,
  shape: readonly number[],
  options: TensorOptions,
): Tensor {
  const dtype = options.dtype ??
    (data instanceof Int32Array ? "i32" : data instanceof Uint8Array ? "u8" : "f32");
  const size = checkShape(shape);
  if (data.length !== size) {
    throw new Error(
      `tensor: ${data.length} values given for shape ${formatShape(shape)}, which holds ${size}`,
    );
  }
  checkIntegers("tensor", data, dtype);
  const out = Tensor.empty(shape, dtype);
  let bytes: TypedArray;
  if (dtype === "f32") bytes = data instanceof Float32Array ? data : Float32Array.from(data);
  else if (dtype === "i32") bytes = data instanceof Int32Array ? data : Int32Array.from(data);
  else {
    bytes = new Uint8Array(out.byteLength);
    bytes.set(data);
  }
  writeBuffer(out.buffer, bytes);
  out.requiresGrad = options.requiresGrad ?? false;
  return out;
}

/** The integers an element of each integer dtype holds. */
const INTEGER_RANGES: Record<"i32" | "u8", [number, number]> = {
  i32: [-(2 ** 31), 2 ** 31 - 1],
  u8: [0, 255],
};

/**
 * Refuses values an integer dtype cannot hold (out of range, fractions, NaN) instead of letting
 * them wrap or truncate as a typed array would: PyTorch raises an overflow error for these.
 */
function checkIntegers(op: string, data: ArrayLike<number>, dtype: DType): void {
  if (dtype === "f32") return;
  // A typed array of the dtype's own kind holds only valid values.
  if (dtype === "i32" ? data instanceof Int32Array : data instanceof Uint8Array) return;
  const [low, high] = INTEGER_RANGES[dtype];
  for (let i = 0; i < data.length; i++) {
    const value = data[i];
    if (!Number.isInteger(value) || value < low || value > high) {
      throw new Error(
        `${op}: value ${value}${
          op === "full" ? "" : ` at index ${i}`
        } does not fit a ${dtype} tensor, which holds ` +
          `integers from ${low} to ${high} (fractions are refused, not truncated: round them first)`,
      );
    }
  }
}

/**
 * A tensor holding `data` (row-major), of shape `shape` (default: 1-D). For `i32` and `u8`
 * every value must be an integer in the dtype's range (else it throws, naming the first bad value
 * and its index).
 *
 * @example A 2x3 float tensor and integer labels, read back
 * ```ts
 * import { init, tensor } from "@wgtorch/wgtorch";
 *
 * await init();
 * const x = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
 * const labels = tensor([0, 2], [2], { dtype: "i32" });
 * console.log(x.shape, labels.dtype); // [2, 3] "i32"
 * console.log(await x.toArray()); // Float32Array(6) [1, 2, 3, 4, 5, 6]
 * x.dispose();
 * labels.dispose();
 * ```
 */
export function tensor(
  data: ArrayLike<number>,
  shape: readonly number[] = [data.length],
  options: TensorOptions = {},
): Tensor {
  return fromData(data, shape, options);
}

/** A tensor of `shape` with every element `value`. */
export function full(shape: readonly number[], value: number, options: TensorOptions = {}): Tensor {
  const dtype = options.dtype ?? "f32";
  if (dtype === "u8") throw new Error("full: u8 tensors can only be made from data");
  checkIntegers("full", [value], dtype);
  const out = Tensor.empty(shape, dtype);
  fillWords(out.buffer, out.size, valueBits(value, dtype));
  out.requiresGrad = options.requiresGrad ?? false;
  return out;
}

/** A tensor of zeros. */
export function zeros(shape: readonly number[], options: TensorOptions = {}): Tensor {
  return full(shape, 0, options);
}

/** A tensor of ones. */
export function ones(shape: readonly number[], options: TensorOptions = {}): Tensor {
  return full(shape, 1, options);
}

/** Options for random tensors: a seed or a generator (same seed, same values). */
export interface RandomOptions extends TensorOptions {
  /** Seed of a new generator; ignored when `rng` is given. */
  seed?: number;
  /**
   * A generator to draw from (advances it). Without `rng` or `seed`, the values come from the
   * default generator that `manualSeed` seeds (as `torch.rand` draws from the global one).
   */
  rng?: Rng;
}

/** A tensor of values drawn uniformly from [low, high). */
export function randUniform(
  shape: readonly number[],
  range: { low?: number; high?: number } & RandomOptions = {},
): Tensor {
  const rng = range.rng ?? (range.seed === undefined ? defaultGenerator() : new Rng(range.seed));
  const low = range.low ?? 0, high = range.high ?? 1;
  const values = new Float32Array(checkShape(shape));
  for (let i = 0; i < values.length; i++) values[i] = low + (high - low) * rng.next();
  return fromData(values, shape, { requiresGrad: range.requiresGrad });
}

/** A tensor of values drawn from a normal distribution. */
export function randNormal(
  shape: readonly number[],
  moments: { mean?: number; std?: number } & RandomOptions = {},
): Tensor {
  const rng = moments.rng ??
    (moments.seed === undefined ? defaultGenerator() : new Rng(moments.seed));
  const mean = moments.mean ?? 0, std = moments.std ?? 1;
  const values = new Float32Array(checkShape(shape));
  for (let i = 0; i < values.length; i++) values[i] = mean + std * rng.normal();
  return fromData(values, shape, { requiresGrad: moments.requiresGrad });
}
