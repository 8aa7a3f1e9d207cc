/**
 * `SGD`, as `torch.optim.SGD`: plain by default, with optional momentum, dampening, Nesterov
 * momentum and L2 weight decay. One fused kernel per parameter updates it (and its momentum
 * buffer) in place.
 *
 * @module
 */

import { f32, grid, type Kernel, kernel, u32, workgroupIndex } from "../../nn/kernel.ts";
import { dispatch } from "../../nn/stream.ts";
import type { Tensor } from "../../nn/tensor.ts";
import {
  checkNonNegative,
  type Hyperparameters,
  Optimizer,
  type ParameterUpdate,
  stepSlot,
} from "./optimizer.ts";

const WORKGROUP = 64;
const PER_INVOCATION = 4;
const MOMENTUM_BUFFER = "momentum_buffer";

/** Options of `SGD` (PyTorch's names in camelCase). */
export interface SGDOptions {
  /** Learning rate (default 1e-3, as PyTorch 2). */
  lr?: number;
  /** Momentum factor (default 0: plain SGD). */
  momentum?: number;
  /** Dampening of the momentum (default 0). */
  dampening?: number;
  /** Nesterov momentum (default false); needs momentum > 0 and dampening 0. */
  nesterov?: boolean;
  /** L2 penalty: `weightDecay · param` is added to the gradient (default 0). */
  weightDecay?: number;
}

interface SgdSettings {
  momentum: number;
  dampening: number;
  nesterov: boolean;
  weightDecay: number;
}

function validate(options: Partial<SgdSettings>): SgdSettings {
  const momentum = checkNonNegative(options.momentum ?? 0, "momentum value");
  const weightDecay = checkNonNegative(options.weightDecay ?? 0, "weight_decay value");
  const dampening = options.dampening ?? 0;
  if (typeof dampening !== "number" || !Number.isFinite(dampening)) {
    throw new Error(`Invalid dampening value: ${dampening}`);
  }
  const nesterov = options.nesterov ?? false;
  if (typeof nesterov !== "boolean") throw new Error(`Invalid nesterov value: ${nesterov}`);
  if (nesterov && (momentum <= 0 || dampening !== 0)) {
    throw new Error("Nesterov momentum requires a momentum and zero dampening");
  }
  return { momentum, dampening, nesterov, weightDecay };
}

function sgdKernel(size: number, settings: SgdSettings): { kernel: Kernel; groups: number } {
  const { momentum, dampening, nesterov, weightDecay } = settings;
  const groups = Math.ceil(size / (WORKGROUP * PER_INVOCATION));
  const hasMomentum = momentum !== 0;
  const code = /* wgsl */ `
const SIZE: u32 = ${u32(size)};
const MOMENTUM: f32 = ${f32(momentum)};
const ONE_MINUS_DAMPENING: f32 = ${f32(1 - dampening)};
const WEIGHT_DECAY: f32 = ${f32(weightDecay)};

struct Params {
  lr: f32,
  // 1 on the parameter's first step: the momentum buffer starts as the gradient.
  first_step: f32,
}

@group(0) @binding(0) var<storage, read_write> param_data: array<f32>;
@group(0) @binding(1) var<storage, read> grad_data: array<f32>;
${
    hasMomentum
      ? "@group(0) @binding(2) var<storage, read_write> momentum_buffer: array<f32>;\n" +
        "@group(0) @binding(3) var<uniform> params: Params;"
      : "@group(0) @binding(2) var<uniform> params: Params;"
  }

fn update(i: u32) {
  let p = param_data[i];
  var d = grad_data[i];
  ${weightDecay !== 0 ? "d = d + WEIGHT_DECAY * p;" : "// no weight decay"}
  ${
    hasMomentum
      ? `var buf = d;
  if (params.first_step == 0.0) {
    buf = MOMENTUM * momentum_buffer[i] + ONE_MINUS_DAMPENING * d;
  }
  momentum_buffer[i] = buf;
  d = ${nesterov ? "d + MOMENTUM * buf" : "buf"};`
      : "// no momentum"
  }
  param_data[i] = p - params.lr * d;
}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let base = ${workgroupIndex(groups)} * ${u32(WORKGROUP * PER_INVOCATION)} + lid;
  for (var k = 0u; k < ${u32(PER_INVOCATION)}; k++) {
    let i = base + k * ${u32(WORKGROUP)};
    if (i < SIZE) { update(i); }
  }
}`;
  const name = `sgd_${size}${hasMomentum ? "_momentum" : ""}${nesterov ? "_nesterov" : ""}`;
  const bindings = hasMomentum
    ? ["read_write", "read", "read_write"] as const
    : ["read_write", "read"] as const;
  return { kernel: kernel({ name, code, bindings, params: true }), groups };
}

/**
 * Stochastic gradient descent, exactly as `torch.optim.SGD` (`maximize` aside):
 * `d = g + wd·p`; with momentum `buf = d` on a parameter's first step, then
 * `buf = μ·buf + (1-dampening)·d`, and `d = d + μ·buf` (Nesterov) or `d = buf`;
 * `p = p - lr·d`.
 */
export class SGD extends Optimizer {
  #settings: SgdSettings;

  /** Validates the options as PyTorch does (e.g. Nesterov needs momentum, no dampening). */
  constructor(params: Iterable<Tensor>, options: SGDOptions = {}) {
    super(params, { lr: options.lr ?? 1e-3 });
    this.#settings = validate(options);
  }

  /** `"SGD"`. */
  get name(): string {
    return "SGD";
  }

  /** Momentum factor. */
  get momentum(): number {
    return this.#settings.momentum;
  }

  /** Dampening of the momentum. */
  get dampening(): number {
    return this.#settings.dampening;
  }

  /** Whether the momentum is Nesterov's. */
  get nesterov(): boolean {
    return this.#settings.nesterov;
  }

  /** L2 weight decay. */
  get weightDecay(): number {
    return this.#settings.weightDecay;
  }

  /** `momentum_buffer` when momentum is on, else nothing. */
  protected stateNames(): readonly string[] {
    return this.#settings.momentum !== 0 ? [MOMENTUM_BUFFER] : [];
  }

  /** momentum, dampening, nesterov, weightDecay. */
  protected hyperparameters(): Hyperparameters {
    return { ...this.#settings };
  }

  /** Validates, then applies, saved hyperparameters. */
  protected setHyperparameters(saved: Hyperparameters): void {
    this.#settings = validate(saved as Partial<SgdSettings>);
  }

  /** One dispatch: param (and momentum buffer) updated in place. */
  protected update({ param, grad, state, fresh }: ParameterUpdate): void {
    const { kernel: compiled, groups } = sgdKernel(param.size, this.#settings);
    const hasMomentum = this.#settings.momentum !== 0;
    const buffers = [param.buffer, grad.buffer];
    if (hasMomentum) buffers.push(state[MOMENTUM_BUFFER].buffer);
    const slot = stepSlot([this.lr, hasMomentum && fresh ? 1 : 0]);
    dispatch(compiled, buffers, grid(groups), slot);
  }
}
