/**
 * `SGD`, as `torch.optim.SGD`: plain by default, with optional momentum, dampening, Nesterov
 * momentum and L2 weight decay. One fused kernel per parameter updates it (and its momentum
 * buffer) in place (see `updateSpec`: large tensors are read through textures; vec4 stores).
 *
 * @module
 */

import { f32 } from "../../nn/gpu/kernel.ts";
import type { Tensor } from "../../nn/tensor.ts";
import {
  checkNonNegative,
  encodeUpdate,
  type Hyperparameters,
  Optimizer,
  type ParameterUpdate,
  stepSlot,
  updateSpec,
} from "./optimizer.ts";

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

/**
 * The SGD update. Params: `lr`, and `first_step` (1 on the parameter's first step: the momentum
 * buffer starts as the gradient).
 */
const SGD_UPDATE = updateSpec<SgdSettings>({
  name: "sgd",
  key: ({ momentum, dampening, nesterov, weightDecay }) =>
    `${momentum}_${dampening}_${nesterov ? "nesterov" : ""}_${weightDecay}`,
  params: "lr: f32, first_step: f32",
  constants: ({ momentum, dampening, weightDecay }) => /* wgsl */ `
const MOMENTUM: f32 = ${f32(momentum)};
const ONE_MINUS_DAMPENING: f32 = ${f32(1 - dampening)};
const WEIGHT_DECAY: f32 = ${f32(weightDecay)};`,
  body: ({ momentum, nesterov, weightDecay }) => /* wgsl */ `
  let p = load_param_data(j);
  var d = load_grad_data(j);
  ${weightDecay !== 0 ? "d = d + WEIGHT_DECAY * p;" : "// no weight decay"}
  ${
    momentum !== 0
      ? `var buf = d;
  if (params.first_step == 0.0) {
    buf = MOMENTUM * load_momentum_buffer(j) + ONE_MINUS_DAMPENING * d;
  }
  momentum_buffer[j] = buf;
  d = ${nesterov ? "d + MOMENTUM * buf" : "buf"};`
      : "// no momentum"
  }
  let updated = p - params.lr * d;`,
});

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
  protected update(target: ParameterUpdate): void {
    const hasMomentum = this.#settings.momentum !== 0;
    const slot = stepSlot([this.lr, hasMomentum && target.fresh ? 1 : 0]);
    encodeUpdate(SGD_UPDATE, this.#settings, target, slot);
  }
}
