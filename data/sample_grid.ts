/**
 * A grid of sample images with their class names (the study's Fig. 5), written as PNG (labels
 * drawn with a built-in bitmap font) or SVG (labels as text, images embedded as PNG).
 *
 * @module
 */

import { dirname, resolve } from "node:path";
import { encodeBase64 } from "./base64.ts";
import type { ImageSet } from "./dataset.ts";
import { DataError, fileSystemError } from "./errors.ts";
import { CLASS_NAMES } from "./fashion_mnist.ts";
import { drawText, GLYPH_HEIGHT, textWidth } from "./font.ts";
import { encodePng } from "./png.ts";
import { writeFileAtomic } from "../train/tune/fs_atomic.ts";

/** Which images to show and how. */
export interface SampleGridOptions {
  /** Indices of the images to show, in order (default: see `perClass` and `count`). */
  indices?: readonly number[];
  /** Show the first `perClass` images of each class, one row per class (ignored with `indices`). */
  perClass?: number;
  /** Show the first `count` images (default 20; used when neither of the above is given). */
  count?: number;
  /** Images per row (default 10, or `perClass` when that is given). */
  columns?: number;
  /** Screen pixels per image pixel (default 3). */
  scale?: number;
  /** Class names by label (default: FashionMNIST's). */
  classNames?: readonly string[];
  /** Predicted labels of the shown images (same order): drawn under the label, green if right, red if wrong. */
  predictions?: ArrayLike<number>;
  /** Draw dark items on white instead of the data's light items on black (default false). */
  invert?: boolean;
}

/** What was drawn. */
export interface SampleGridInfo {
  /** Indices of the images shown. */
  indices: number[];
  /** Figure width in pixels. */
  width: number;
  /** Figure height in pixels. */
  height: number;
}

const PAD = 6;
const GAP = 4;
const LINE = GLYPH_HEIGHT + 3;
const INK: [number, number, number] = [30, 30, 30];
const RIGHT: [number, number, number] = [0, 128, 0];
const WRONG: [number, number, number] = [200, 0, 0];

interface Layout extends SampleGridInfo {
  columns: number;
  cellWidth: number;
  cellHeight: number;
  imageWidth: number;
  imageHeight: number;
  scale: number;
  names: readonly string[];
  lines: string[][];
}

function chooseIndices(set: ImageSet, options: SampleGridOptions): number[] {
  if (options.indices) return [...options.indices];
  if (options.perClass) {
    const classes = (options.classNames ?? CLASS_NAMES).length;
    const picked: number[][] = Array.from({ length: classes }, () => []);
    for (let i = 0; i < set.count; i++) {
      const bucket = picked[set.labels[i]];
      if (bucket && bucket.length < options.perClass) bucket.push(i);
    }
    return picked.flat();
  }
  return Array.from({ length: Math.min(options.count ?? 20, set.count) }, (_, i) => i);
}

function layout(set: ImageSet, options: SampleGridOptions): Layout {
  const indices = chooseIndices(set, options);
  if (indices.length === 0) throw new Error("sample grid: no image to show");
  for (const index of indices) {
    if (!(Number.isInteger(index) && index >= 0 && index < set.count)) {
      throw new RangeError(`sample grid: index ${index} is outside 0..${set.count - 1}`);
    }
  }
  const names = options.classNames ?? CLASS_NAMES;
  const name = (label: number) => names[label] ?? `class ${label}`;
  const lines = indices.map((index, k) => {
    const text = [name(set.labels[index])];
    if (options.predictions) text.push(`pred: ${name(options.predictions[k])}`);
    return text;
  });
  const scale = options.scale ?? 3;
  const columns = Math.min(
    indices.length,
    options.columns ?? (options.perClass && !options.indices ? options.perClass : 10),
  );
  const imageWidth = set.cols * scale, imageHeight = set.rows * scale;
  const widest = Math.max(...lines.flat().map((line) => textWidth(line)));
  const cellWidth = Math.max(imageWidth, widest) + PAD;
  const cellHeight = imageHeight + GAP + lines[0].length * LINE + PAD;
  const rowsOfCells = Math.ceil(indices.length / columns);
  return {
    indices,
    columns,
    cellWidth,
    cellHeight,
    imageWidth,
    imageHeight,
    scale,
    names,
    lines,
    width: columns * cellWidth + PAD,
    height: rowsOfCells * cellHeight + PAD,
  };
}

function cellOrigin(grid: Layout, k: number): { x: number; y: number } {
  return {
    x: PAD + (k % grid.columns) * grid.cellWidth,
    y: PAD + Math.floor(k / grid.columns) * grid.cellHeight,
  };
}

