/**
 * FashionMNIST's class names: a module with no imports, so that a browser page can take them
 * without the loader's file-system code.
 *
 * @module
 */

/** The ten classes, by label index. */
export const CLASS_NAMES: readonly string[] = [
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
];
