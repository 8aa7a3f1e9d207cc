/**
 * Float64 references of LSTM and GRU (PyTorch 1.13's equations and gate order), straight loops.
 *
 * @module
 */

/** One direction of one layer's weights, row-major. */
export interface RefWeights {
  /** W_ih [G * H, in]. */
  wih: Float64Array;
  /** W_hh [G * H, H]. */
  whh: Float64Array;
  /** b_ih [G * H] or null. */
  bih: Float64Array | null;
  /** b_hh [G * H] or null. */
  bhh: Float64Array | null;
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** y[r, :] = W x[r, :] + b for rows of x ([rows, in] → [rows, out]). */
function affine(
  x: ArrayLike<number>,
  rows: number,
  inSize: number,
  w: ArrayLike<number>,
  b: ArrayLike<number> | null,
  outSize: number,
): Float64Array {
  const y = new Float64Array(rows * outSize);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outSize; o++) {
      let s = b ? b[o] : 0;
      for (let k = 0; k < inSize; k++) s += w[o * inSize + k] * x[r * inSize + k];
      y[r * outSize + o] = s;
    }
  }
  return y;
}

/**
 * One direction of one layer: xproj [T, N, G H] (x W_ihᵀ + b_ih), h0/c0 [N, H]. Returns the
 * hidden states by time position [T, N, H] and the final h and c.
 */
export function recurrenceReference(
  mode: "lstm" | "gru",
  xproj: Float64Array,
  whh: Float64Array,
  bhh: Float64Array | null,
  h0: ArrayLike<number>,
  c0: ArrayLike<number> | null,
  t: number,
  n: number,
  h: number,
  reverse: boolean,
): { out: Float64Array; hN: Float64Array; cN: Float64Array | null } {
  const g = mode === "lstm" ? 4 : 3;
  const out = new Float64Array(t * n * h);
  let hc = Float64Array.from(h0);
  let cc = c0 ? Float64Array.from(c0) : null;
  for (let s = 0; s < t; s++) {
    const pos = reverse ? t - 1 - s : s;
    const hw = affine(hc, n, h, whh, bhh, g * h);
    const hNext = new Float64Array(n * h), cNext = new Float64Array(n * h);
    for (let r = 0; r < n; r++) {
      for (let j = 0; j < h; j++) {
        const x = (k: number) => xproj[(pos * n + r) * g * h + k * h + j];
        const hh = (k: number) => hw[r * g * h + k * h + j];
        const e = r * h + j;
        if (mode === "lstm") {
          const i = sigmoid(x(0) + hh(0)), f = sigmoid(x(1) + hh(1));
          const gg = Math.tanh(x(2) + hh(2)), o = sigmoid(x(3) + hh(3));
          cNext[e] = f * cc![e] + i * gg;
          hNext[e] = o * Math.tanh(cNext[e]);
        } else {
          const rr = sigmoid(x(0) + hh(0)), z = sigmoid(x(1) + hh(1));
          const nn = Math.tanh(x(2) + rr * hh(2));
          hNext[e] = (1 - z) * nn + z * hc[e];
        }
        out[pos * n * h + e] = hNext[e];
      }
    }
    hc = hNext;
    if (cc) cc = cNext;
  }
  return { out, hN: hc, cN: cc };
}

/** `lstmLayer`'s packed result [T + 1, N, H]: the outputs, then the final c. */
export function lstmLayerReference(
  xproj: Float64Array,
  whh: Float64Array,
  bhh: Float64Array | null,
  h0: Float64Array,
  c0: Float64Array,
  t: number,
  n: number,
  h: number,
  reverse: boolean,
): Float64Array {
  const { out, cN } = recurrenceReference("lstm", xproj, whh, bhh, h0, c0, t, n, h, reverse);
  const packed = new Float64Array((t + 1) * n * h);
  packed.set(out);
  packed.set(cN!, t * n * h);
  return packed;
}

/** Configuration of `rnnReference`. */
export interface RnnRefConfig {
  mode: "lstm" | "gru";
  t: number;
  n: number;
  inputSize: number;
  hidden: number;
  layers: number;
  bidirectional: boolean;
}

/**
 * A whole LSTM/GRU on input [T, N, in] (time-major), weights per layer and direction in PyTorch's
 * order, h0/c0 [L D, N, H]. Returns output [T, N, D H], hN and cN [L D, N, H].
 */
export function rnnReference(
  config: RnnRefConfig,
  input: Float64Array,
  weights: readonly RefWeights[],
  h0: Float64Array,
  c0: Float64Array | null,
): { output: Float64Array; hN: Float64Array; cN: Float64Array | null } {
  const { mode, t, n, hidden: h, layers } = config;
  const dirs = config.bidirectional ? 2 : 1;
  const g = mode === "lstm" ? 4 : 3;
  let x = input;
  let inSize = config.inputSize;
  const hN = new Float64Array(layers * dirs * n * h);
  const cN = c0 ? new Float64Array(layers * dirs * n * h) : null;
  for (let layer = 0; layer < layers; layer++) {
    const outs: Float64Array[] = [];
    for (let d = 0; d < dirs; d++) {
      const k = layer * dirs + d;
      const w = weights[k];
      const xproj = affine(x, t * n, inSize, w.wih, w.bih, g * h);
      const res = recurrenceReference(
        mode,
        xproj,
        w.whh,
        w.bhh,
        h0.subarray(k * n * h, (k + 1) * n * h),
        c0 ? c0.subarray(k * n * h, (k + 1) * n * h) : null,
        t,
        n,
        h,
        d === 1,
      );
      outs.push(res.out);
      hN.set(res.hN, k * n * h);
      if (cN) cN.set(res.cN!, k * n * h);
    }
    const next = new Float64Array(t * n * dirs * h);
    for (let row = 0; row < t * n; row++) {
      for (let d = 0; d < dirs; d++) {
        for (let j = 0; j < h; j++) next[row * dirs * h + d * h + j] = outs[d][row * h + j];
      }
    }
    x = next;
    inSize = dirs * h;
  }
  return { output: x, hN, cN };
}

/** [A, B, C] → [B, A, C] (batch-first ↔ time-major). */
export function swap01(x: ArrayLike<number>, a: number, b: number, c: number): Float64Array {
  const y = new Float64Array(a * b * c);
  for (let i = 0; i < a; i++) {
    for (let j = 0; j < b; j++) {
      for (let k = 0; k < c; k++) y[(j * a + i) * c + k] = x[(i * b + j) * c + k];
    }
  }
  return y;
}
