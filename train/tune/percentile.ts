/**
 * `numpy.nanpercentile` with numpy's default `linear` method, bit for bit in the cases ASHA
 * uses: NaNs dropped, the rest sorted, virtual index `(n - 1) * (q / 100)`, and numpy's `_lerp`
 * (which interpolates from the upper neighbour when the fraction is at least 0.5).
 *
 * @module
 */

/** numpy's `_lerp(a, b, t)`: `a + (b - a) t`, computed from `b` when `t >= 0.5`. */
function lerp(a: number, b: number, t: number): number {
  const diff = b - a;
  return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
}

/**
 * The `q`-th percentile (0..100) of `values`, ignoring NaN, with linear interpolation between
 * closest ranks, as `np.nanpercentile(values, q)`. NaN when no value is a number (numpy warns and
 * returns NaN too).
 */
export function nanPercentile(values: Iterable<number>, q: number): number {
  if (!(q >= 0 && q <= 100)) throw new RangeError(`percentile must be in [0, 100], got ${q}`);
  const sorted = Float64Array.from([...values].filter((v) => !Number.isNaN(v))).sort();
  const n = sorted.length;
  if (n === 0) return NaN;
  const index = (n - 1) * (q / 100);
  if (index >= n - 1) return sorted[n - 1];
  const below = Math.floor(index);
  return lerp(sorted[below], sorted[below + 1], index - below);
}
