/**
 * Float64 references of scaled dot-product attention, multi-head attention (PyTorch 1.13's
 * `F.multi_head_attention_forward`, time-major) and a transformer encoder layer.
 *
 * @module
 */

/**
 * softmax(q kᵀ · scale + mask) v over `batch` independent [L, E] × [S, E] × [S, Ev] problems;
 * `mask(b, i, j)` is added to the scores. Returns the output [batch, L, Ev] and the weights
 * [batch, L, S].
 */
export function sdpaReference(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  batch: number,
  l: number,
  s: number,
  e: number,
  ev: number,
  mask: (b: number, i: number, j: number) => number = () => 0,
  scale = 1 / Math.sqrt(e),
): { out: Float64Array; weights: Float64Array } {
  const out = new Float64Array(batch * l * ev);
  const weights = new Float64Array(batch * l * s);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < l; i++) {
      const row = new Float64Array(s);
      let max = -Infinity;
      for (let j = 0; j < s; j++) {
        let dot = 0;
        for (let c = 0; c < e; c++) dot += q[(b * l + i) * e + c] * k[(b * s + j) * e + c];
        row[j] = dot * scale + mask(b, i, j);
        max = Math.max(max, row[j]);
      }
      let total = 0;
      for (let j = 0; j < s; j++) total += row[j] = Math.exp(row[j] - max);
      for (let j = 0; j < s; j++) {
        const w = row[j] / total;
        weights[(b * l + i) * s + j] = w;
        for (let c = 0; c < ev; c++) out[(b * l + i) * ev + c] += w * v[(b * s + j) * ev + c];
      }
    }
  }
  return { out, weights };
}

/** y = x Wᵀ + b for rows of x. */
export function linearReference(
  x: ArrayLike<number>,
  rows: number,
  inSize: number,
  w: ArrayLike<number>,
  b: ArrayLike<number> | null,
  outSize: number,
  wOffset = 0,
  bOffset = 0,
): Float64Array {
  const y = new Float64Array(rows * outSize);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outSize; o++) {
      let sum = b ? b[bOffset + o] : 0;
      for (let c = 0; c < inSize; c++) sum += w[wOffset + o * inSize + c] * x[r * inSize + c];
      y[r * outSize + o] = sum;
    }
  }
  return y;
}

/** Sizes and masks of `mhaReference`. */
export interface MhaRefConfig {
  l: number;
  s: number;
  n: number;
  e: number;
  kdim: number;
  vdim: number;
  heads: number;
  /** Additive mask [L, S] or [N * heads, L, S]. */
  attnMask?: Float64Array;
  /** Additive key padding mask [N, S]. */
  keyPadding?: Float64Array;
}

/** The projections of `mhaReference`: packed [3E, E] or separate, biases or null. */
export interface MhaRefWeights {
  wq: ArrayLike<number>;
  wk: ArrayLike<number>;
  wv: ArrayLike<number>;
  /** [3E] or null. */
  inBias: ArrayLike<number> | null;
  wo: ArrayLike<number>;
  bo: ArrayLike<number> | null;
}

/**
 * Multi-head attention, time-major: query [L, N, E], key [S, N, kdim], value [S, N, vdim] →
 * output [L, N, E] and weights averaged over heads [N, L, S] and per head [N, heads, L, S].
 */
export function mhaReference(
  query: ArrayLike<number>,
  key: ArrayLike<number>,
  value: ArrayLike<number>,
  w: MhaRefWeights,
  c: MhaRefConfig,
): { out: Float64Array; weights: Float64Array; headWeights: Float64Array } {
  const { l, s, n, e, heads } = c;
  const hd = e / heads;
  const q = linearReference(query, l * n, e, w.wq, w.inBias, e, 0, 0);
  const k = linearReference(key, s * n, c.kdim, w.wk, w.inBias, e, 0, e);
  const v = linearReference(value, s * n, c.vdim, w.wv, w.inBias, e, 0, 2 * e);
  // [len, N, E] → [N * heads, len, hd]
  const split = (x: Float64Array, len: number) => {
    const y = new Float64Array(x.length);
    for (let t = 0; t < len; t++) {
      for (let b = 0; b < n * heads; b++) {
        for (let d = 0; d < hd; d++) y[(b * len + t) * hd + d] = x[(t * n * heads + b) * hd + d];
      }
    }
    return y;
  };
  const mask = (b: number, i: number, j: number) => {
    let m = 0;
    if (c.attnMask) {
      m += c.attnMask.length === l * s ? c.attnMask[i * s + j] : c.attnMask[(b * l + i) * s + j];
    }
    if (c.keyPadding) m += c.keyPadding[Math.floor(b / heads) * s + j];
    return m;
  };
  const { out, weights } = sdpaReference(
    split(q, l),
    split(k, s),
    split(v, s),
    n * heads,
    l,
    s,
    hd,
    hd,
    mask,
  );
  // [N * heads, L, hd] → [L, N * heads, hd] = [L * N, E]
  const merged = new Float64Array(l * n * e);
  for (let b = 0; b < n * heads; b++) {
    for (let t = 0; t < l; t++) {
      for (let d = 0; d < hd; d++) merged[(t * n * heads + b) * hd + d] = out[(b * l + t) * hd + d];
    }
  }
  const averaged = new Float64Array(n * l * s);
  for (let b = 0; b < n; b++) {
    for (let h = 0; h < heads; h++) {
      for (let x = 0; x < l * s; x++) {
        averaged[b * l * s + x] += weights[(b * heads + h) * l * s + x] / heads;
      }
    }
  }
  return {
    out: linearReference(merged, l * n, e, w.wo, w.bo, e),
    weights: averaged,
    headWeights: weights,
  };
}

