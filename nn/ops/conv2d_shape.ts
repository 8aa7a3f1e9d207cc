/**
 * What the conv2d kernels share: the shape they are specialised on, and the WGSL that loads an
 * input row segment.
 *
 * @module
 */

/** Every size a convolution kernel is specialised on. */
export interface ConvShape {
  batch: number;
  inChannels: number;
  outChannels: number;
  height: number;
  width: number;
  kernelHeight: number;
  kernelWidth: number;
  stride: number;
  padding: number;
  outHeight: number;
  outWidth: number;
}

/** A kernel-name key of every size in `shape`, e.g. `128x1x28x28_10k5x5s1p0o24x24`. */
export function convShapeKey(shape: ConvShape): string {
  const { batch, inChannels: C, height: H, width: W, outChannels: O } = shape;
  const { kernelHeight: KH, kernelWidth: KW, stride: S, padding: P } = shape;
  return `${batch}x${C}x${H}x${W}_${O}k${KH}x${KW}s${S}p${P}o${shape.outHeight}x${shape.outWidth}`;
}

/**
 * WGSL loading the input row segment `s0..s{segment-1}` (columns ix0.. of row `rowBase`) that a
 * lane's output pixels need. When the segment starts on a texel boundary (stride 1, width and
 * padding multiples of 4) it is read a texel (4 floats) at a time, and a texel is either wholly
 * inside the row or wholly in the padding; otherwise element by element.
 */
export function segmentSource(
  layout: { segment: number; width: number; stride: number; padding: number; pixels: number },
): string {
  const { segment, width: W, stride: S, padding: P, pixels } = layout;
  const aligned = S === 1 && W % 4 === 0 && P % 4 === 0 && pixels % 4 === 0;
  if (!aligned) {
    return Array.from({ length: segment }, (_, j) => {
      const ix = `ix0 + ${j}`;
      if (P === 0) return `let s${j} = xAt(rowBase + u32(min(${ix}, ${W - 1})));`;
      return `let s${j} = select(0.0, xAt(rowBase + u32(clamp(${ix}, 0, ${W - 1}))), ` +
        `${ix} >= 0 && ${ix} < ${W});`;
    }).join("\n      ");
  }
  const lines: string[] = [];
  for (let t = 0; t < Math.ceil(segment / 4); t++) {
    const ix = `ix0 + ${4 * t}`;
    const texel = `xVec4((rowBase + u32(clamp(${ix}, 0, ${W - 4}))) / 4u)`;
    lines.push(
      P === 0 && (pixels - 1) + 4 * t < W
        ? `let t${t} = ${texel};`
        : `let t${t} = select(vec4<f32>(0.0), ${texel}, ${ix} >= 0 && ${ix} < ${W});`,
    );
    for (let c = 0; c < 4 && 4 * t + c < segment; c++) {
      lines.push(`let s${4 * t + c} = t${t}.${"xyzw"[c]};`);
    }
  }
  return lines.join("\n      ");
}
