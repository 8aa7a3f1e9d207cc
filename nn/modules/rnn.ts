/**
 * `LSTM` and `GRU`, as PyTorch 1.13's `torch.nn.LSTM` and `torch.nn.GRU`: the same options,
 * defaults, gate order (LSTM i, f, g, o; GRU r, z, n) and parameter names (`weight_ih_l0`,
 * `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`, `..._reverse`), so state dicts load both ways.
 *
 * Per layer and direction: one matmul projects the input of every time step at once, then the
 * recurrence runs as one matmul and one fused gate kernel per step (`nn/ops/rnn.ts`).
 *
 * @module
 */

import { dropout } from "../ops/dropout.ts";
import { cat, narrow, transpose } from "../ops/layout.ts";
import { linear } from "../ops/matmul.ts";
import { gruLayer, lstmLayer } from "../ops/rnn.ts";
import { formatShape, randUniform, type Tensor, zeros } from "../tensor.ts";
import { defaultGenerator, type InitOptions } from "./init.ts";
import { Module } from "./module.ts";
import type { Rng } from "../random.ts";

/** Options of `LSTM` and `GRU` (PyTorch's, in camelCase). */
export interface RNNOptions extends InitOptions {
  /** Stacked layers (default 1). */
  numLayers?: number;
  /** Whether the layers have the biases b_ih and b_hh (default true). */
  bias?: boolean;
  /** Input and output as [N, T, features] instead of [T, N, features] (default false). */
  batchFirst?: boolean;
  /** Dropout on the outputs of every layer but the last, in training (default 0). */
  dropout?: number;
  /** Whether each layer also runs from the last step to the first (default false). */
  bidirectional?: boolean;
}

/** The weights of one direction of one layer, in PyTorch's order. */
export interface RecurrentWeights {
  /** W_ih [gates * hidden, input]. */
  weightIh: Tensor;
  /** W_hh [gates * hidden, hidden]. */
  weightHh: Tensor;
  /** b_ih [gates * hidden], or null without bias. */
  biasIh: Tensor | null;
  /** b_hh [gates * hidden], or null without bias. */
  biasHh: Tensor | null;
}

/** What `recurrentForward` needs besides the tensors. */
export interface RecurrentConfig {
  /** `lstm` or `gru`. */
  mode: "lstm" | "gru";
  /** Hidden size. */
  hiddenSize: number;
  /** Stacked layers. */
  numLayers: number;
  /** Whether each layer runs both ways. */
  bidirectional: boolean;
  /** Whether input and output are [N, T, features]. */
  batchFirst: boolean;
  /** Dropout between layers (applied only when `training`). */
  dropout: number;
  /** Training mode (dropout). */
  training: boolean;
  /** Generator of the dropout seeds. */
  rng?: Rng;
}

/** The result of `recurrentForward`: the output and the final states ([L * D, N, H] each). */
export interface RecurrentResult {
  /** [T, N, D * H] (or [N, T, D * H] batch-first; [T, D * H] for an unbatched input). */
  output: Tensor;
  /** Final hidden state of every layer and direction. */
  hN: Tensor;
  /** Final cell state (LSTM only). */
  cN: Tensor | null;
}

function checkState(
  name: string,
  state: Tensor | undefined,
  shape: readonly number[],
): void {
  if (state && (state.rank !== shape.length || state.shape.some((s, k) => s !== shape[k]))) {
    throw new Error(
      `${name} ${formatShape(state.shape)} must be ${formatShape(shape)} ` +
        `([num_layers * num_directions, N, hidden]${shape.length === 2 ? " unbatched" : ""})`,
    );
  }
}

/**
 * The functional form of `LSTM` and `GRU`: `weights` holds each layer's directions in order
 * (l0, l0_reverse, l1, ...). `h0`/`c0`: [L * D, N, H] (or [L * D, H] for an unbatched 2-D input),
 * default zeros.
 */
