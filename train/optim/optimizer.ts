/**
 * `Optimizer`: the base of SGD, Adam, AdamW, RMSprop and Adagrad. It holds the parameter groups
 * (`paramGroups`: each a plain object of parameters and hyperparameters, read by every `step()`,
 * so schedulers may change them between steps), owns the per-parameter state tensors (created
 * lazily on a parameter's first step, kept outside any `tidy`), counts steps per parameter on the
 * CPU (so that `step()` never reads the GPU), and shares one params-ring slot per distinct set of
 * step scalars among all the parameters' update kernels. With `watchFinite`, each update kernel
 * also flags, on the GPU, a parameter that stops being finite.
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
import { itemLoop, type LoopPlan, loopPlan } from "../../nn/gpu/item_loop.ts";
import { checkStateDictShapes } from "../../nn/safetensors.ts";
import { keep } from "../../nn/scope.ts";
import { copyBuffer, type ParamsSlot } from "../../nn/gpu/stream.ts";
import { formatShape, Tensor } from "../../nn/tensor.ts";
import { maxElementsPerTexture } from "../../nn/gpu/texture.ts";
import { gpu } from "../../nn/gpu/device.ts";

/** Hyperparameters as saved in a state dict before parameter groups (flat, JSON-friendly). */
export type Hyperparameters = Record<string, number | boolean>;

/**
 * A parameter group, as PyTorch's `param_groups` entries: its parameters and its
 * hyperparameters as plain mutable fields (PyTorch's names in camelCase), read by every
 * `step()`. Learning-rate schedulers write `lr` (and `momentum` or `betas`).
 */
export interface ParamGroup {
  /** The group's parameters (fixed when the optimizer is made). */
  readonly params: readonly Tensor[];
  /** Learning rate (finite, >= 0). */
  lr: number;
}

/**
 * A parameter group as given to an optimizer: `params` plus any of the optimizer's options,
 * which override the defaults (the constructor's options) for this group.
 */
export type ParamGroupInput<Options extends object = OptimizerOptions> = Partial<Options> & {
  /** The group's parameters (f32 leaf tensors, each in one group only). */
  params: Iterable<Tensor> | Tensor;
};

/** What optimizers take: parameters (one group), or parameter groups. */
export type ParamsInput<Options extends object = OptimizerOptions> =
  | Iterable<Tensor>
  | readonly ParamGroupInput<Options>[];

/** A parameter group in a state dict: the indices of its parameters and its hyperparameters. */
export interface SavedParamGroup {
  /** Indices of the group's parameters in `Optimizer.params` (numbered across the groups). */
  params: number[];
  /** Hyperparameters by name (`lr`, `weightDecay`, `betas`...). */
  [hyperparameter: string]: number | boolean | number[];
}

/** An optimizer's state: save it with the model to resume training exactly. */
export interface OptimizerStateDict {
  /** The optimizer's kind: `SGD`, `Adam`, `AdamW`, `RMSprop` or `Adagrad`. */
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
  /** Each group's parameter indices and hyperparameters, `lr` included. */
  paramGroups: SavedParamGroup[];
}

/**
 * The state dict of wgtorch before parameter groups (one group, flat hyperparameters): still
 * accepted by `loadStateDict` (checkpoints saved then), for an optimizer with one group.
 */
