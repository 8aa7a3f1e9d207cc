/**
 * A small, learnable synthetic image problem for tests: each of 10 classes is a bright square at
 * its own place on a noisy 28x28 image.
 */
import { Rng } from "../nn/random.ts";

/** `count` images [count, 1, 28, 28] in [0, 1] and their labels. */
export function blobImages(
  count: number,
  seed: number,
): { images: Float32Array; labels: Int32Array } {
  const rng = new Rng(seed);
  const images = new Float32Array(count * 784);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const label = rng.int(10);
    labels[i] = label;
    const top = 2 + Math.floor(label / 5) * 12 + rng.int(3);
    const left = 2 + (label % 5) * 5 + rng.int(2);
    for (let p = 0; p < 784; p++) images[i * 784 + p] = 0.2 * rng.next();
    for (let y = top; y < top + 8; y++) {
      for (let x = left; x < Math.min(left + 4, 28); x++) {
        images[i * 784 + y * 28 + x] = 0.8 + 0.2 * rng.next();
      }
    }
  }
  return { images, labels };
}
