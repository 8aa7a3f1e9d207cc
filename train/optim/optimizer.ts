/**
 * `Optimizer`: the base of SGD, Adam and AdamW. It owns the per-parameter state tensors
 * (created lazily on a parameter's first step, kept outside any `tidy`), counts steps per
 * parameter on the CPU (so that `step()` never reads the GPU), and shares one params-ring slot
 * per distinct set of step scalars among all the parameters' update kernels. With
 * `watchFinite`, each update kernel also flags, on the GPU, a parameter that stops being finite.
 *
 * @module
 */

import {
  type BindingSpec,
  type KernelPlan,
  type KernelSpec,
  planKernel,
  runKernel,
  sharedParams,
} from "../../nn/gpu/program.ts";
import { u32 } from "../../nn/gpu/kernel.ts";
import { checkStateDictShapes } from "../../nn/safetensors.ts";
import { keep } from "../../nn/scope.ts";
import { copyBuffer, type ParamsSlot } from "../../nn/gpu/stream.ts";
import { formatShape, Tensor } from "../../nn/tensor.ts";
import { maxElementsPerTexture } from "../../nn/gpu/texture.ts";

/** Hyperparameters as saved in a state dict (flat, JSON-friendly). */
export type Hyperparameters = Record<string, number | boolean>;

/** An optimizer's state: save it with the model to resume training exactly. */
export interface OptimizerStateDict {
  /** The optimizer's kind: `SGD`, `Adam` or `AdamW`. */
  optimizer: string;
  /** Number of `step()` calls so far. */
  step: number;
  /** Steps each parameter has taken (parameters whose grad was null are not counted). */
  paramSteps: number[];
  /**
   * State tensors named `<parameter index>.<name>`, e.g. `0.exp_avg`, `0.exp_avg_sq`,
   * `3.momentum_buffer` (present for parameters that took at least one step).
   */
  state: Record<string, Tensor>;
  /** Hyperparameters, `lr` included. */
  hyperparameters: Hyperparameters;
}

/** Options every optimizer takes. */
export interface OptimizerOptions {
  /** Learning rate. */
  lr: number;
}

/**
 * Where update kernels report a parameter that became NaN or infinite (see
 * `Optimizer.watchFinite`): each kernel binds `tensor` read-write as `array<f32>` named
 * `watch_flags` and runs the WGSL statements `mark(index)` when some new value of parameter
 * `index` is not finite (any of its invocations may run them, at once).
 */
export interface FiniteWatch {
  /** The flags' buffer (f32). */
  tensor: Tensor;
  /** WGSL statements on `watch_flags` recording that parameter `index` is not finite. */
  mark: (index: number) => string;
}

/** What `update` gets for one parameter with a gradient. */
export interface ParameterUpdate {
  /** The parameter's index in `params`. */
  index: number;
  /** The parameter, updated in place. */
  param: Tensor;
  /** Its gradient (same size, f32). */
  grad: Tensor;
  /** Its state tensors by name (uninitialised on its first step: see `fresh`). */
  state: Record<string, Tensor>;
  /** Steps this parameter has taken, this one included (1 on its first step). */
  step: number;
  /** True when the state tensors were just created and hold no values yet. */
  fresh: boolean;
  /** Where to flag non-finite new values (`watchFinite`), if anywhere. */
  watch?: FiniteWatch;
}

/** The params slots of the `step()` running now (steps are synchronous: one at a time). */
const stepSlots = new Map<string, ParamsSlot>();

/**
 * For `update()` implementations: a params-ring slot holding `values` (as f32), shared by every
 * dispatch of the running `step()` that asks for the same values, so a step usually uses one.
 */
export function stepSlot(values: readonly number[]): ParamsSlot {
  const key = values.join(",");
  let slot = stepSlots.get(key);
  if (!slot) stepSlots.set(key, slot = sharedParams(new Float32Array(values)));
  return slot;
}

