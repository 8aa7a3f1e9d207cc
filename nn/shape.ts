/**
 * Shapes as text, for messages: a module of its own so that the runtime (textures, buffers)
 * can name shapes without importing tensors.
 *
 * @module
 */

/** `[2, 3]` for shape [2, 3]. */
export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}
