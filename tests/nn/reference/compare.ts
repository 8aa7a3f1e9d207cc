/**
 * CPU references (float64) of the comparisons and `where`, broadcasting any number of operands.
 *
 * @module
 */

/** The comparisons. */
export type CompareOpName = "eq" | "ne" | "lt" | "le" | "gt" | "ge";

/** The shape the given shapes broadcast to (NumPy rules); throws when they do not. */
export function broadcastAll(shapes: readonly (readonly number[])[]): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  return Array.from({ length: rank }, (_, d) => {
    const sizes = shapes.map((s) => s[d - (rank - s.length)] ?? 1);
    const size = Math.max(...sizes);
    if (sizes.some((n) => n !== 1 && n !== size)) throw new Error("shapes do not broadcast");
    return size;
  });
}

/** For each element of the broadcast shape, the index into each operand it reads. */
export function broadcastIndicesAll(shapes: readonly (readonly number[])[]): number[][] {
  const out = broadcastAll(shapes);
  const size = out.reduce((x, y) => x * y, 1);
  return Array.from({ length: size }, (_, i) => {
    const coords: number[] = [];
    for (let d = out.length - 1; d >= 0; d--) {
      coords.unshift(i % out[d]);
      i = Math.floor(i / out[d]);
    }
    return shapes.map((shape) => {
      let index = 0;
      for (const [k, n] of shape.entries()) {
        index = index * n + (n === 1 ? 0 : coords[k + coords.length - shape.length]);
      }
      return index;
    });
  });
}

const COMPARE: Record<CompareOpName, (x: number, y: number) => boolean> = {
  eq: (x, y) => x === y,
  ne: (x, y) => x !== y, // true when either is NaN
  lt: (x, y) => x < y,
  le: (x, y) => x <= y,
  gt: (x, y) => x > y,
  ge: (x, y) => x >= y,
};

/** op(a, b) broadcasting, as 1 (true) and 0 (false). */
export function compareReference(
  op: CompareOpName,
  a: ArrayLike<number>,
  aShape: readonly number[],
  b: ArrayLike<number>,
  bShape: readonly number[],
): Float64Array {
  return Float64Array.from(
    broadcastIndicesAll([aShape, bShape]),
    ([i, j]) => COMPARE[op](a[i], b[j]) ? 1 : 0,
  );
}

/** `torch.where(cond != 0, a, b)`, the three broadcast (NaN in cond is nonzero: true). */
export function whereReference(
  cond: ArrayLike<number>,
  condShape: readonly number[],
  a: ArrayLike<number>,
  aShape: readonly number[],
  b: ArrayLike<number>,
  bShape: readonly number[],
): Float64Array {
  return Float64Array.from(
    broadcastIndicesAll([condShape, aShape, bShape]),
    ([c, i, j]) => cond[c] !== 0 ? a[i] : b[j],
  );
}

/** The gradients of `where` for a and b: grad where cond holds / elsewhere, summed back. */
export function whereBackwardReference(
  grad: ArrayLike<number>,
  cond: ArrayLike<number>,
  condShape: readonly number[],
  aShape: readonly number[],
  bShape: readonly number[],
): [Float64Array, Float64Array] {
  const size = (s: readonly number[]) => s.reduce((x, y) => x * y, 1);
  const ga = new Float64Array(size(aShape));
  const gb = new Float64Array(size(bShape));
  for (const [k, [c, i, j]] of broadcastIndicesAll([condShape, aShape, bShape]).entries()) {
    if (cond[c] !== 0) ga[i] += grad[k];
    else gb[j] += grad[k];
  }
  return [ga, gb];
}
