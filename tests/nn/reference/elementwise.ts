/**
 * CPU references (float64) of the element-wise ops.
 *
 * @module
 */

/** a + b. */
export function addReference(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  return Float64Array.from(a, (x, i) => x + b[i]);
}

/** a * b. */
export function mulReference(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  return Float64Array.from(a, (x, i) => x * b[i]);
}

/** max(x, 0); NaN stays NaN (`Math.max` propagates it, as PyTorch's relu). */
export function reluReference(x: ArrayLike<number>): Float64Array {
  return Float64Array.from(x, (v) => Math.max(v, 0));
}

/** The gradient of relu: 0 where x <= 0, else grad (NaN passes it, as PyTorch). */
export function reluBackwardReference(grad: ArrayLike<number>, x: ArrayLike<number>): Float64Array {
  return Float64Array.from(grad, (g, i) => x[i] <= 0 ? 0 : g);
}

/** a - b. */
export function subReference(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  return Float64Array.from(a, (x, i) => x - b[i]);
}

/** factor * x. */
export function scaleReference(x: ArrayLike<number>, factor: number): Float64Array {
  return Float64Array.from(x, (v) => factor * v);
}

/** The gradients of a + b: [grad, grad]. */
export function addBackwardReference(grad: ArrayLike<number>): [Float64Array, Float64Array] {
  return [Float64Array.from(grad), Float64Array.from(grad)];
}

/** The gradients of a - b: [grad, -grad]. */
export function subBackwardReference(grad: ArrayLike<number>): [Float64Array, Float64Array] {
  return [Float64Array.from(grad), Float64Array.from(grad, (g) => -g)];
}

/** The gradients of a * b: [grad * b, grad * a]. */
export function mulBackwardReference(
  grad: ArrayLike<number>,
  a: ArrayLike<number>,
  b: ArrayLike<number>,
): [Float64Array, Float64Array] {
  return [Float64Array.from(grad, (g, i) => g * b[i]), Float64Array.from(grad, (g, i) => g * a[i])];
}

/** The broadcasting binary ops. */
export type BinaryOpName = "add" | "sub" | "mul" | "div" | "maximum" | "minimum";

/** The broadcasting ops of `binaryReference`: the binary ops and pow. */
export type BroadcastOpName = BinaryOpName | "pow";

/**
 * a^b as PyTorch (C's `pow`): JavaScript's `**` agrees except 1^NaN, which is 1 in C (and
 * PyTorch) but NaN in JavaScript.
 */
export function powReference(x: number, y: number): number {
  return x === 1 ? 1 : x ** y;
}

/** The shape a and b broadcast to (NumPy rules); throws when they do not. */
export function broadcastShapeReference(a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  return Array.from({ length: rank }, (_, d) => {
    const da = a[d - (rank - a.length)] ?? 1;
    const db = b[d - (rank - b.length)] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new Error("shapes do not broadcast");
    return Math.max(da, db);
  });
}

/** For each element of the broadcast shape, the index of a and of b it reads. */
function broadcastIndices(
  aShape: readonly number[],
  bShape: readonly number[],
): [number, number][] {
  const out = broadcastShapeReference(aShape, bShape);
  const size = out.reduce((x, y) => x * y, 1);
  const index = (shape: readonly number[], coords: number[]) => {
    let i = 0;
    for (const [k, d] of shape.entries()) {
      const c = coords[k + coords.length - shape.length];
      i = i * d + (d === 1 ? 0 : c);
    }
    return i;
  };
  return Array.from({ length: size }, (_, i) => {
    const coords: number[] = [];
    for (let d = out.length - 1; d >= 0; d--) {
      coords.unshift(i % out[d]);
      i = Math.floor(i / out[d]);
    }
    return [index(aShape, coords), index(bShape, coords)];
  });
}

function apply(op: BroadcastOpName, x: number, y: number): number {
  switch (op) {
    case "pow":
      return powReference(x, y);
    case "add":
      return x + y;
    case "sub":
      return x - y;
    case "mul":
      return x * y;
    case "div":
      return x / y;
    case "maximum":
      return Math.max(x, y); // NaN if either is
    case "minimum":
      return Math.min(x, y);
  }
}

/** d(op)/dx and d(op)/dy at (x, y) (pow: as PyTorch); max/min: half each on ties, both on NaN (as PyTorch). */
function partials(op: BroadcastOpName, x: number, y: number): [number, number] {
  switch (op) {
    case "pow": // PyTorch's pow_backward_self and pow_backward_exponent
      return [
        y === 0 ? 0 : y * powReference(x, y - 1),
        x === 0 && y >= 0 ? 0 : powReference(x, y) * Math.log(x),
      ];
    case "add":
      return [1, 1];
    case "sub":
      return [1, -1];
    case "mul":
      return [y, x];
    case "div":
      return [1 / y, -x / (y * y)];
    case "maximum":
      return x === y ? [0.5, 0.5] : [x < y ? 0 : 1, x > y ? 0 : 1];
    case "minimum":
      return x === y ? [0.5, 0.5] : [x > y ? 0 : 1, x < y ? 0 : 1];
  }
}

/** op(a, b) with a of `aShape` and b of `bShape`, broadcasting. */
export function binaryReference(
  op: BroadcastOpName,
  a: ArrayLike<number>,
  aShape: readonly number[],
  b: ArrayLike<number>,
  bShape: readonly number[],
): Float64Array {
  return Float64Array.from(broadcastIndices(aShape, bShape), ([i, j]) => apply(op, a[i], b[j]));
}

/** The gradients of op(a, b), broadcasting: each summed back to its operand's shape. */
export function binaryBackwardReference(
  op: BroadcastOpName,
  grad: ArrayLike<number>,
  a: ArrayLike<number>,
  aShape: readonly number[],
  b: ArrayLike<number>,
  bShape: readonly number[],
): [Float64Array, Float64Array] {
  const ga = new Float64Array(a.length);
  const gb = new Float64Array(b.length);
  for (const [k, [i, j]] of broadcastIndices(aShape, bShape).entries()) {
    const [da, db] = partials(op, a[i], b[j]);
    ga[i] += grad[k] * da;
    gb[j] += grad[k] * db;
  }
  return [ga, gb];
}