function lineColor(
  options: SampleGridOptions,
  set: ImageSet,
  index: number,
  k: number,
  line: number,
) {
  if (line === 0 || !options.predictions) return INK;
  return options.predictions[k] === set.labels[index] ? RIGHT : WRONG;
}

/** The grid as PNG bytes, and what it shows. */
export async function sampleGridPng(
  set: ImageSet,
  options: SampleGridOptions = {},
): Promise<{ png: Uint8Array; info: SampleGridInfo }> {
  const grid = layout(set, options);
  const { width, height, scale } = grid;
  const data = new Uint8Array(width * height * 3).fill(255);
  const raster = { data, width, height };
  const pixels = set.rows * set.cols;
  grid.indices.forEach((index, k) => {
    const origin = cellOrigin(grid, k);
    const left = origin.x + Math.floor((grid.cellWidth - PAD - grid.imageWidth) / 2);
    for (let r = 0; r < set.rows * scale; r++) {
      for (let c = 0; c < set.cols * scale; c++) {
        let value =
          set.images[index * pixels + Math.floor(r / scale) * set.cols + Math.floor(c / scale)];
        if (options.invert) value = 255 - value;
        data.fill(
          value,
          ((origin.y + r) * width + left + c) * 3,
          ((origin.y + r) * width + left + c) * 3 + 3,
        );
      }
    }
    grid.lines[k].forEach((text, line) => {
      drawText(raster, text, {
        x: origin.x + Math.floor((grid.cellWidth - PAD - textWidth(text)) / 2),
        y: origin.y + grid.imageHeight + GAP + line * LINE,
        color: lineColor(options, set, index, k, line),
      });
    });
  });
  const png = await encodePng({ width, height, channels: 3, data });
  return { png, info: { indices: grid.indices, width, height } };
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The grid as an SVG document (images embedded as PNG), and what it shows. */
export async function sampleGridSvg(
  set: ImageSet,
  options: SampleGridOptions = {},
): Promise<{ svg: string; info: SampleGridInfo }> {
  const grid = layout(set, options);
  const pixels = set.rows * set.cols;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${grid.width}" height="${grid.height}" ` +
    `viewBox="0 0 ${grid.width} ${grid.height}" font-family="sans-serif" font-size="10">`,
    `<rect width="100%" height="100%" fill="white"/>`,
  ];
  for (const [k, index] of grid.indices.entries()) {
    const image = set.images.slice(index * pixels, (index + 1) * pixels);
    if (options.invert) { for (let i = 0; i < image.length; i++) image[i] = 255 - image[i]; }
    const png = await encodePng({ width: set.cols, height: set.rows, channels: 1, data: image });
    const origin = cellOrigin(grid, k);
    const center = origin.x + (grid.cellWidth - PAD) / 2;
    parts.push(
      `<image x="${center - grid.imageWidth / 2}" y="${origin.y}" width="${grid.imageWidth}" ` +
        `height="${grid.imageHeight}" style="image-rendering:pixelated" ` +
        `href="data:image/png;base64,${encodeBase64(png)}"/>`,
    );
    grid.lines[k].forEach((text, line) => {
      const [r, g, b] = lineColor(options, set, index, k, line);
      parts.push(
        `<text x="${center}" y="${
          origin.y + grid.imageHeight + GAP + line * LINE + GLYPH_HEIGHT
        }" ` +
          `text-anchor="middle" fill="rgb(${r},${g},${b})">${escapeXml(text)}</text>`,
      );
    });
  }
  parts.push("</svg>\n");
  return {
    svg: parts.join("\n"),
    info: { indices: grid.indices, width: grid.width, height: grid.height },
  };
}

/**
 * Renders a grid of sample images with their class names to `path`: PNG or SVG by its
 * extension. Returns what was drawn. Write errors are one line naming the file.
 */
export async function renderSampleGrid(
  set: ImageSet,
  path: string,
  options: SampleGridOptions = {},
): Promise<SampleGridInfo> {
  const format = path.toLowerCase().endsWith(".svg")
    ? "svg"
    : path.toLowerCase().endsWith(".png")
    ? "png"
    : null;
  if (!format) {
    throw new DataError(`${path}: unknown figure format; name the file .png or .svg`, path);
  }
  const result = format === "png"
    ? await sampleGridPng(set, options)
    : await sampleGridSvg(set, options);
  const bytes = "png" in result ? result.png : new TextEncoder().encode(result.svg);
  try {
    await Deno.mkdir(dirname(resolve(path)), { recursive: true });
    await writeFileAtomic(path, bytes);
  } catch (error) {
    throw fileSystemError(error, path, "writing the figure", {
      elsewhere: "write the figure somewhere else",
      needs: `${bytes.length} bytes`,
    });
  }
  return result.info;
}
