/**
 * Test fixtures for the data pipeline: a small generated dataset in the FashionMNIST layout
 * (gzipped IDX files with their own checksums), and a real HTTP server on 127.0.0.1 that serves
 * it with chosen misbehaviours.
 */

import { join } from "node:path";
import type { IdxFileKey, IdxFileSet, IdxFileSpec } from "../data/checksums.ts";
import { IDX_FILE_KEYS } from "../data/checksums.ts";
import { encodeIdx, gzip } from "../data/idx.ts";
import { md5Hex, sha256Hex } from "../data/verify.ts";
import { Rng } from "../nn/random.ts";

/** A generated dataset: the file table and the bytes of each file. */
export interface Fixture {
  /** Names, checksums and counts, like `FASHION_MNIST_FILES`. */
  files: IdxFileSet;
  /** The .gz bytes, by file name. */
  gz: Map<string, Uint8Array>;
  /** The uncompressed IDX bytes, by file name. */
  raw: Map<string, Uint8Array>;
}

/** Options of `makeFixture`. */
export interface FixtureOptions {
  /** Training images (default 12). */
  train?: number;
  /** Test images (default 5). */
  test?: number;
  /** Image side (default 28). */
  side?: number;
  /** Seed of the pixels and labels. */
  seed?: number;
  /** Labels per file when it should disagree with the images (count mismatch). */
  trainLabels?: number;
}

async function entry(
  name: string,
  kind: "images" | "labels",
  dims: number[],
  data: Uint8Array,
): Promise<{ spec: IdxFileSpec; gz: Uint8Array; raw: Uint8Array }> {
  const raw = encodeIdx(dims, data);
  const gz = await gzip(raw);
  return {
    spec: {
      name,
      kind,
      md5: md5Hex(gz),
      bytes: gz.length,
      sha256: sha256Hex(raw),
      rawBytes: raw.length,
      count: dims[0],
    },
    gz,
    raw,
  };
}

/** Generates four small gzipped IDX files and their table. */
export async function makeFixture(options: FixtureOptions = {}): Promise<Fixture> {
  const { train = 12, test = 5, side = 28, seed = 1 } = options;
  const rng = new Rng(seed);
  const bytes = (n: number, max: number) => Uint8Array.from({ length: n }, () => rng.int(max));
  const trainLabels = options.trainLabels ?? train;
  const made = {
    trainImages: await entry(
      "train-images-idx3-ubyte.gz",
      "images",
      [train, side, side],
      bytes(train * side * side, 256),
    ),
    trainLabels: await entry(
      "train-labels-idx1-ubyte.gz",
      "labels",
      [trainLabels],
      bytes(trainLabels, 10),
    ),
    testImages: await entry(
      "t10k-images-idx3-ubyte.gz",
      "images",
      [test, side, side],
      bytes(test * side * side, 256),
    ),
    testLabels: await entry("t10k-labels-idx1-ubyte.gz", "labels", [test], bytes(test, 10)),
  };
  const files = {} as Record<IdxFileKey, IdxFileSpec>;
  const gz = new Map<string, Uint8Array>(), raw = new Map<string, Uint8Array>();
  for (const key of IDX_FILE_KEYS) {
    files[key] = made[key].spec;
    gz.set(made[key].spec.name, made[key].gz);
    raw.set(made[key].spec.name, made[key].raw);
  }
  return { files, gz, raw };
}

/** Writes the fixture's .gz files into `dir`. */
export async function writeFixture(fixture: Fixture, dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  for (const [name, bytes] of fixture.gz) await Deno.writeFile(join(dir, name), bytes);
}

/** One request the server received. */
export interface Hit {
  /** The URL path, e.g. `/ok/train-images-idx3-ubyte.gz`. */
  path: string;
  /** The Range header, if any. */
  range: string | null;
}

/** A running loopback server. */
export interface FixtureServer {
  /** Base URL of the mirror `mode`, e.g. `http://127.0.0.1:4567/ok/`. */
  mirror(mode: string): string;
  /** Every request so far. */
  hits: Hit[];
  /** Stops the server. */
  close(): Promise<void>;
}

/**
 * Serves the files of `files` (name → bytes) under mirror folders whose name picks a behaviour:
 * `ok` (full file), `missing` (404), `bad` (one byte flipped: checksum mismatch), `html` (a web
 * page), `cut-once` (first request per file cut after half, then whole files without Range
 * support), `cut-resume` (the same, but later requests honour Range), `cut-always` (always cut),
 * `stall` (half the file, then nothing), `slow` (the file in many small chunks), `trickle` (64 KiB
 * chunks, 5 ms apart).
 */
