/**
 * Shapes as text, for messages, and the shape arithmetic of reshaping: a module of its own so
 * that the runtime (textures, buffers) and `Tensor` can use them without importing any op.
 *
 * @module
 */

/** `[2, 3]` for shape [2, 3]. */
export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

/**
 * The shape `shape` stands for when reshaping `size` elements of shape `from`: one dimension may
 * be -1, inferred from the others (PyTorch's rules). Throws naming `op`, both shapes and what is
 * wrong: a dimension that is not an integer >= 0 (or -1), two -1s, a -1 that is ambiguous (0
 * elements) or not whole, or a different number of elements.
 */
export function resolveShape(
  op: string,
  from: readonly number[],
  shape: readonly number[],
): number[] {
  const size = from.reduce((a, b) => a * b, 1);
  const what = `cannot reshape ${formatShape(from)} (${size} elements) to ${formatShape(shape)}`;
  let inferred = -1;
  let known = 1;
  for (const [d, dim] of shape.entries()) {
    if (dim === -1) {
      if (inferred >= 0) throw new Error(`${op}: ${what}: only one dimension can be -1`);
      inferred = d;
    } else if (!Number.isInteger(dim) || dim < 0) {
      throw new Error(
        `${op}: ${what}: dimension ${d} is ${dim}; dimensions are integers >= 0, or -1 (inferred)`,
      );
    } else known *= dim;
  }
  if (inferred < 0) {
    if (known !== size) {
      throw new Error(
        `${op}: cannot view ${size} elements of shape ${formatShape(from)} as ` +
          `${formatShape(shape)} (${known} elements)`,
      );
    }
    return [...shape];
  }
  if (known === 0 || size % known !== 0) {
    throw new Error(
      `${op}: ${what}: ` +
        (known === 0
          ? "the -1 could be any size, as the other dimensions hold 0 elements"
          : `${size} elements are not a whole multiple of the other dimensions' ${known}`),
    );
  }
  const out = [...shape];
  out[inferred] = size / known;
  return out;
}
