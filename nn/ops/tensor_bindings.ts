/**
 * Kernels whose bindings are a list of tensors, each read through a texture or bound as a
 * storage array: their WGSL declarations, and their dispatch (textures made before it and
 * released after it). `batchNorm` and `maxPool2d` build their kernels on these.
 *
 * @module
 */

import { type Access, grid, kernel } from "../kernel.ts";
import { dispatch, type Resource } from "../stream.ts";
import { releaseTexture, tensorTexture, textureReaders } from "../texture.ts";
import type { Tensor } from "../tensor.ts";

/** One binding: a tensor read as a texture, or a storage buffer. */
export interface TensorBinding {
  /** WGSL name: the storage array, or the texture read with `<name>At(i)`, `<name>Vec4(j)`. */
  name: string;
  tensor: Tensor;
  access: Access;
  /** Element type of a storage binding, e.g. "f32", "vec4<f32>". */
  type?: string;
}

/** WGSL declarations of `bindings`, numbered in order; textures come with their readers. */
export function declareTensors(bindings: readonly TensorBinding[]): string {
  return bindings.map(({ name, access, type }, i) =>
    access === "texture"
      ? `@group(0) @binding(${i}) var ${name}: texture_2d<f32>;\n${textureReaders(name)}`
      : `@group(0) @binding(${i}) var<storage, ${access === "read" ? "read" : "read_write"}> ` +
        `${name}: array<${type}>;`
  ).join("\n");
}

/** Compiles (or reuses) kernel `name` of WGSL `code` and dispatches `groups` workgroups of it. */
export function dispatchTensors(
  name: string,
  code: string,
  bindings: readonly TensorBinding[],
  groups: number,
): void {
  const textures: GPUTexture[] = [];
  const resources: Resource[] = bindings.map((b) => {
    if (b.access !== "texture") return b.tensor.buffer;
    const texture = tensorTexture(b.tensor);
    textures.push(texture);
    return texture;
  });
  const compiled = kernel({ name, code, bindings: bindings.map((b) => b.access) });
  dispatch(compiled, resources, grid(groups));
  for (const texture of textures) releaseTexture(texture);
}