/** What an update kernel's code depends on, besides its rule. */
export interface UpdateOptions<Settings> {
  /** The optimizer's hyperparameters that its WGSL bakes in. */
  settings: Settings;
  /** Elements of the parameter. */
  size: number;
  /** Names of its state tensors, in binding order. */
  state: readonly string[];
  /** Read every tensor through textures (from the plan: see `encodeUpdate`). */
  textured: boolean;
  /** The parameter's index, baked in when watched. */
  index: number;
  /** Where to flag non-finite new values; `mark` must depend on the index only. */
  watch?: FiniteWatch;
}

/** Each invocation loops over a run of `perInvocation` vectors of 4 elements. */
export interface UpdatePlan extends KernelPlan {
  groups: number;
  perInvocation: number;
  /** Whether the policy reads the tensors through textures at this size. */
  textured: boolean;
}

/**
 * The optimizer-specific part of an update kernel. Its `body` (statements for vector `j`) reads
 * `param_data`, `grad_data` and each state tensor (by its name) with `load_<name>(j)`, stores
 * `vec4`s to the state tensors, updated in place, and ends with `let updated = ...;`, the new
 * parameter values.
 */
export interface UpdateRule<Settings> {
  /** Kernel name. */
  name: string;
  /** A short string that differs whenever `constants` or `body` would. */
  key(settings: Settings): string;
  /** Fields of the per-step `Params` uniform (filled from `stepSlot`). */
  params: string;
  /** WGSL constants. */
  constants(settings: Settings): string;
  /** WGSL statements updating vector `j` (see above). */
  body(settings: Settings): string;
}

/**
 * The element-wise update kernel of `rule`, 4 elements at a time: it stores `updated` to
 * `param_data[j]` (the last vector may run into the buffers' padding, which nothing reads) and,
 * with a `watch`, tests it for NaN and infinity. Large tensors are read through textures (the
 * written ones too, then), else from storage. Narrow workgroups (one SIMD vector on llvmpipe)
 * loop over runs of vectors, which beats one vector per invocation in big workgroups there.
 */
export function updateSpec<Settings>(
  rule: UpdateRule<Settings>,
): KernelSpec<UpdateOptions<Settings>, UpdatePlan> {
  const tensors = (state: readonly string[]) => ["param_data", "grad_data", ...state];
  const written = (state: readonly string[]) => ["param_data", ...state];
  return {
    name: rule.name,
    key: ({ settings, size, state, textured, index, watch }) =>
      [
        size,
        textured ? "textures" : "",
        watch ? `watched${index}` : "",
        ...state,
        rule.key(settings),
      ]
        .join("_"),
    // Untextured, the written tensors are read through their read-write binding: a second,
    // read-only binding of the same buffer in one dispatch is not allowed.
    bindings: ({ state, textured, watch }): BindingSpec[] => [
      ...(textured
        ? tensors(state).map((name): BindingSpec => ({ name: `${name}_texture`, role: "input" }))
        : [{ name: "grad_data", role: "read", type: "vec4<f32>" } as const]),
      ...written(state).map((name): BindingSpec => ({ name, role: "write", type: "vec4<f32>" })),
      ...(watch ? [{ name: "watch_flags", role: "write" } as const] : []),
    ],
    plan: ({ size }, policy) => {
      const vectors = Math.ceil(size / 4);
      const workgroupSize = policy.narrowWorkgroup;
      const groups = Math.max(
        1,
        Math.min(policy.updateMaxGroups, Math.ceil(vectors / workgroupSize)),
      );
      return {
        workgroupSize,
        groups,
        perInvocation: Math.ceil(vectors / (groups * workgroupSize)),
        // A tensor too large for a texture is read from storage rather than failing.
        textured: policy.textureInputs && size >= policy.updateTextureMinElements &&
          size <= maxElementsPerTexture(),
      };
    },
    params: rule.params,
    prelude: ({ settings, size, state, textured, index, watch }) => {
      const loads = tensors(state).map((name) =>
        `fn load_${name}(j: u32) -> vec4<f32> { return ${
          textured ? `${name}_textureVec4(j)` : `${name}[j]`
        }; }`
      );
      // Lanes past the end hold padding (any bits): not tested.
      const live = size % 4 === 0
        ? ""
        : ` & (vec4<u32>(0u, 1u, 2u, 3u) + 4u * j < vec4<u32>(${u32(size)}))`;
      const check = watch
        ? /* wgsl */ `
  // Exponent all ones: NaN or infinite (a bit test: compilers may assume floats are finite).
  let exponent = bitcast<vec4<u32>>(updated) & vec4<u32>(0x7f800000u);
  if (any(exponent == vec4<u32>(0x7f800000u)${live})) {
    ${watch.mark(index)}
  }`
        : "";
      return /* wgsl */ `
${rule.constants(settings)}
${loads.join("\n")}

fn update(j: u32) {
${rule.body(settings)}
  param_data[j] = updated;${check}
}`;
    },
    body: ({ size }, { plan }) => /* wgsl */ `
  let base = group * ${u32(plan.perInvocation * plan.workgroupSize)} + lid;
  for (var k = 0u; k < ${u32(plan.perInvocation)}; k++) {
    let j = base + k * ${u32(plan.workgroupSize)};
    if (j < ${u32(Math.ceil(size / 4))}) { update(j); }
  }`,
  };
}