export function recurrentForward(
  input: Tensor,
  weights: readonly RecurrentWeights[],
  config: RecurrentConfig,
  h0?: Tensor,
  c0?: Tensor,
): RecurrentResult {
  const op = config.mode === "lstm" ? "LSTM" : "GRU";
  const dirs = config.bidirectional ? 2 : 1;
  const hidden = config.hiddenSize;
  if (input.rank !== 2 && input.rank !== 3) {
    throw new Error(
      `${op}: input ${formatShape(input.shape)} must be 3-D ([T, N, input]${
        config.batchFirst ? " or [N, T, input] batch-first" : ""
      }) or 2-D unbatched ([T, input])`,
    );
  }
  const inputSize = weights[0].weightIh.shape[1];
  if (input.shape.at(-1) !== inputSize) {
    throw new Error(
      `${op}: input ${formatShape(input.shape)} has ${input.shape.at(-1)} features; the layer ` +
        `takes ${inputSize}`,
    );
  }
  const unbatched = input.rank === 2;
  let x = unbatched
    ? input.reshape([input.shape[0], 1, inputSize])
    : config.batchFirst
    ? transpose(input, 0, 1)
    : input;
  const [t, n] = x.shape;
  const layers = config.numLayers * dirs;
  const stateShape = unbatched ? [layers, hidden] : [layers, n, hidden];
  checkState(`${op}: h0`, h0, stateShape);
  checkState(`${op}: c0`, c0, stateShape);
  const hStart = h0 ? h0.reshape([layers, n, hidden]) : zeros([layers, n, hidden]);
  const cStart = config.mode === "lstm"
    ? (c0 ? c0.reshape([layers, n, hidden]) : zeros([layers, n, hidden]))
    : null;
  const hFinal: Tensor[] = [], cFinal: Tensor[] = [];
  for (let layer = 0; layer < config.numLayers; layer++) {
    const outputs: Tensor[] = [];
    for (let d = 0; d < dirs; d++) {
      const k = layer * dirs + d;
      const w = weights[k];
      const reverse = d === 1;
      const xproj = linear(x, w.weightIh, w.biasIh ?? undefined);
      const hk = narrow(hStart, 0, k, 1);
      if (config.mode === "lstm") {
        const ck = narrow(cStart!, 0, k, 1);
        const packed = lstmLayer(xproj, w.weightHh, w.biasHh, hk, ck, { reverse });
        outputs.push(narrow(packed, 0, 0, t));
        hFinal.push(narrow(packed, 0, reverse ? 0 : t - 1, 1));
        cFinal.push(narrow(packed, 0, t, 1));
      } else {
        const seq = gruLayer(xproj, w.weightHh, w.biasHh, hk, { reverse });
        outputs.push(seq);
        hFinal.push(narrow(seq, 0, reverse ? 0 : t - 1, 1));
      }
    }
    x = dirs === 2 ? cat(outputs, { dim: 2 }) : outputs[0];
    if (config.training && config.dropout > 0 && layer < config.numLayers - 1) {
      const seed = (config.rng ?? defaultGenerator()).nextUint32();
      x = dropout(x, { p: config.dropout, training: true, seed });
    }
  }
  const hN = cat(hFinal);
  const cN = cStart ? cat(cFinal) : null;
  const output = unbatched
    ? x.reshape([t, dirs * hidden])
    : config.batchFirst
    ? transpose(x, 0, 1)
    : x;
  return {
    output,
    hN: unbatched ? hN.reshape([layers, hidden]) : hN,
    cN: cN && unbatched ? cN.reshape([layers, hidden]) : cN,
  };
}

/** The base of `LSTM` and `GRU` (PyTorch's `nn.RNNBase`): parameters by PyTorch's names, and the options. */
export abstract class RNNBase<State, Output> extends Module<[Tensor, State?], Output> {
  /** Stacked layers. */
  readonly numLayers: number;
  /** Whether the layers have biases. */
  readonly bias: boolean;
  /** Whether input and output are [N, T, features]. */
  readonly batchFirst: boolean;
  /** Dropout between layers. */
  readonly dropout: number;
  /** Whether each layer runs both ways. */
  readonly bidirectional: boolean;
  #weights: RecurrentWeights[] = [];
  #rng: Rng;

  /** Registers the weights of every layer and direction, drawn U(-1/√H, 1/√H). */
  constructor(
    /** Which recurrence. */
    readonly mode: "lstm" | "gru",
    /** Features of the input. */
    readonly inputSize: number,
    /** Features of the hidden state. */
    readonly hiddenSize: number,
    options: RNNOptions,
  ) {
    super();
    const name = mode === "lstm" ? "LSTM" : "GRU";
    this.numLayers = options.numLayers ?? 1;
    this.bias = options.bias ?? true;
    this.batchFirst = options.batchFirst ?? false;
    this.dropout = options.dropout ?? 0;
    this.bidirectional = options.bidirectional ?? false;
    for (
      const [what, value] of [["inputSize", inputSize], ["hiddenSize", hiddenSize], [
        "numLayers",
        this.numLayers,
      ]] as const
    ) {
      if (!Number.isInteger(value) || value < 1) {
        throw new Error(`${name}: ${what} must be a positive integer, got ${value}`);
      }
    }
    if (!(this.dropout >= 0 && this.dropout <= 1)) {
      throw new Error(`${name}: dropout must be in [0, 1], got ${this.dropout}`);
    }
    const rng = options.rng ?? defaultGenerator();
    this.#rng = rng;
    const gates = (mode === "lstm" ? 4 : 3) * hiddenSize;
    const bound = 1 / Math.sqrt(hiddenSize);
    const uniform = (shape: number[]) => randUniform(shape, { low: -bound, high: bound, rng });
    const dirs = this.bidirectional ? 2 : 1;
    for (let layer = 0; layer < this.numLayers; layer++) {
      for (let d = 0; d < dirs; d++) {
        const suffix = `_l${layer}${d === 1 ? "_reverse" : ""}`;
        const layerInput = layer === 0 ? inputSize : hiddenSize * dirs;
        // PyTorch's order: w_ih, w_hh, b_ih, b_hh (each drawn from the generator in turn).
        const weightIh = this.registerParameter(`weight_ih${suffix}`, uniform([gates, layerInput]));
        const weightHh = this.registerParameter(`weight_hh${suffix}`, uniform([gates, hiddenSize]));
        const biasIh = this.bias
          ? this.registerParameter(`bias_ih${suffix}`, uniform([gates]))
          : null;
        const biasHh = this.bias
          ? this.registerParameter(`bias_hh${suffix}`, uniform([gates]))
          : null;
        this.#weights.push({ weightIh, weightHh, biasIh, biasHh });
      }
    }
  }

