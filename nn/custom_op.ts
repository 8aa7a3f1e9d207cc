/**
 * Custom ops: one's own WGSL kernel as a differentiable wgtorch op, and `markWritten` for tensors
 * written with one's own WebGPU commands.
 *
 * `customOp(definition)` turns a WGSL function computing one output element (or four, with
 * `vectorized`) into an op function. The kernel goes through the kernel layer (`runKernel`), so
 * binding, texture-or-storage inputs, workgroup planning, the compile cache and buffer versions
 * are handled as for the built-in ops; shapes and constants are baked into the code (one pipeline
 * per shape, cached). The backward is either one WGSL function per input (the gradient of that
 * input, element by element) or a function composed of existing ops.
 *
 * **Writing tensors with your own WebGPU commands.** wgtorch encodes its kernels into one command
 * stream that it submits lazily, and its kernels read inputs through texture mirrors that are
 * copied again only when wgtorch itself wrote the buffer. To write a tensor's `buffer` yourself:
 *
 * 1. call `flush()` (from `nn/gpu/stream.ts`, exported by the entry point), so that wgtorch's
 *    commands issued so far are submitted before yours (also needed before your own pass reads
 *    a wgtorch output);
 * 2. write it (`gpu().device.queue.writeBuffer(t.buffer, ...)`, or your own compute pass and
 *    `queue.submit`);
 * 3. call `markWritten(t)`, so that the next wgtorch op reading `t` sees the new contents.
 *
 * @module
 */

import { isGradEnabled, recordOp } from "./autograd.ts";
import { f32, RUNTIME_BITS_WGSL, runtimeF32, u32 } from "./gpu/kernel.ts";
import { type KernelSpec, runKernel } from "./gpu/program.ts";
import { markBufferWritten } from "./gpu/stream.ts";
import { tidy } from "./scope.ts";
import { formatShape, Tensor } from "./tensor.ts";

/** What a kernel's WGSL may depend on: the shapes of the call and the resolved constants. */
export interface CustomOpInfo {
  /** Each input's shape, by input name. */
  shapes: Readonly<Record<string, readonly number[]>>;
  /** The output's shape. */
  outputShape: readonly number[];
  /** The constants of the call (`CustomOpDefinition.constants`), by name. */
  constants: Readonly<Record<string, number>>;
}

/**
 * WGSL: the body of `fn forward(i: u32) -> f32` (or, for a gradient, `fn gradient(i: u32) ->
 * f32`), or a single expression (when it has no `return`). With `vectorized`, the index is `j`
 * and the function returns the `vec4<f32>` of elements 4j..4j+3. A function gets the call's
 * shapes and constants; it must depend on nothing else (its code is cached by them).
 */
export type CustomWgsl = string | ((info: CustomOpInfo) => string);

/**
 * A backward composed of existing ops: given the output's gradient, the op's inputs and its
 * output, one gradient (a new tensor of that input's shape) or `null` per input. It runs without
 * recording a graph, in a `tidy`: tensors it creates and does not return are disposed.
 */
export type CustomBackwardFunction = (
  grad: Tensor,
  inputs: readonly Tensor[],
  output: Tensor,
) => readonly (Tensor | null)[];