/**
 * Encodes the update kernel `spec` (from `updateSpec`) of one parameter, its step scalars from
 * `slot`.
 */
export function encodeUpdate<Settings>(
  spec: KernelSpec<UpdateOptions<Settings>, UpdatePlan>,
  settings: Settings,
  { index, param, grad, state, watch }: ParameterUpdate,
  slot: ParamsSlot,
): void {
  const options: UpdateOptions<Settings> = {
    settings,
    size: param.size,
    state: Object.keys(state),
    textured: false,
    index,
    watch,
  };
  options.textured = planKernel(spec, options).textured;
  const resources: Record<string, Tensor> = { param_data: param, grad_data: grad, ...state };
  if (options.textured) {
    for (const [name, tensor] of Object.entries(resources)) resources[`${name}_texture`] = tensor;
  }
  if (watch) resources.watch_flags = watch.tensor;
  runKernel(spec, options, resources, { params: slot });
}

/** Throws `Invalid <what>: <value>` (PyTorch's wording) unless `value` is finite and >= 0. */
export function checkNonNegative(value: number, what: string): number {
  if (typeof value !== "number" || !(value >= 0) || !Number.isFinite(value)) {
    throw new Error(`Invalid ${what}: ${value}`);
  }
  return value;
}

/** Base class of the optimizers: see the module documentation. */
export abstract class Optimizer {
  /** The parameters, in the order given (state dict names use these indices). */
  readonly params: readonly Tensor[];
  #lr: number;
  #step = 0;
  #paramSteps: number[];
  #state: (Record<string, Tensor> | null)[];
  #disposed = false;
  #watch: FiniteWatch | null = null;

  /** Takes the parameters to optimize (f32 leaf tensors, each once) and the learning rate. */
  constructor(params: Iterable<Tensor>, options: OptimizerOptions) {
    this.#lr = checkNonNegative(options.lr, "learning rate");
    this.params = [...params];
    if (this.params.length === 0) throw new Error("optimizer got an empty parameter list");
    const seen = new Set<Tensor>();
    for (const [i, param] of this.params.entries()) {
      if (!(param instanceof Tensor)) {
        throw new Error(`optimizer: parameter ${i} is not a Tensor`);
      }
      if (seen.has(param)) throw new Error(`optimizer: parameter ${i} appears more than once`);
      seen.add(param);
      if (param.dtype !== "f32") {
        throw new Error(`optimizer: parameter ${i} is ${param.dtype}; only f32 can be optimized`);
      }
      if (param.node) {
        throw new Error(`optimizer: can't optimize a non-leaf Tensor (parameter ${i})`);
      }
    }
    this.#paramSteps = this.params.map(() => 0);
    this.#state = this.params.map(() => null);
  }

