import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { join } from "node:path";
import type { ImageSet } from "../../data/dataset.ts";
import { DataError } from "../../data/errors.ts";
import { CLASS_NAMES } from "../../data/fashion_mnist.ts";
import { glyph, GLYPH_HEIGHT, GLYPH_WIDTH } from "../../data/font.ts";
import { crc32 } from "node:zlib";
import { encodePng } from "../../data/png.ts";
import { renderSampleGrid, sampleGridPng, sampleGridSvg } from "../../data/sample_grid.ts";
import { listDir, tempDir } from "../data_fixtures.ts";

interface DecodedPng {
  width: number;
  height: number;
  colorType: number;
  pixels: Uint8Array;
}

/** A strict decoder for what encodePng writes (checks signature, CRCs, filter bytes). */
async function decodePng(bytes: Uint8Array): Promise<DecodedPng> {
  deepEqual(Array.from(bytes.subarray(0, 8)), [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 8, width = 0, height = 0, colorType = -1;
  const idat: Uint8Array[] = [];
  const types: string[] = [];
  while (offset < bytes.length) {
    const length = view.getUint32(offset);
    const type = new TextDecoder().decode(bytes.subarray(offset + 4, offset + 8));
    const data = bytes.subarray(offset + 8, offset + 8 + length);
    equal(
      view.getUint32(offset + 8 + length),
      crc32(bytes.subarray(offset + 4, offset + 8 + length)),
      `CRC of ${type}`,
    );
    types.push(type);
    if (type === "IHDR") {
      width = view.getUint32(offset + 8);
      height = view.getUint32(offset + 12);
      equal(data[8], 8, "bit depth");
      colorType = data[9];
    } else if (type === "IDAT") idat.push(data);
    offset += 12 + length;
  }
  deepEqual(types, ["IHDR", "IDAT", "IEND"]);
  const stream = new Blob(idat as Uint8Array<ArrayBuffer>[]).stream().pipeThrough(
    new DecompressionStream("deflate"),
  );
  const filtered = new Uint8Array(await new Response(stream).arrayBuffer());
  const channels = colorType === 0 ? 1 : 3;
  const stride = width * channels;
  equal(filtered.length, (stride + 1) * height);
  const pixels = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    equal(filtered[y * (stride + 1)], 0, "filter type none");
    pixels.set(filtered.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)), y * stride);
  }
  return { width, height, colorType, pixels };
}

function gradientSet(count: number): ImageSet {
  const images = new Uint8Array(count * 28 * 28);
  for (let i = 0; i < images.length; i++) images[i] = (i * 13 + (i >> 7)) % 256;
  return {
    images,
    labels: Uint8Array.from({ length: count }, (_, i) => i % 10),
    count,
    rows: 28,
    cols: 28,
  };
}

Deno.test("PNG: a grayscale image round trip; IEND's CRC is PNG's constant", async () => {
  const data = Uint8Array.from({ length: 7 * 3 }, (_, i) => i * 11);
  const bytes = await encodePng({ width: 7, height: 3, channels: 1, data });
  // The IEND chunk is the same in every PNG: its CRC-32 is AE 42 60 82 (a check of the CRC
  // independent of node:zlib, which decodePng also uses).
  deepEqual(Array.from(bytes.subarray(-12)), [0, 0, 0, 0, 73, 69, 78, 68, 0xae, 0x42, 0x60, 0x82]);
  const png = await decodePng(bytes);
  deepEqual([png.width, png.height, png.colorType], [7, 3, 0]);
  deepEqual(png.pixels, data);
});