/** A custom op: its inputs, its WGSL and its gradients. */
export interface CustomOpDefinition {
  /** The op's name, for errors, profiles and the kernel cache (letters, digits, `_`). */
  name: string;
  /**
   * The names of the op's f32 tensor inputs, in call order (a lowercase letter, then letters and
   * digits). The WGSL reads input `x` with `xAt(i)` (element i, row-major) and `xVec4(j)`
   * (elements 4j..4j+3; past the end: padding), and has its size and dimensions as constants
   * `X_SIZE`, `X_DIM0`, `X_DIM1`, ... (the name in upper snake case: `biasTerm` → `BIAS_TERM`).
   */
  inputs: readonly string[];
  /**
   * The output's element `i`: see `CustomWgsl`. `SIZE`, `DIM0`, `DIM1`, ... are the output's
   * size and dimensions (u32 constants). E.g. `"xAt(i) * sig(BETA * xAt(i))"` is swish, given
   * a `sig` helper and a constant `BETA`.
   */
  forward: CustomWgsl;
  /** The output's shape from the inputs' shapes (default: the first input's shape). */
  outputShape?: (shapes: readonly (readonly number[])[]) => readonly number[];
  /**
   * Numbers baked into the WGSL as f32 constants (`const BETA: f32 = 1.5;`), or a function of the
   * input shapes giving them. ±Infinity works too (as a private variable set when the kernel
   * starts, since WGSL has no infinite constant); NaN is refused. Each new value compiles a new
   * pipeline: pass values that change every call as a tensor instead.
   */
  constants?:
    | Readonly<Record<string, number>>
    | ((shapes: readonly (readonly number[])[]) => Readonly<Record<string, number>>);
  /** WGSL helper functions (and constants) placed before the kernel, shared by all its kernels. */
  helpers?: string;
  /**
   * Four elements per invocation (index `j`, `vec4<f32>` results, read with `xVec4(j)`): the fast
   * form on every GPU, for element-wise ops whose inputs all have the output's size. Default:
   * one element per invocation (index `i`, `f32` results, read with `xAt(i)`).
   */
  vectorized?: boolean;
  /** Invocations per workgroup (default: the adapter policy's choice for element-wise kernels). */
  workgroupSize?: number;
  /**
   * The gradients: either WGSL per input, by input name (element i of that input's gradient, with
   * the readers `gradAt`/`gradVec4` of the output's gradient, `outputAt`/`outputVec4` of the
   * op's output, and those of the inputs; `SIZE` and `DIMk` are the input's; inputs not named get
   * no gradient), or a function composed of existing ops (`CustomBackwardFunction`). Without
   * it, the op is not differentiable (it throws if an input requires a gradient).
   */
  backward?: Readonly<Record<string, CustomWgsl>> | CustomBackwardFunction;
}

/** A custom op: the definition's inputs, in order, to a new f32 tensor. */
export type CustomOp = (...inputs: Tensor[]) => Tensor;

/** What one call of an element kernel bakes in (its cache key). */
interface ElementOptions {
  /** The tensors bound (those the code reads), in binding order. */
  bound: readonly string[];
  /** Shapes of every tensor the code may name (bound or not), by name. */
  shapes: Readonly<Record<string, readonly number[]>>;
  outputShape: readonly number[];
  constants: Readonly<Record<string, number>>;
  /** The WGSL source of the element function, from the above. */
  source: string;
}

const OP_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const INPUT_NAME = /^[a-z][A-Za-z0-9]*$/;
const CONSTANT_NAME = /^[A-Z][A-Z0-9_]*$/;
/** Names the gradient kernels give to their extra readers. */
const RESERVED = new Set(["grad", "output", "out"]);
const OUTPUT = "custom_out";

/** `biasTerm` → `BIAS_TERM`. */
function upperSnake(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase();
}

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function shapeConstants(prefix: string, shape: readonly number[]): string {
  const lines = [`const ${prefix}SIZE: u32 = ${u32(sizeOf(shape))};`];
  shape.forEach((dim, k) => lines.push(`const ${prefix}DIM${k}: u32 = ${u32(dim)};`));
  return lines.join("\n");
}

/** The body of the element function: statements with a `return`, or one expression. */
function functionBody(source: string): string {
  return /\breturn\b/.test(source) ? source : `return ${source};`;
}

/**
 * The kernel of one element function: its f32 inputs are `options.bound` (in this order), its
 * output one f32 (or vec4) per invocation.
 */
function elementKernel(
  name: string,
  fn: "forward" | "gradient",
  definition: CustomOpDefinition,
): KernelSpec<ElementOptions> {
  const vectorized = definition.vectorized ?? false;
  const index = vectorized ? "j" : "i";
  const count = ({ outputShape }: ElementOptions) =>
    vectorized ? Math.ceil(sizeOf(outputShape) / 4) : sizeOf(outputShape);
  return {
    name,
    key: ({ bound, shapes, outputShape, constants }) =>
      [
        bound.join("+"),
        ...Object.entries(shapes).map(([k, shape]) => `${k}${shape.join("x")}`),
        `out${outputShape.join("x")}`,
        ...Object.entries(constants).map(([k, v]) => `${k}=${v}`),
      ].join("_"),
    bindings: ({ bound }) => [
      ...bound.map((reader) => ({ name: reader, role: "input" as const })),
      { name: OUTPUT, role: "write", type: vectorized ? "vec4<f32>" : "f32" },
    ],
    plan: (options, policy) => {
      const workgroupSize = definition.workgroupSize ?? policy.elementwiseWorkgroup;
      return { workgroupSize, groups: Math.ceil(count(options) / workgroupSize) };
    },
    prelude: ({ shapes, outputShape, constants, source }) => /* wgsl */ `
${shapeConstants("", outputShape)}
${
      Object.entries(shapes).map(([k, shape]) => shapeConstants(`${upperSnake(k)}_`, shape))
        .join("\n")
    }
${constantDeclarations(constants)}
${definition.helpers ?? ""}
fn ${fn}(${index}: u32) -> ${vectorized ? "vec4<f32>" : "f32"} {
  ${functionBody(source)}
}`,
    body: (options, { plan }) =>
      /* wgsl */ `${infiniteConstantValues(options.constants)}
  let ${index} = group * ${u32(plan.workgroupSize)} + lid;
  if (${index} < ${u32(count(options))}) { ${OUTPUT}[${index}] = ${fn}(${index}); }`,
  };
}