  /** The optimizer's kind, as saved in state dicts. */
  abstract get name(): string;

  /** Names of the state tensors each parameter gets under the current hyperparameters. */
  protected abstract stateNames(): readonly string[];

  /** Hyperparameters other than `lr`, for `stateDict()`. */
  protected abstract hyperparameters(): Hyperparameters;

  /** Validates and applies saved hyperparameters (other than `lr`): `loadStateDict()`. */
  protected abstract setHyperparameters(saved: Hyperparameters): void;

  /** Encodes the one fused update kernel of one parameter. */
  protected abstract update(target: ParameterUpdate): void;

  /** The learning rate used by the next `step()`. */
  get lr(): number {
    return this.#lr;
  }

  /** Sets the learning rate (finite, >= 0); LR schedulers call this. */
  set lr(value: number) {
    this.#lr = checkNonNegative(value, "learning rate");
  }

  /** Number of `step()` calls so far. */
  get stepCount(): number {
    return this.#step;
  }

  /**
   * Updates every parameter that has a gradient, in place: one kernel dispatch per parameter,
   * nothing read back. Parameters whose `grad` is null are skipped (their step count too).
   */
  step(): void {
    this.#checkAlive("step");
    for (const [index, param] of this.params.entries()) {
      if (param.grad) this.#checkGrad(index, param, param.grad);
    }
    stepSlots.clear();
    try {
      for (const [index, param] of this.params.entries()) {
        const grad = param.grad;
        if (!grad) continue;
        let state = this.#state[index];
        const fresh = state === null;
        if (!state) state = this.#state[index] = this.#createState(param);
        const step = ++this.#paramSteps[index];
        const watch = this.#watch ?? undefined;
        this.update({ index, param, grad, state, step, fresh, watch });
      }
    } finally {
      stepSlots.clear();
    }
    this.#step++;
  }

  /**
   * From the next `step()` on, every update kernel flags its parameter into `watch` when a new
   * value is NaN or infinite (on the GPU, nothing read back); null stops. `fit` watches while
   * it trains.
   */
  watchFinite(watch: FiniteWatch | null): void {
    this.#watch = watch;
  }

  /** Disposes every parameter's gradient and sets it to null (PyTorch's `set_to_none`). */
  zeroGrad(): void {
    for (const param of this.params) {
      param.grad?.dispose();
      param.grad = null;
    }
  }

