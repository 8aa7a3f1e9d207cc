/**
 * Statistics over seeds: mean, sample standard deviation (n - 1), min and max of a metric, and
 * the paired t confidence interval of a difference of means (pairs: runs with the same seed),
 * with the Student t quantile computed here (regularised incomplete beta, then bisection).
 *
 * @module
 */

/** A metric over seeds. */
export interface SeedSpread {
  /** Mean over the seeds. */
  mean: number;
  /** Sample standard deviation (divides by n - 1); null for one seed. */
  sd: number | null;
  /** Smallest value. */
  min: number;
  /** Largest value. */
  max: number;
  /** How many seeds. */
  n: number;
  /** The per-seed values, in seed order. */
  values: number[];
}

/** Mean, sample sd (n - 1), min and max of `values` (at least one). */
export function spread(values: readonly number[]): SeedSpread {
  if (values.length === 0) throw new Error("spread: no values (at least one seed is needed)");
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const sd = n > 1
    ? Math.sqrt(values.reduce((sum, v) => sum + (v - mean) ** 2, 0) / (n - 1))
    : null;
  return { mean, sd, min: Math.min(...values), max: Math.max(...values), n, values: [...values] };
}

/** ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms; ~1e-15 relative). */
function logGamma(x: number): number {
  const c = [
    0.99999999999980993,
    676.5203681218851,
    -1259.1392167224028,
    771.32342877765313,
    -176.61502916214059,
    12.507343278686905,
    -0.13857109526572012,
    9.9843695780195716e-6,
    1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  x -= 1;
  let a = c[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** The continued fraction of the incomplete beta (modified Lentz). */
function betaFraction(a: number, b: number, x: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - (a + b) * x / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 300; m++) {
    const m2 = 2 * m;
    let aa = m * (b - m) * x / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const step = d * c;
    h *= step;
    if (Math.abs(step - 1) < 1e-15) break;
  }
  return h;
}

/** The regularised incomplete beta function I_x(a, b). */
function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(
    logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x),
  );
  return x < (a + 1) / (a + b + 2)
    ? front * betaFraction(a, b, x) / a
    : 1 - front * betaFraction(b, a, 1 - x) / b;
}

/** P(T ≤ t) for Student's t with `df` degrees of freedom. */
export function studentTCdf(t: number, df: number): number {
  if (!(df > 0)) throw new Error(`studentTCdf: df must be > 0, got ${df}`);
  const tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/**
 * The `p` quantile of Student's t with `df` degrees of freedom (e.g. `tQuantile(0.975, 2)` =
 * 4.302653): the CDF inverted by bisection to about 1e-12.
 */
export function tQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) throw new Error(`tQuantile: p must be in (0, 1), got ${p}`);
  if (!(df > 0)) throw new Error(`tQuantile: df must be > 0, got ${df}`);
  if (p === 0.5) return 0;
  if (p < 0.5) return -tQuantile(1 - p, df);
  let low = 0, high = 1;
  while (studentTCdf(high, df) < p) high *= 2;
  for (let i = 0; i < 200 && high - low > 1e-13 * Math.max(1, high); i++) {
    const mid = (low + high) / 2;
    if (studentTCdf(mid, df) < p) low = mid;
    else high = mid;
  }
  return (low + high) / 2;
}

/** A paired t confidence interval of mean(a) - mean(b). */
export interface PairedInterval {
  /** mean(a - b) = mean(a) - mean(b). */
  difference: number;
  /** Lower end (null with fewer than two pairs). */
  low: number | null;
  /** Upper end (null with fewer than two pairs). */
  high: number | null;
  /** Confidence level, e.g. 0.95. */
  level: number;
  /** Degrees of freedom: pairs - 1. */
  df: number;
  /** The t quantile used (null with fewer than two pairs). */
  t: number | null;
  /** How many pairs. */
  n: number;
}

/**
 * The paired t interval of mean(a) - mean(b): pairs (a[i], b[i]) are runs with the same seed;
 * d = a - b, interval mean(d) ± t_{(1+level)/2, n-1} · sd(d) / √n.
 */
export function pairedTInterval(
  a: readonly number[],
  b: readonly number[],
  level = 0.95,
): PairedInterval {
  if (a.length !== b.length || a.length === 0) {
    throw new Error(
      `pairedTInterval: needs as many values in a as in b (one per seed), got ${a.length} and ` +
        `${b.length}`,
    );
  }
  if (!(level > 0 && level < 1)) {
    throw new Error(`pairedTInterval: level must be in (0, 1), got ${level}`);
  }
  const d = spread(a.map((v, i) => v - b[i]));
  if (d.n < 2) {
    return { difference: d.mean, low: null, high: null, level, df: 0, t: null, n: d.n };
  }
  const t = tQuantile((1 + level) / 2, d.n - 1);
  const half = t * d.sd! / Math.sqrt(d.n);
  return {
    difference: d.mean,
    low: d.mean - half,
    high: d.mean + half,
    level,
    df: d.n - 1,
    t,
    n: d.n,
  };
}