/**
 * The constants as WGSL: `const` for finite ones; an infinite one (which WGSL cannot spell as a
 * constant) is a private variable the kernel sets first (`infiniteConstantValues`).
 */
function constantDeclarations(constants: Readonly<Record<string, number>>): string {
  const entries = Object.entries(constants);
  const declarations = entries.map(([k, v]) =>
    Number.isFinite(v) ? `const ${k}: f32 = ${f32(v)};` : `var<private> ${k}: f32;`
  );
  if (entries.some(([, v]) => !Number.isFinite(v))) declarations.push(RUNTIME_BITS_WGSL);
  return declarations.join("\n");
}

function infiniteConstantValues(constants: Readonly<Record<string, number>>): string {
  return Object.entries(constants).filter(([, v]) => !Number.isFinite(v))
    .map(([k, v]) => `\n  ${k} = ${runtimeF32(v)};`).join("");
}

function checkDefinition(definition: CustomOpDefinition): void {
  const { name, inputs } = definition;
  if (typeof name !== "string" || !OP_NAME.test(name)) {
    throw new Error(
      `customOp: name must be letters, digits and _ (not starting with a digit), got ` +
        JSON.stringify(name),
    );
  }
  if (!Array.isArray(inputs) || inputs.length === 0) {
    throw new Error(`customOp ${name}: inputs must name at least one input, got ${inputs}`);
  }
  const seen = new Set<string>();
  for (const input of inputs) {
    if (typeof input !== "string" || !INPUT_NAME.test(input) || RESERVED.has(input)) {
      throw new Error(
        `customOp ${name}: input name ${JSON.stringify(input)} must be a lowercase letter then ` +
          `letters and digits, and not ${[...RESERVED].join(", ")}`,
      );
    }
    const upper = upperSnake(input);
    if (seen.has(upper)) throw new Error(`customOp ${name}: input ${input} is named twice`);
    seen.add(upper);
  }
  const { backward, workgroupSize } = definition;
  if (
    workgroupSize !== undefined &&
    (!Number.isInteger(workgroupSize) || workgroupSize < 1 || workgroupSize > 256)
  ) {
    throw new Error(
      `customOp ${name}: workgroupSize must be an integer from 1 to 256, got ${workgroupSize}`,
    );
  }
  if (backward !== undefined && typeof backward !== "function") {
    for (const key of Object.keys(backward)) {
      if (!inputs.includes(key)) {
        throw new Error(
          `customOp ${name}: backward names "${key}", which is not an input (inputs: ` +
            `${inputs.join(", ")})`,
        );
      }
    }
  }
}

function resolveConstants(
  name: string,
  definition: CustomOpDefinition,
  shapes: readonly (readonly number[])[],
): Readonly<Record<string, number>> {
  const given = definition.constants;
  const constants = typeof given === "function" ? given(shapes) : given ?? {};
  for (const [key, value] of Object.entries(constants)) {
    if (!CONSTANT_NAME.test(key) || key === "SIZE" || /(^|_)(SIZE|DIM\d+)$/.test(key)) {
      throw new Error(
        `${name}: constant name "${key}" must be upper case (A-Z, 0-9, _) and not SIZE or ` +
          `end in _SIZE or _DIMk (those are the shapes')`,
      );
    }
    if (typeof value !== "number" || Number.isNaN(value)) {
      throw new Error(`${name}: constant ${key} must be a number (not NaN), got ${value}`);
    }
  }
  return constants;
}

function checkShape(name: string, what: string, shape: unknown): readonly number[] {
  if (
    !Array.isArray(shape) || !shape.every((dim) => Number.isInteger(dim) && dim >= 0)
  ) {
    throw new Error(`${name}: ${what} must be an array of integers >= 0, got ${String(shape)}`);
  }
  return shape;
}