  /**
   * The state: step counts, hyperparameters and the optimizer's own state tensors (not copies:
   * do not dispose them; the next `step()` changes them). Save it with `saveSafetensors` (the
   * tensors) plus JSON of the rest in the metadata.
   */
  stateDict(): OptimizerStateDict {
    this.#checkAlive("stateDict");
    const state: Record<string, Tensor> = {};
    for (const [index, tensors] of this.#state.entries()) {
      for (const [name, tensor] of Object.entries(tensors ?? {})) {
        state[`${index}.${name}`] = tensor;
      }
    }
    return {
      optimizer: this.name,
      step: this.#step,
      paramSteps: [...this.#paramSteps],
      state,
      hyperparameters: { lr: this.#lr, ...this.hyperparameters() },
    };
  }

  /**
   * Restores a state saved by `stateDict()` of the same kind of optimizer over parameters of
   * the same shapes: hyperparameters (lr included), step counts, and a copy of every state
   * tensor (the given tensors stay the caller's). Throws, changing nothing, on any mismatch.
   */
  loadStateDict(saved: OptimizerStateDict): void {
    this.#checkAlive("loadStateDict");
    const what = `${this.name}.loadStateDict`;
    if (saved.optimizer !== this.name) {
      throw new Error(`${what}: the state dict is from ${saved.optimizer}, not ${this.name}`);
    }
    if (!Number.isSafeInteger(saved.step) || saved.step < 0) {
      throw new Error(`${what}: invalid step ${saved.step}`);
    }
    const steps = saved.paramSteps;
    if (
      !Array.isArray(steps) || steps.length !== this.params.length ||
      steps.some((n) => !Number.isSafeInteger(n) || n < 0)
    ) {
      throw new Error(
        `${what}: paramSteps must be ${this.params.length} integers >= 0, got ` +
          JSON.stringify(steps),
      );
    }
    const { lr, ...rest } = saved.hyperparameters;
    checkNonNegative(lr as number, "learning rate");
    const previous = this.hyperparameters();
    this.setHyperparameters(rest);
    try {
      this.#checkSavedState(saved, what);
    } catch (error) {
      this.setHyperparameters(previous);
      throw error;
    }
    this.#lr = lr as number;
    for (const [index, param] of this.params.entries()) {
      if (steps[index] === 0) {
        for (const tensor of Object.values(this.#state[index] ?? {})) tensor.dispose();
        this.#state[index] = null;
        continue;
      }
      let state = this.#state[index];
      const names = this.stateNames();
      if (!state || Object.keys(state).join() !== names.join()) {
        for (const tensor of Object.values(state ?? {})) tensor.dispose();
        state = this.#state[index] = this.#createState(param);
      }
      for (const [name, target] of Object.entries(state)) {
        const source = saved.state[`${index}.${name}`].buffer;
        if (source !== target.buffer) copyBuffer(source, target.buffer, target.byteLength);
      }
    }
    this.#paramSteps = [...steps];
    this.#step = saved.step;
  }

  /** Frees the state tensors. The optimizer cannot be used afterwards. */
  dispose(): void {
    for (const tensors of this.#state) {
      for (const tensor of Object.values(tensors ?? {})) tensor.dispose();
    }
    this.#state = this.params.map(() => null);
    this.#disposed = true;
  }

  /** True once `dispose()` was called. */
  get isDisposed(): boolean {
    return this.#disposed;
  }

  #checkAlive(method: string): void {
    if (this.#disposed) throw new Error(`${this.name}.${method}(): the optimizer was disposed`);
  }

  #checkGrad(index: number, param: Tensor, grad: Tensor): void {
    if (grad.dtype !== "f32" || grad.size !== param.size) {
      throw new Error(
        `${this.name}.step(): parameter ${index} of shape ${formatShape(param.shape)} has a ` +
          `${grad.dtype} gradient of shape ${formatShape(grad.shape)}`,
      );
    }
    if (grad.buffer === param.buffer) {
      throw new Error(`${this.name}.step(): parameter ${index}'s gradient shares its buffer`);
    }
  }

  #createState(param: Tensor): Record<string, Tensor> {
    const state: Record<string, Tensor> = {};
    for (const name of this.stateNames()) state[name] = keep(Tensor.empty(param.shape));
    return state;
  }

  #checkSavedState(saved: OptimizerStateDict, what: string): void {
    const expected: Record<string, readonly number[]> = {};
    for (const [index, param] of this.params.entries()) {
      if (saved.paramSteps[index] === 0) continue;
      for (const name of this.stateNames()) expected[`${index}.${name}`] = param.shape;
    }
    const got: Record<string, readonly number[]> = {};
    for (const [name, tensor] of Object.entries(saved.state)) {
      if (!(tensor instanceof Tensor) || tensor.dtype !== "f32") {
        throw new Error(`${what}: state "${name}" is not an f32 Tensor`);
      }
      got[name] = tensor.shape;
    }
    checkStateDictShapes(expected, got, what);
  }
}