/** Layer norm over the last dimension (size `e`) with weight and bias. */
export function layerNormReference(
  x: ArrayLike<number>,
  e: number,
  weight: ArrayLike<number>,
  bias: ArrayLike<number>,
  eps: number,
): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < x.length / e; r++) {
    let mu = 0;
    for (let c = 0; c < e; c++) mu += x[r * e + c] / e;
    let v = 0;
    for (let c = 0; c < e; c++) v += (x[r * e + c] - mu) ** 2 / e;
    for (let c = 0; c < e; c++) {
      y[r * e + c] = (x[r * e + c] - mu) / Math.sqrt(v + eps) * weight[c] + bias[c];
    }
  }
  return y;
}

/** The exact gelu, x Φ(x), with an erf accurate to ~1e-12. */
function gelu(x: number): number {
  return 0.5 * x * (1 + erf(x / Math.SQRT2));
}

function erf(x: number): number {
  // Abramowitz–Stegun 7.1.26 is too coarse; use the series / continued fraction.
  const t = Math.abs(x);
  if (t < 3) {
    let sum = t, term = t;
    for (let k = 1; k < 100; k++) {
      term *= -t * t / k;
      sum += term / (2 * k + 1);
    }
    return Math.sign(x) * 2 / Math.sqrt(Math.PI) * sum;
  }
  let f = 0;
  for (let k = 60; k >= 1; k--) f = k / 2 / (t + f);
  return Math.sign(x) * (1 - Math.exp(-t * t) / Math.sqrt(Math.PI) / (t + f));
}

/** The parameters of a transformer encoder layer, by PyTorch's names. */
export type EncoderRefState = Record<string, ArrayLike<number>>;

/**
 * A transformer encoder layer in eval mode (no dropout), time-major src [L, N, E], with
 * PyTorch's parameter names.
 */
export function encoderLayerReference(
  src: ArrayLike<number>,
  p: EncoderRefState,
  c: { l: number; n: number; e: number; heads: number; ff: number; eps: number },
  activation: "relu" | "gelu",
  normFirst: boolean,
  masks: { attnMask?: Float64Array; keyPadding?: Float64Array } = {},
): Float64Array {
  const { l, n, e, ff, eps } = c;
  const inW = p["self_attn.in_proj_weight"];
  const sa = (x: ArrayLike<number>) =>
    mhaReference(x, x, x, {
      wq: Array.from(inW).slice(0, e * e),
      wk: Array.from(inW).slice(e * e, 2 * e * e),
      wv: Array.from(inW).slice(2 * e * e),
      inBias: p["self_attn.in_proj_bias"],
      wo: p["self_attn.out_proj.weight"],
      bo: p["self_attn.out_proj.bias"],
    }, { l, s: l, n, e, kdim: e, vdim: e, heads: c.heads, ...masks }).out;
  const block = (x: ArrayLike<number>) => {
    const h = linearReference(x, l * n, e, p["linear1.weight"], p["linear1.bias"], ff);
    const a = h.map((v) => activation === "relu" ? Math.max(v, 0) : gelu(v));
    return linearReference(a, l * n, ff, p["linear2.weight"], p["linear2.bias"], e);
  };
  const norm = (x: ArrayLike<number>, k: number) =>
    layerNormReference(x, e, p[`norm${k}.weight`], p[`norm${k}.bias`], eps);
  const plus = (a: ArrayLike<number>, b: ArrayLike<number>) =>
    Float64Array.from(a, (v, i) => v + b[i]);
  let x: Float64Array = Float64Array.from(src);
  if (normFirst) {
    x = plus(x, sa(norm(x, 1)));
    x = plus(x, block(norm(x, 2)));
  } else {
    x = norm(plus(x, sa(x)), 1);
    x = norm(plus(x, block(x)), 2);
  }
  return x;
}