Deno.test("font: every glyph is 5x7", () => {
  for (const char of "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/-().: ?abc~") {
    const rows = glyph(char);
    equal(rows.length, GLYPH_HEIGHT, char);
    ok(rows.every((row) => row.length === GLYPH_WIDTH && /^[#.]+$/.test(row)), char);
  }
});

Deno.test("sample grid PNG: the images are drawn pixel-exact, with labels below", async () => {
  const set = gradientSet(12);
  const { png, info } = await sampleGridPng(set, { count: 12, columns: 5, scale: 2 });
  deepEqual(info.indices, Array.from({ length: 12 }, (_, i) => i));
  const decoded = await decodePng(png);
  deepEqual([decoded.width, decoded.height, decoded.colorType], [info.width, info.height, 2]);
  // Find image 0 in the first cell: its top-left 2x2 block is pixel (0, 0) of image 0.
  const cellWidth = (info.width - 6) / 5;
  const left = 6 + Math.floor((cellWidth - 6 - 56) / 2), top = 6;
  for (const [r, c] of [[0, 0], [5, 17], [27, 27]]) {
    const value = set.images[r * 28 + c];
    const at = ((top + 2 * r + 1) * decoded.width + left + 2 * c + 1) * 3;
    deepEqual(
      Array.from(decoded.pixels.subarray(at, at + 3)),
      [value, value, value],
      `pixel ${r},${c}`,
    );
  }
  // Some dark ink below the first image (its label).
  const labelRow = top + 56 + 4 + 3;
  let ink = 0;
  for (let x = 6; x < 6 + cellWidth; x++) {
    if (decoded.pixels[(labelRow * decoded.width + x) * 3] < 100) ink++;
  }
  ok(ink > 3, "the label is drawn");
});

Deno.test("sample grid SVG: one image and one label per sample; predictions coloured", async () => {
  const set = gradientSet(20);
  const { svg, info } = await sampleGridSvg(set, {
    perClass: 2,
    predictions: Array.from({ length: 20 }, (_, k) => k % 3 === 0 ? 1 : Math.floor(k / 2)),
  });
  equal(info.indices.length, 20);
  equal(svg.match(/<image /g)?.length, 20);
  ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  ok(svg.trimEnd().endsWith("</svg>"));
  ok(svg.includes(">T-shirt/top</text>"));
  ok(svg.includes(">Ankle boot</text>"));
  ok(svg.includes('fill="rgb(200,0,0)">pred: Trouser</text>'), "a wrong prediction in red");
  ok(svg.includes('fill="rgb(0,128,0)">pred: Dress</text>'), "a right prediction in green");
  equal(CLASS_NAMES.length, 10);
  // Each image is its sample's pixels as a base64 PNG data URI.
  const uris = [...svg.matchAll(/href="data:image\/png;base64,([A-Za-z0-9+/]+=*)"/g)];
  equal(uris.length, 20);
  for (const [k, index] of info.indices.entries()) {
    const png = await decodePng(Uint8Array.fromBase64(uris[k][1]));
    deepEqual([png.width, png.height, png.colorType], [28, 28, 0]);
    deepEqual(png.pixels, set.images.subarray(index * 784, (index + 1) * 784), `sample ${index}`);
  }
});

Deno.test("renderSampleGrid writes .png and .svg; other names are a one-line error", async () => {
  const set = gradientSet(4);
  const dir = tempDir();
  await renderSampleGrid(set, join(dir, "grid.png"), { count: 4 });
  await renderSampleGrid(set, join(dir, "grid.svg"), { count: 4 });
  deepEqual(listDir(dir), ["grid.png", "grid.svg"]);
  await decodePng(await Deno.readFile(join(dir, "grid.png")));
  await rejects(renderSampleGrid(set, join(dir, "grid.jpg")), (error: unknown) => {
    ok(error instanceof DataError);
    match(error.message, /grid\.jpg: unknown figure format; name the file \.png or \.svg/);
    return true;
  });
  await renderSampleGrid(set, join(dir, "new", "grid.png"), { count: 1 }); // folders are made
  await rejects(renderSampleGrid(set, join(dir, "grid.png", "grid.png")), (error: unknown) => {
    ok(error instanceof DataError && !error.message.includes("\n"));
    match(
      error.message,
      /grid\.png\/grid\.png: .*Remove or rename .* or write the figure somewhere else\.$/,
    );
    return true;
  });
  deepEqual(listDir(dir), ["grid.png", "grid.svg", "new"]);
});
