/**
 * Where `ensureFashionMnist` found each file, as lines a person reads.
 *
 * @module
 */

import { IDX_FILE_KEYS } from "./checksums.ts";
import type { FashionMnistLocation } from "./fashion_mnist.ts";

const SOURCE_TEXT = {
  cache: "cached",
  system: "system copy",
  download: "downloaded",
} as const;

/** Lines that say where each file is and how it was verified. */
export function describeLocation(location: FashionMnistLocation): string[] {
  const lines = ["FashionMNIST is ready (all four files verified):"];
  for (const key of IDX_FILE_KEYS) {
    const file = location.files[key];
    const how = file.method === "md5" ? "MD5 of the .gz" : "SHA-256 of the content";
    const from = file.url ? ` from ${file.url}` : "";
    lines.push(`  ${file.path}  (${SOURCE_TEXT[file.source]}${from}; ${how})`);
  }
  lines.push(`Cache folder: ${location.dataDir}`);
  return lines;
}