  /**
   * Runs the layers (see `recurrentForward`): for LSTM and GRU, not part of the public API.
   *
   * @ignore
   */
  protected run(input: Tensor, h0?: Tensor, c0?: Tensor): RecurrentResult {
    return recurrentForward(
      input,
      this.#weights,
      {
        mode: this.mode,
        hiddenSize: this.hiddenSize,
        numLayers: this.numLayers,
        bidirectional: this.bidirectional,
        batchFirst: this.batchFirst,
        dropout: this.dropout,
        training: this.training,
        rng: this.#rng,
      },
      h0,
      c0,
    );
  }
}

/**
 * A multi-layer LSTM, as `torch.nn.LSTM` (gates i, f, g, o): c' = f c + i g, h' = o tanh(c').
 * Parameters `weight_ih_l{k}` [4H, in], `weight_hh_l{k}` [4H, H], `bias_ih_l{k}`, `bias_hh_l{k}`
 * [4H] (and `..._reverse`), initialised U(-1/√H, 1/√H).
 *
 * @example
 * ```ts
 * import { init, LSTM, zeros } from "@wgtorch/wgtorch";
 *
 * await init();
 * const lstm = new LSTM(3, 4, { numLayers: 2 });
 * const [output, [hN, cN]] = lstm.forward(zeros([5, 2, 3])); // [T, N, in]
 * console.log(output.shape, hN.shape, cN.shape); // [5, 2, 4] [2, 2, 4] [2, 2, 4]
 * ```
 */
export class LSTM extends RNNBase<readonly [Tensor, Tensor], [Tensor, [Tensor, Tensor]]> {
  /** A layer from `inputSize` features to `hiddenSize`, initialised as PyTorch does. */
  constructor(inputSize: number, hiddenSize: number, options: RNNOptions = {}) {
    super("lstm", inputSize, hiddenSize, options);
  }

  /**
   * input [T, N, in] ([N, T, in] batch-first, or [T, in] unbatched), `hx` = [h0, c0] each
   * [L * D, N, H] (default zeros) → [output [T, N, D * H], [h_n, c_n]].
   */
  override forward(input: Tensor, hx?: readonly [Tensor, Tensor]): [Tensor, [Tensor, Tensor]] {
    const { output, hN, cN } = this.run(input, hx?.[0], hx?.[1]);
    return [output, [hN, cN!]];
  }
}

/**
 * A multi-layer GRU, as `torch.nn.GRU` (gates r, z, n): n = tanh(W_in x + b_in + r (W_hn h +
 * b_hn)), h' = (1 - z) n + z h. Parameters as `LSTM`'s with 3H rows.
 *
 * @example
 * ```ts
 * import { GRU, init, zeros } from "@wgtorch/wgtorch";
 *
 * await init();
 * const gru = new GRU(3, 4, { bidirectional: true, batchFirst: true });
 * const [output, hN] = gru.forward(zeros([2, 5, 3])); // [N, T, in]
 * console.log(output.shape, hN.shape); // [2, 5, 8] [2, 2, 4]
 * ```
 */
export class GRU extends RNNBase<Tensor, [Tensor, Tensor]> {
  /** A layer from `inputSize` features to `hiddenSize`, initialised as PyTorch does. */
  constructor(inputSize: number, hiddenSize: number, options: RNNOptions = {}) {
    super("gru", inputSize, hiddenSize, options);
  }

  /**
   * input [T, N, in] ([N, T, in] batch-first, or [T, in] unbatched), `hx` = h0 [L * D, N, H]
   * (default zeros) → [output [T, N, D * H], h_n].
   */
  override forward(input: Tensor, hx?: Tensor): [Tensor, Tensor] {
    const { output, hN } = this.run(input, hx);
    return [output, hN];
  }
}