export function serveFixture(files: Map<string, Uint8Array>): FixtureServer {
  const hits: Hit[] = [];
  const stalled: ReadableStreamDefaultController<Uint8Array>[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    const { pathname } = new URL(request.url);
    const range = request.headers.get("range");
    hits.push({ path: pathname, range });
    const [, mode, name] = pathname.split("/");
    const data = files.get(name ?? "");
    if (!data || mode === "missing") return new Response("not found", { status: 404 });
    const earlier = hits.filter((hit) => hit.path === pathname).length - 1;
    const full = { "content-length": String(data.length) };
    const cut = () =>
      new Response(
        new ReadableStream({
          start(controller) {
            controller.enqueue(data.slice(0, data.length >> 1));
            controller.close(); // fewer bytes than Content-Length: the connection is cut
          },
        }),
        { headers: full },
      );
    switch (mode) {
      case "ok":
        return new Response(data.slice(), { headers: full });
      case "bad": {
        const wrong = data.slice();
        wrong[wrong.length >> 1] ^= 0x5a;
        return new Response(wrong, { headers: full });
      }
      case "html":
        return new Response("<!doctype html><html><body>Please log in</body></html>", {
          headers: { "content-type": "text/html" },
        });
      case "cut-always":
        return cut();
      case "cut-once":
        return earlier === 0 ? cut() : new Response(data.slice(), { headers: full });
      case "cut-resume": {
        if (earlier === 0) return cut();
        const start = Number(/^bytes=(\d+)-$/.exec(range ?? "")?.[1] ?? NaN);
        if (!Number.isFinite(start)) return new Response(data.slice(), { headers: full });
        return new Response(data.slice(start), {
          status: 206,
          headers: {
            "content-length": String(data.length - start),
            "content-range": `bytes ${start}-${data.length - 1}/${data.length}`,
          },
        });
      }
      case "stall":
        return new Response(
          new ReadableStream({
            start(controller) {
              controller.enqueue(data.slice(0, data.length >> 1));
              stalled.push(controller);
            },
          }),
          { headers: full },
        );
      case "slow": {
        let offset = 0;
        return new Response(
          new ReadableStream({
            pull(controller) {
              if (offset >= data.length) return controller.close();
              controller.enqueue(data.slice(offset, offset += 97));
            },
          }),
          { headers: full },
        );
      }
      case "trickle": {
        // 64 KiB every 5 ms (about 13 MB/s): a large file takes seconds.
        let offset = 0;
        return new Response(
          new ReadableStream({
            async pull(controller) {
              if (offset >= data.length) return controller.close();
              await new Promise((resolve) => setTimeout(resolve, 5));
              controller.enqueue(data.slice(offset, offset += 65536));
            },
          }),
          { headers: full },
        );
      }
      default:
        return new Response("unknown mirror mode", { status: 500 });
    }
  });
  return {
    mirror: (mode) => `http://127.0.0.1:${server.addr.port}/${mode}/`,
    hits,
    async close() {
      for (const controller of stalled) {
        try {
          controller.close();
        } catch { /* already cancelled */ }
      }
      await server.shutdown();
    },
  };
}

const temporary: string[] = [];
globalThis.addEventListener("unload", () => {
  for (const dir of temporary) {
    try {
      Deno.chmodSync(dir, 0o700);
      Deno.removeSync(dir, { recursive: true });
    } catch { /* already gone */ }
  }
});

/** A fresh temporary folder, removed when the test module ends. */
export function tempDir(): string {
  const dir = Deno.makeTempDirSync({ prefix: "wgtorch_data_test_" });
  temporary.push(dir);
  return dir;
}

/** The entries of `dir`, sorted (empty when it does not exist). */
export function listDir(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)].map((entry) => entry.name).sort();
  } catch {
    return [];
  }
}

/** A small tmpfs mounted for a test, or why none could be. */
export type SmallDisk = { dir: string; unmount(): Promise<void> } | { skip: string };

/**
 * Mounts a `kib` KiB tmpfs on a fresh temporary folder (`mount -t tmpfs -o size=...`), to run
 * out of space for real; `{ skip }` says why when mounting is refused (not root, no mount(8)).
 */
export function mountSmallDisk(kib: number): SmallDisk {
  if (Deno.build.os !== "linux") return { skip: "tmpfs mounts need Linux" };
  const dir = tempDir();
  let output: Deno.CommandOutput;
  try {
    output = new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", `size=${kib}k`, "tmpfs", dir],
      stdout: "null",
      stderr: "piped",
    }).outputSync();
  } catch (error) {
    return { skip: `mount(8) could not be run: ${error instanceof Error ? error.message : error}` };
  }
  if (!output.success) {
    const why = new TextDecoder().decode(output.stderr).trim().split("\n")[0];
    return { skip: `mounting a tmpfs was refused: ${why || `exit ${output.code}`}` };
  }
  return {
    dir,
    async unmount() {
      await new Deno.Command("umount", { args: [dir] }).output();
    },
  };
}

/** Whether a small tmpfs can be mounted here (tried once), or why not. */
export const SMALL_DISK_SKIP: string | null = (() => {
  const disk = mountSmallDisk(16);
  if ("skip" in disk) return disk.skip;
  new Deno.Command("umount", { args: [disk.dir] }).outputSync();
  return null;
})();

/** Fills `dir` with a file of `bytes` bytes (`filler`), leaving little room on a small disk. */
export async function fillDisk(dir: string, bytes: number): Promise<void> {
  await Deno.writeFile(join(dir, "filler"), new Uint8Array(bytes));
}
