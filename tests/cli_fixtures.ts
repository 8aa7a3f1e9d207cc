/**
 * Helpers of the CLI tests: a small learnable dataset written as the four FashionMNIST IDX .gz
 * files (read with `--no-verify`), and running `cli.ts` as a subprocess.
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { FASHION_MNIST_FILES } from "../data/checksums.ts";
import { encodeIdx, gzip } from "../data/idx.ts";
import { blobImages } from "./synthetic.ts";

/** The repository root (where cli.ts is). */
export const ROOT: string = fileURLToPath(new URL("..", import.meta.url));

/** Images and labels of the blob problem as bytes. */
function blobBytes(count: number, seed: number): { images: Uint8Array; labels: Uint8Array } {
  const { images, labels } = blobImages(count, seed);
  return {
    images: Uint8Array.from(images, (v) => Math.round(v * 255)),
    labels: Uint8Array.from(labels),
  };
}

/**
 * Writes a learnable dataset (each class a bright bar at its own place) as the four IDX .gz
 * files into a new temporary folder, and returns it.
 */
export async function writeBlobDataset(train: number, test: number, seed = 1): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "wgtorch_cli_data_" });
  const write = async (name: string, dims: number[], bytes: Uint8Array) => {
    await Deno.writeFile(join(dir, name), await gzip(encodeIdx(dims, bytes)));
  };
  const a = blobBytes(train, seed), b = blobBytes(test, seed + 1);
  const files = FASHION_MNIST_FILES;
  await write(files.trainImages.name, [train, 28, 28], a.images);
  await write(files.trainLabels.name, [train], a.labels);
  await write(files.testImages.name, [test, 28, 28], b.images);
  await write(files.testLabels.name, [test], b.labels);
  return dir;
}

/** What a CLI subprocess did. */
export interface CliResult {
  /** Exit code. */
  code: number;
  /** Its stdout. */
  stdout: string;
  /** Its stderr. */
  stderr: string;
}

/** Runs `deno run -A cli.ts ...args` in the repository root (or in `cwd`). */
export async function runCli(
  args: readonly string[],
  options: { cwd?: string } = {},
): Promise<CliResult> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(ROOT, "cli.ts"), ...args],
    cwd: options.cwd ?? ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

/** A fresh temporary folder for a run's output (not created: the CLI creates it). */
export async function tempOut(prefix: string): Promise<string> {
  const parent = await Deno.makeTempDir({ prefix: `wgtorch_${prefix}_` });
  return join(parent, "out");
}