function resolveWgsl(wgsl: CustomWgsl, info: CustomOpInfo): string {
  return typeof wgsl === "function" ? wgsl(info) : wgsl;
}

/** Whether WGSL `source` reads the tensor bound as `reader`. */
function reads(source: string, reader: string): boolean {
  return new RegExp(`\\b${reader}(At|Vec4)\\s*\\(`).test(source);
}

/**
 * Runs one element kernel into a new tensor of `outputShape`: `tensors` are every tensor its code
 * may name (their shapes become constants), `bound` those it reads.
 */
function runElement(
  spec: KernelSpec<ElementOptions>,
  bound: readonly string[],
  tensors: Readonly<Record<string, Tensor>>,
  outputShape: readonly number[],
  constants: Readonly<Record<string, number>>,
  source: string,
): Tensor {
  const out = Tensor.empty(outputShape);
  if (out.size === 0) return out;
  const shapes = Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, t.shape]));
  const resources = Object.fromEntries(bound.map((reader) => [reader, tensors[reader]]));
  runKernel(spec, { bound, shapes, outputShape, constants, source }, {
    ...resources,
    [OUTPUT]: out,
  });
  return out;
}

/**
 * Defines a custom op from WGSL: a forward kernel computing one output element per invocation
 * (or four, with `vectorized`), and a backward as WGSL per input or as existing ops. Returns the
 * op function, which checks its inputs, runs the kernel through the kernel layer (inputs read as
 * textures or storage as the adapter policy says; one pipeline per shape, cached) and records
 * the op for autograd. Its output is a wgtorch tensor like any other: later ops see it.
 *
 * WGSL compile errors surface, with the numbered source and the op's name, at the next
 * readback (`toArray()`, `item()`) or `sync()`.
 *
 * @example Swish, x · sigmoid(βx), with its gradient as a second kernel
 * ```ts
 * import { customOp, init, sum, tensor } from "@wgtorch/wgtorch";
 *
 * await init();
 * const swish = customOp({
 *   name: "swish",
 *   inputs: ["x"],
 *   constants: { BETA: 1.5 },
 *   helpers: "fn sig(v: f32) -> f32 { return 1.0 / (1.0 + exp(-v)); }",
 *   forward: "xAt(i) * sig(BETA * xAt(i))",
 *   backward: {
 *     x: `let x = xAt(i); let s = sig(BETA * x);
 *         return gradAt(i) * (s + BETA * x * s * (1.0 - s));`,
 *   },
 * });
 * const x = tensor([-1, 0, 2], [3], { requiresGrad: true });
 * const y = swish(x);
 * sum(y).backward();
 * console.log(await y.toArray(), await x.grad!.toArray());
 * ```
 *
 * @example A backward composed of existing ops: a * b + a
 * ```ts
 * import { add, customOp, init, mul, tensor } from "@wgtorch/wgtorch";
 *
 * await init();
 * const mulAdd = customOp({
 *   name: "mul_add",
 *   inputs: ["a", "b"],
 *   vectorized: true,
 *   forward: "aVec4(j) * bVec4(j) + aVec4(j)",
 *   backward: (grad, [a, b]) => [mul(grad, add(b, 1)), mul(grad, a)],
 * });
 * const a = tensor([1, 2], [2]), b = tensor([3, 4], [2]);
 * console.log(await mulAdd(a, b).toArray()); // [4, 10]
 * ```
 */