export interface LegacyOptimizerStateDict {
  /** The optimizer's kind. */
  optimizer: string;
  /** Number of `step()` calls so far. */
  step: number;
  /** Steps each parameter has taken. */
  paramSteps: number[];
  /** State tensors named `<parameter index>.<name>`. */
  state: Record<string, Tensor>;
  /** Hyperparameters, `lr` included (Adam's betas as `beta1` and `beta2`). */
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
  /**
   * The state tensors its update uses now (`stateNames` of its group), by name; those in
   * `freshState` were just created and hold no values yet.
   */
  state: Record<string, Tensor>;
  /** Steps this parameter has taken, this one included (1 on its first step). */
  step: number;
  /** True when every tensor of `state` was just created (always on the first step). */
  fresh: boolean;
  /** Names of the tensors of `state` created for this step (uninitialised). */
  freshState: ReadonlySet<string>;
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
export interface UpdatePlan extends LoopPlan {
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
  const spec: KernelSpec<UpdateOptions<Settings>, UpdatePlan> = {
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
      return {
        ...loopPlan(Math.ceil(size / 4), policy),
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
    body: ({ size }, { plan }) => itemLoop(Math.ceil(size / 4), plan, "      update(j);", "j"),
  };
  multiSpecs.set(spec as KernelSpec<never, UpdatePlan>, multiUpdateSpec(rule));
  return spec;
}

/** What a multi-parameter update kernel's code depends on. */
interface MultiUpdateOptions<Settings> {
  /** The optimizer's hyperparameters that its WGSL bakes in. */
  settings: Settings;
  /** Elements of each parameter, in binding order. */
  sizes: readonly number[];
  /** Names of the state tensors (the same for every parameter), in binding order. */
  state: readonly string[];
  /** The parameters' indices (baked in when watched). */
  indices: readonly number[];
  /** Where to flag non-finite new values. */
  watch?: FiniteWatch;
}

/**
 * Each parameter gets its own run of workgroups, planned as its own dispatch would be (so a
 * workgroup never straddles two parameters); their invocations loop over runs of vectors.
 */
interface MultiUpdatePlan extends KernelPlan {
  groups: number;
  /** Workgroups of each parameter. */
  parameterGroups: number[];
  /** Vectors each invocation of each parameter updates. */
  perInvocation: number[];
}

/** The multi-parameter spec of each single-parameter spec made by `updateSpec`. */
const multiSpecs = new WeakMap<KernelSpec<never, UpdatePlan>, KernelSpec<never, MultiUpdatePlan>>();

/** `body` with every tensor name (and `load_<name>`) of the rule given suffix `_<k>`. */
function renameTensors(body: string, names: readonly string[], k: number): string {
  let out = body.replace(/\bload_(\w+)\(/g, `load_$1_${k}(`);
  for (const name of names) out = out.replace(new RegExp(`\\b${name}\\b`, "g"), `${name}_${k}`);
  return out;
}

/**
 * The update kernel of `rule` for several parameters in one dispatch (storage reads only): the
 * parameters' vectors are laid end to end, each invocation finds which parameter a vector belongs
 * to and runs that parameter's copy of the rule on its own bindings.
 */
function multiUpdateSpec<Settings>(
  rule: UpdateRule<Settings>,
): KernelSpec<MultiUpdateOptions<Settings>, MultiUpdatePlan> {
  const vectors = (sizes: readonly number[]) => sizes.map((size) => Math.ceil(size / 4));
  return {
    name: `${rule.name}_multi`,
    key: ({ settings, sizes, state, indices, watch }) =>
      [
        sizes.join("x"),
        watch ? `watched${indices.join("x")}` : "",
        ...state,
        rule.key(settings),
      ].join("_"),
    bindings: ({ sizes, state, watch }): BindingSpec[] => [
      ...sizes.flatMap((_, k): BindingSpec[] => [
        { name: `grad_data_${k}`, role: "read", type: "vec4<f32>" },
        ...["param_data", ...state].map((name): BindingSpec => ({
          name: `${name}_${k}`,
          role: "write",
          type: "vec4<f32>",
        })),
      ]),
      ...(watch ? [{ name: "watch_flags", role: "write" } as const] : []),
    ],
    plan: ({ sizes }, policy) => {
      const workgroupSize = policy.narrowWorkgroup;
      const parameterGroups = vectors(sizes).map((count) =>
        Math.max(1, Math.min(policy.updateMaxGroups, Math.ceil(count / workgroupSize)))
      );
      return {
        workgroupSize,
        groups: parameterGroups.reduce((a, b) => a + b, 0),
        parameterGroups,
        perInvocation: vectors(sizes).map((count, k) =>
          Math.max(1, Math.ceil(count / (parameterGroups[k] * workgroupSize)))
        ),
      };
    },
    params: rule.params,
    prelude: ({ settings, sizes, state, indices, watch }) => {
      const names = ["param_data", "grad_data", ...state];
      const functions = sizes.map((size, k) => {
        const loads = names.map((name) =>
          `fn load_${name}_${k}(j: u32) -> vec4<f32> { return ${name}_${k}[j]; }`
        );
        const live = size % 4 === 0
          ? ""
          : ` & (vec4<u32>(0u, 1u, 2u, 3u) + 4u * j < vec4<u32>(${u32(size)}))`;
        const check = watch
          ? /* wgsl */ `
  let exponent = bitcast<vec4<u32>>(updated) & vec4<u32>(0x7f800000u);
  if (any(exponent == vec4<u32>(0x7f800000u)${live})) {
    ${watch.mark(indices[k])}
  }`
          : "";
        return `${loads.join("\n")}

fn update_${k}(j: u32) {
${renameTensors(rule.body(settings), names, k)}
  param_data_${k}[j] = updated;${check}
}`;
      });
      return `${rule.constants(settings)}\n${functions.join("\n\n")}`;
    },
    body: ({ sizes }, { plan }) => {
      const counts = vectors(sizes);
      let first = 0;
      const branches = sizes.map((_, k) => {
        const groups = plan.parameterGroups[k], run = plan.perInvocation[k];
        const branch = `if (group < ${u32(first + groups)}) {
    let base = (group - ${u32(first)}) * ${u32(run * plan.workgroupSize)} + lid;
    for (var i = 0u; i < ${u32(run)}; i++) {
      let j = base + i * ${u32(plan.workgroupSize)};
      if (j < ${u32(counts[k])}) { update_${k}(j); }
    }
  }`;
        first += groups;
        return branch;
      });
      return /* wgsl */ `
  // ${sizes.length} parameters: each workgroup updates vectors of one
  ${branches.join(" else ")}`;
    },
  };
}

/** An update waiting to share a dispatch with the other updates of the running `step()`. */
interface PendingUpdate {
  spec: KernelSpec<never, MultiUpdatePlan>;
  settings: unknown;
  settingsKey: string;
  update: Pick<ParameterUpdate, "index" | "param" | "grad" | "state" | "watch">;
  slot: ParamsSlot;
  /** Encodes this update alone, with the one-parameter kernel. */
  alone: () => void;
}

/** The updates of the running `step()` read from storage, batched; null outside a step. */
let pendingUpdates: PendingUpdate[] | null = null;

/**
 * Encodes the pending updates: those with the same kernel, settings, state names, step scalars
 * and watch share dispatches, as many parameters per dispatch as the device's storage-buffer
 * limit allows.
 */
function flushPendingUpdates(pending: readonly PendingUpdate[]): void {
  const batches = new Map<string, PendingUpdate[]>();
  for (const entry of pending) {
    const key = [
      entry.spec.name,
      entry.settingsKey,
      Object.keys(entry.update.state).join(","),
      entry.slot.offset,
      entry.update.watch ? "w" : "",
    ].join("|");
    const batch = batches.get(key);
    if (batch) batch.push(entry);
    else batches.set(key, [entry]);
  }
  const storageLimit = gpu().limits.maxStorageBuffersPerShaderStage;
  for (const batch of batches.values()) {
    const { spec, settings, slot, update: { state, watch } } = batch[0];
    const names = Object.keys(state);
    const perParameter = 2 + names.length;
    const most = Math.max(1, Math.floor((storageLimit - (watch ? 1 : 0)) / perParameter));
    // Chunks of at most `most` parameters, none binding a buffer another already binds
    // (parameters that share a buffer take separate dispatches).
    const chunks: PendingUpdate[][] = [];
    let chunk: PendingUpdate[] = [];
    let bound = new Set<GPUBuffer>();
    for (const entry of batch) {
      const { param, grad, state } = entry.update;
      const buffers = [param, grad, ...names.map((name) => state[name])].map((t) => t.buffer);
      if (chunk.length === most || buffers.some((buffer) => bound.has(buffer))) {
        chunks.push(chunk);
        chunk = [];
        bound = new Set();
      }
      chunk.push(entry);
      for (const buffer of buffers) bound.add(buffer);
    }
    chunks.push(chunk);
    for (const members of chunks) {
      if (members.length === 1) {
        members[0].alone();
        continue;
      }
      const resources: Record<string, Tensor> = {};
      members.forEach(({ update }, k) => {
        resources[`param_data_${k}`] = update.param;
        resources[`grad_data_${k}`] = update.grad;
        for (const name of names) resources[`${name}_${k}`] = update.state[name];
      });
      if (watch) resources.watch_flags = watch.tensor;
      const options: MultiUpdateOptions<unknown> = {
        settings,
        sizes: members.map(({ update }) => update.param.size),
        state: names,
        indices: members.map(({ update }) => update.index),
        watch,
      };
      runKernel(
        spec as KernelSpec<MultiUpdateOptions<unknown>, MultiUpdatePlan>,
        options,
        resources,
        {
          params: slot,
        },
      );
    }
  }
}

/**
 * Runs `encode` (the updates of one `step()`) so that the updates `encodeUpdate` would read
 * from storage share dispatches (a multi-tensor update), encoded when `encode` returns.
 */
function batchUpdates(encode: () => void): void {
  if (pendingUpdates) {
    encode();
    return;
  }
  const pending: PendingUpdate[] = [];
  pendingUpdates = pending;
  try {
    encode();
  } finally {
    pendingUpdates = null;
  }
  flushPendingUpdates(pending);
}

/**
 * Encodes the update kernel `spec` (from `updateSpec`) of one parameter, its step scalars from
 * `slot`.
 */
export function encodeUpdate<Settings>(
  spec: KernelSpec<UpdateOptions<Settings>, UpdatePlan>,
  settings: Settings,
  { index, param, grad, state, watch }: Pick<
    ParameterUpdate,
    "index" | "param" | "grad" | "state" | "watch"
  >,
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
  const alone = () => {
    const resources: Record<string, Tensor> = { param_data: param, grad_data: grad, ...state };
    if (options.textured) {
      for (const [name, tensor] of Object.entries(resources)) resources[`${name}_texture`] = tensor;
    }
    if (watch) resources.watch_flags = watch.tensor;
    runKernel(spec, options, resources, { params: slot });
  };
  const multi = multiSpecs.get(spec as KernelSpec<never, UpdatePlan>);
  if (pendingUpdates && multi && !options.textured) {
    pendingUpdates.push({
      spec: multi,
      settings,
      settingsKey: JSON.stringify(settings),
      update: { index, param, grad, state, watch },
      slot,
      alone,
    });
    return;
  }
  alone();
}

/** Throws `Invalid <what>: <value>` (PyTorch's wording) unless `value` is finite and >= 0. */
export function checkNonNegative(value: number, what: string): number {
  if (typeof value !== "number" || !(value >= 0) || !Number.isFinite(value)) {
    throw new Error(`Invalid ${what}: ${value}`);
  }
  return value;
}

/** A group's hyperparameters: the group without its parameters. */
export type GroupHyperparameters<Group extends ParamGroup> = Omit<Group, "params">;

type Fields = Record<string, unknown>;

/** A copy of a hyperparameter value (arrays copied, so that groups never share one). */
function copyValue(value: unknown): unknown {
  return Array.isArray(value) ? [...value] : value;
}

function describe(value: unknown): string {
  if (value instanceof Tensor) return `a Tensor of shape ${formatShape(value.shape)}`;
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `${typeof value} ${String(value)}`;
}

/** Base class of the optimizers: see the module documentation. */
export abstract class Optimizer<Group extends ParamGroup = ParamGroup> {
  /**
   * Every parameter, group after group in the order given (state dict names use these
   * indices, as PyTorch's state dicts do).
   */
  readonly params: readonly Tensor[];
  /**
   * The parameter groups: plain objects whose hyperparameters may be changed between steps
   * (validated by each `step()`); their `params` are fixed.
   */
  readonly paramGroups: readonly Group[];
  #groupParams: (readonly Tensor[])[];
  #groupIndices: number[][];
  #fields: readonly string[];
  #step = 0;
  #paramSteps: number[];
  #state: Record<string, Tensor>[];
  #disposed = false;
  #watch: FiniteWatch | null = null;

  /**
   * Takes the parameters to optimize (f32 leaf tensors, each once), or parameter groups
   * `{ params, ...options }`, and `defaults`: every hyperparameter of a group (`lr` included),
   * used where a group does not give its own.
   */
  constructor(params: ParamsInput<object>, defaults: GroupHyperparameters<Group>) {
    const list: unknown[] = params instanceof Tensor
      ? [params]
      : [...(params as Iterable<unknown>)];
    if (list.length === 0) throw new Error("optimizer got an empty parameter list");
    const grouped = list[0] !== null && typeof list[0] === "object" &&
      !(list[0] instanceof Tensor);
    const inputs: Fields[] = grouped ? (list as Fields[]) : [{ params: list }];
    this.#fields = Object.keys(defaults);
    // The subclass's getter (on the prototype): no instance field involved.
    const kind = (this as { readonly name: string }).name;
    const groups: Group[] = [];
    const all: Tensor[] = [];
    const seen = new Set<Tensor>();
    this.#groupIndices = [];
    for (const [g, input] of inputs.entries()) {
      if (input === null || typeof input !== "object" || input instanceof Tensor) {
        throw new Error(
          `${kind}: parameter group ${g} must be an object { params, ...options }, got ` +
            describe(input),
        );
      }
      if (!("params" in input)) {
        throw new Error(`${kind}: parameter group ${g} has no params`);
      }
      const given = input.params;
      const members: unknown[] = given instanceof Tensor
        ? [given]
        : given !== null && typeof given === "object" && Symbol.iterator in given
        ? [...(given as Iterable<unknown>)]
        : [given];
      const indices: number[] = [];
      for (const param of members) {
        const i = all.length;
        if (!(param instanceof Tensor)) {
          throw new Error(`optimizer: parameter ${i} is not a Tensor (got ${describe(param)})`);
        }
        if (seen.has(param)) {
          throw new Error(
            indices.some((j) => all[j] === param)
              ? `optimizer: parameter ${i} appears more than once`
              : "some parameters appear in more than one parameter group",
          );
        }
        seen.add(param);
        if (param.dtype !== "f32") {
          throw new Error(`optimizer: parameter ${i} is ${param.dtype}; only f32 can be optimized`);
        }
        if (param.node) {
          throw new Error(`optimizer: can't optimize a non-leaf Tensor (parameter ${i})`);
        }
        indices.push(i);
        all.push(param);
      }
      const group: Fields = { params: Object.freeze(indices.map((i) => all[i])) };
      for (const name of this.#fields) {
        const value = input[name] === undefined ? (defaults as Fields)[name] : input[name];
        group[name] = copyValue(value);
      }
      for (const name of Object.keys(input)) {
        if (name !== "params" && !this.#fields.includes(name)) {
          throw new Error(
            `${kind}: parameter group ${g} has an unknown option "${name}" (${kind} ` +
              `takes ${this.#fields.join(", ")})`,
          );
        }
      }
      groups.push(group as unknown as Group);
      this.#groupIndices.push(indices);
    }
    this.params = Object.freeze(all);
    this.paramGroups = Object.freeze(groups);
    this.#groupParams = groups.map((group) => group.params);
    for (const [g, group] of groups.entries()) this.#validate(group, g, "");
    this.#paramSteps = all.map(() => 0);
    this.#state = all.map(() => ({}));
  }

  /** The optimizer's kind, as saved in state dicts. */
  abstract get name(): string;

  /**
   * Throws PyTorch's message (e.g. `Invalid momentum value: -1`) unless the group's
   * hyperparameters other than `lr` are valid.
   */
  protected abstract validateGroup(group: GroupHyperparameters<Group>): void;

  /** Names of the state tensors a parameter of `group` needs under its hyperparameters now. */
  protected abstract stateNames(group: GroupHyperparameters<Group>): readonly string[];

  /**
   * Names of the state tensors every parameter that took a step has (created on its first step
   * whatever the hyperparameters); a loaded state dict must hold them.
   */
  protected abstract requiredStateNames(group: GroupHyperparameters<Group>): readonly string[];

  /** Every state name the optimizer may create. */
  protected abstract knownStateNames(): readonly string[];

  /** Encodes the one fused update kernel of one parameter of `group`. */
  protected abstract update(target: ParameterUpdate, group: GroupHyperparameters<Group>): void;

  /**
   * A group's hyperparameters from a state dict saved before parameter groups (the flat
   * `hyperparameters`); the names are the same unless an optimizer says otherwise.
   */
  protected legacyGroup(saved: Hyperparameters): Record<string, unknown> {
    return { ...saved };
  }

  /** The learning rate of the first parameter group. */
  get lr(): number {
    return this.paramGroups[0].lr;
  }

  /** Sets every group's learning rate (finite, >= 0); LR schedulers call this. */
  set lr(value: number) {
    checkNonNegative(value, "learning rate");
    for (const group of this.paramGroups) group.lr = value;
  }

  /** Number of `step()` calls so far. */
  get stepCount(): number {
    return this.#step;
  }

  /**
   * Updates every parameter that has a gradient, in place: one kernel dispatch per parameter,
   * nothing read back, each with its group's hyperparameters as they are now (validated first:
   * nothing changes when one is invalid). Parameters whose `grad` is null are skipped (their
   * step count too).
   */
  step(): void {
    this.#checkAlive("step");
    for (const [g, group] of this.paramGroups.entries()) {
      if (group.params !== this.#groupParams[g]) {
        throw new Error(`${this.name}.step(): parameter group ${g}'s params were replaced`);
      }
      this.#validate(group, g, `${this.name}.step(): `);
    }
    for (const [index, param] of this.params.entries()) {
      if (param.grad) this.#checkGrad(index, param, param.grad);
    }
    stepSlots.clear();
    try {
      batchUpdates(() => this.#encodeUpdates());
    } finally {
      stepSlots.clear();
    }
    this.#step++;
  }

  /** Encodes the update of every parameter with a gradient (state created on first use). */
  #encodeUpdates(): void {
    {
      for (const [g, group] of this.paramGroups.entries()) {
        const names = this.stateNames(group);
        for (const index of this.#groupIndices[g]) {
          const param = this.params[index];
          const grad = param.grad;
          if (!grad) continue;
          const held = this.#state[index];
          const state: Record<string, Tensor> = {};
          const freshState = new Set<string>();
          for (const name of names) {
            if (!held[name]) {
              held[name] = keep(Tensor.empty(param.shape));
              freshState.add(name);
            }
            state[name] = held[name];
          }
          const step = ++this.#paramSteps[index];
          const fresh = freshState.size === names.length;
          const watch = this.#watch ?? undefined;
          this.update({ index, param, grad, state, step, fresh, freshState, watch }, group);
        }
      }
    }
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
   * The state: step counts, each group's hyperparameters (with its parameters' indices) and the
   * optimizer's own state tensors (not copies: do not dispose them; the next `step()` changes
   * them). Save it with `saveSafetensors` (the tensors) plus JSON of the rest in the metadata.
   */
  stateDict(): OptimizerStateDict {
    this.#checkAlive("stateDict");
    const state: Record<string, Tensor> = {};
    for (const [index, tensors] of this.#state.entries()) {
      for (const [name, tensor] of Object.entries(tensors)) state[`${index}.${name}`] = tensor;
    }
    const paramGroups = this.paramGroups.map((group, g) => {
      const saved: SavedParamGroup = { params: [...this.#groupIndices[g]] };
      for (const name of this.#fields) {
        saved[name] = copyValue((group as unknown as Fields)[name]) as SavedParamGroup[string];
      }
      return saved;
    });
    return {
      optimizer: this.name,
      step: this.#step,
      paramSteps: [...this.#paramSteps],
      state,
      paramGroups,
    };
  }

  /**
   * Restores a state saved by `stateDict()` of the same kind of optimizer over parameter groups
   * of the same sizes and parameters of the same shapes: each group's hyperparameters (written
   * into the existing group objects), step counts, and a copy of every state tensor (the given
   * tensors stay the caller's). A state dict saved before parameter groups
   * (`hyperparameters`) loads into an optimizer with one group. Throws, changing nothing, on any
   * mismatch.
   */
  loadStateDict(saved: OptimizerStateDict | LegacyOptimizerStateDict): void {
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
    const groups = this.#savedGroups(saved, what);
    for (const [g, group] of groups.entries()) this.#validate(group, g, `${what}: `);
    this.#checkSavedState(saved, groups, what);
    for (const [g, group] of groups.entries()) {
      Object.assign(this.paramGroups[g], group);
    }
    for (const [index, param] of this.params.entries()) {
      const held = this.#state[index];
      const names = steps[index] === 0 ? [] : Object.keys(saved.state)
        .filter((key) => key.startsWith(`${index}.`))
        .map((key) => key.slice(`${index}.`.length));
      for (const [name, tensor] of Object.entries(held)) {
        if (!names.includes(name)) {
          tensor.dispose();
          delete held[name];
        }
      }
      for (const name of names) {
        const target = held[name] ??= keep(Tensor.empty(param.shape));
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
      for (const tensor of Object.values(tensors)) tensor.dispose();
    }
    this.#state = this.params.map(() => ({}));
    this.#disposed = true;
  }

  /** True once `dispose()` was called. */
  get isDisposed(): boolean {
    return this.#disposed;
  }

  #checkAlive(method: string): void {
    if (this.#disposed) throw new Error(`${this.name}.${method}(): the optimizer was disposed`);
  }

  /** Validates a group's hyperparameters, naming the optimizer (and group, when several). */
  #validate(group: Fields | Group, g: number, prefix: string): void {
    try {
      const fields = group as unknown as GroupHyperparameters<Group> & { lr: number };
      checkNonNegative(fields.lr, "learning rate");
      this.validateGroup(fields);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const where = this.paramGroups.length > 1 ? `, parameter group ${g}` : "";
      throw new Error(`${prefix}${message} (${this.name}${where})`);
    }
  }

  /** The hyperparameters of each group of a state dict (new format or old), not yet checked. */
  #savedGroups(saved: OptimizerStateDict | LegacyOptimizerStateDict, what: string): Fields[] {
    let groups: Fields[];
    if ("paramGroups" in saved && saved.paramGroups !== undefined) {
      const list = saved.paramGroups;
      if (!Array.isArray(list) || list.length !== this.paramGroups.length) {
        throw new Error(
          `${what}: loaded state dict has a different number of parameter groups ` +
            `(${Array.isArray(list) ? list.length : describe(list)}, this optimizer has ` +
            `${this.paramGroups.length})`,
        );
      }
      groups = list.map((group, g) => {
        const indices = group?.params;
        if (
          !Array.isArray(indices) || indices.length !== this.#groupIndices[g].length ||
          indices.some((i) => !Number.isSafeInteger(i) || i < 0)
        ) {
          throw new Error(
            `${what}: loaded state dict contains a parameter group that doesn't match the size ` +
              `of optimizer's group (group ${g}: ${
                Array.isArray(indices) ? indices.length : describe(indices)
              } parameters, this optimizer's has ${this.#groupIndices[g].length})`,
          );
        }
        const { params: _, ...fields } = group;
        return fields;
      });
    } else if ("hyperparameters" in saved && saved.hyperparameters !== undefined) {
      if (this.paramGroups.length !== 1) {
        throw new Error(
          `${what}: the state dict has one parameter group (saved before parameter groups), ` +
            `this optimizer has ${this.paramGroups.length}`,
        );
      }
      groups = [this.legacyGroup(saved.hyperparameters)];
    } else {
      throw new Error(`${what}: the state dict has neither paramGroups nor hyperparameters`);
    }
    return groups.map((fields, g) => {
      const group: Fields = {};
      for (const name of this.#fields) {
        if (!(name in fields)) {
          throw new Error(`${what}: parameter group ${g} has no ${name}`);
        }
        group[name] = copyValue(fields[name]);
      }
      const unknown = Object.keys(fields).filter((name) => !this.#fields.includes(name));
      if (unknown.length > 0) {
        throw new Error(
          `${what}: parameter group ${g} has unknown hyperparameters: ${unknown.join(", ")}`,
        );
      }
      return group;
    });
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

  /**
   * Checks the saved state tensors: each named `<index>.<name>` with a known name, of a
   * parameter that took a step, shaped as it; the required ones of every such parameter there.
   */
  #checkSavedState(
    saved: OptimizerStateDict | LegacyOptimizerStateDict,
    groups: readonly Fields[],
    what: string,
  ): void {
    const expected: Record<string, readonly number[]> = {};
    const known = this.knownStateNames();
    for (const [g, indices] of this.#groupIndices.entries()) {
      const group = groups[g] as unknown as GroupHyperparameters<Group>;
      for (const index of indices) {
        if (saved.paramSteps[index] === 0) continue;
        const shape = this.params[index].shape;
        for (const name of this.requiredStateNames(group)) expected[`${index}.${name}`] = shape;
        for (const name of known) {
          if (`${index}.${name}` in saved.state) expected[`${index}.${name}`] = shape;
        }
      }
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