export function customOp(definition: CustomOpDefinition): CustomOp {
  checkDefinition(definition);
  const { name, inputs, backward } = definition;
  const forwardSpec = elementKernel(`custom_${name}`, "forward", definition);
  const gradientSpecs = new Map<string, { spec: KernelSpec<ElementOptions>; wgsl: CustomWgsl }>();
  if (backward !== undefined && typeof backward !== "function") {
    for (const [input, wgsl] of Object.entries(backward)) {
      gradientSpecs.set(input, {
        spec: elementKernel(`custom_${name}_grad_${input}`, "gradient", definition),
        wgsl,
      });
    }
  }

  const op = (...args: Tensor[]): Tensor => {
    if (args.length !== inputs.length) {
      throw new Error(
        `${name}: takes ${inputs.length} tensor${inputs.length === 1 ? "" : "s"} ` +
          `(${inputs.join(", ")}), got ${args.length}`,
      );
    }
    args.forEach((arg, k) => {
      if (!(arg instanceof Tensor)) {
        throw new Error(`${name}: input ${inputs[k]} must be a Tensor, got ${typeof arg}`);
      }
      if (arg.dtype !== "f32") {
        throw new Error(
          `${name}: input ${inputs[k]} must be an f32 tensor, got ${arg.dtype} of shape ` +
            formatShape(arg.shape),
        );
      }
      void arg.buffer; // throws the used-after-dispose error
    });
    const shapes = args.map((arg) => arg.shape);
    const outputShape = checkShape(
      name,
      "outputShape(...)",
      definition.outputShape ? definition.outputShape(shapes) : shapes[0],
    );
    const constants = resolveConstants(name, definition, shapes);
    const named = Object.fromEntries(inputs.map((input, k) => [input, args[k]]));
    const info: CustomOpInfo = {
      shapes: Object.fromEntries(inputs.map((input, k) => [input, shapes[k]])),
      outputShape,
      constants,
    };
    const source = resolveWgsl(definition.forward, info);
    const out = runElement(forwardSpec, inputs, named, outputShape, constants, source);
    if (backward === undefined) {
      const needy = !isGradEnabled() ? -1 : args.findIndex((arg) => arg.requiresGrad);
      if (needy >= 0) {
        out.dispose();
        throw new Error(
          `${name}: input ${inputs[needy]} requires a gradient, but the op has no backward ` +
            `(give the definition a backward, or call it under noGrad)`,
        );
      }
      return out;
    }
    return recordOp(name, out, args, (grad) => {
      if (typeof backward === "function") {
        const grads = tidy(() => backward(grad, args, out));
        return checkGradients(name, inputs, args, grads, grad);
      }
      return inputs.map((input, k) => {
        const gradient = gradientSpecs.get(input);
        if (!gradient || !args[k].requiresGrad) return null;
        const source = resolveWgsl(gradient.wgsl, info);
        // Only the tensors the gradient's code reads are bound (the key follows the source).
        const tensors: Record<string, Tensor> = { grad, output: out, ...named };
        const bound = Object.keys(tensors).filter((t) => t === "grad" || reads(source, t));
        return runElement(gradient.spec, bound, tensors, args[k].shape, constants, source);
      });
    });
  };
  Object.defineProperty(op, "name", { value: name });
  return op;
}

/** Checks what a composed backward returned: one gradient or null per input, of its shape. */
function checkGradients(
  name: string,
  inputs: readonly string[],
  args: readonly Tensor[],
  grads: readonly (Tensor | null)[],
  grad: Tensor,
): (Tensor | null)[] {
  if (!Array.isArray(grads) || grads.length !== inputs.length) {
    throw new Error(
      `${name} backward: must return one gradient (or null) per input (${inputs.join(", ")}), ` +
        `got ${Array.isArray(grads) ? grads.length : typeof grads}`,
    );
  }
  return grads.map((g, k) => {
    if (g === null || g === undefined) return null;
    if (!(g instanceof Tensor) || g.dtype !== "f32") {
      throw new Error(`${name} backward: the gradient of ${inputs[k]} must be an f32 Tensor`);
    }
    if (g.shape.join() !== args[k].shape.join()) {
      throw new Error(
        `${name} backward: the gradient of ${inputs[k]} has shape ${formatShape(g.shape)}, ` +
          `the input has ${formatShape(args[k].shape)}`,
      );
    }
    // Autograd owns grad: hand back a view of it rather than grad itself.
    return g === grad ? grad.view() : g;
  });
}

/**
 * Tells wgtorch that `tensors` were written by your own WebGPU commands (`queue.writeBuffer`
 * into `t.buffer`, or your own compute pass): texture mirrors of them are refreshed before the
 * next op reads them. Call `flush()` before writing (so that wgtorch's earlier commands run
 * first), and this after; it throws if wgtorch commands not yet submitted use one of them.
 *
 * @example Uploading new values with the device's queue
 * ```ts
 * import { flush, gpu, init, markWritten, neg, tensor } from "@wgtorch/wgtorch";
 *
 * await init();
 * const x = tensor([1, 2, 3, 4], [4]);
 * neg(x).dispose();
 * flush();
 * gpu().device.queue.writeBuffer(x.buffer, 0, new Float32Array([5, 6, 7, 8]));
 * markWritten(x);
 * console.log(await neg(x).toArray()); // [-5, -6, -7, -8]
 * ```
 */
export function markWritten(...tensors: Tensor[]): void {
  for (const t of tensors) {
    if (!(t instanceof Tensor)) {
      throw new Error(`markWritten: takes tensors, got ${typeof t}`);
    }
    markBufferWritten(t.buffer);
  }
}
