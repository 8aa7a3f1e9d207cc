/**
 * The real FashionMNIST: Debian's copy (installed by .ci/run: package dataset-fashion-mnist) is
 * found, verified by content and parsed; the byte-exact official files (../shared, present on
 * development machines only) are downloaded from a loopback server through the official MD5s.
 */

import { deepEqual, equal, ok } from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { FASHION_MNIST_FILES, SYSTEM_DATA_DIRS } from "../../data/checksums.ts";
import { downloadCommand } from "../../cli/download_command.ts";
import { classCounts, splitTrainVal } from "../../data/dataset.ts";
import {
  ensureFashionMnist,
  type FashionMnist,
  loadFashionMnist,
} from "../../data/fashion_mnist.ts";
import { DataLoader, GpuDataset } from "../../data/loader.ts";
import { gatherReference } from "./reference.ts";
import { md5Hex } from "../../data/verify.ts";
import { serveFixture, tempDir } from "../data_fixtures.ts";
import { assertClose, gpuReady } from "../testing.ts";

const SYSTEM_DIR = SYSTEM_DATA_DIRS[0];
const OFFICIAL_DIR = fileURLToPath(new URL("../../../shared/data/fashion-mnist/", import.meta.url));
const hasOfficial = (() => {
  try {
    return Deno.statSync(join(OFFICIAL_DIR, FASHION_MNIST_FILES.trainImages.name)).isFile;
  } catch {
    return false;
  }
})();

let loaded: FashionMnist | null = null;
/** The system copy, parsed once for the whole module. */
async function systemCopy(): Promise<FashionMnist> {
  try {
    Deno.statSync(SYSTEM_DIR);
  } catch {
    throw new Error(
      `${SYSTEM_DIR} is missing: install the Debian package dataset-fashion-mnist ` +
        "(apt-get install dataset-fashion-mnist; .ci/run does) to run these tests",
    );
  }
  loaded ??= await loadFashionMnist({ dataDir: tempDir(), download: false, log: () => {} });
  return loaded;
}

Deno.test("real data: Debian's copy is found and verified by the SHA-256 of its content", async () => {
  const data = await systemCopy();
  for (const file of Object.values(data.location.files)) {
    equal(file.source, "system");
    equal(file.path, join(SYSTEM_DIR, file.spec.name));
    // Debian rewrote the gzip headers: the official MD5 cannot match, the content does.
    equal(file.method, "sha256");
  }
});

Deno.test("real data: 60,000 + 10,000 images of 28x28, 6,000 per class, first labels 9,0,0,3", async () => {
  const { train, test } = await systemCopy();
  deepEqual([train.count, train.rows, train.cols], [60_000, 28, 28]);
  deepEqual([test.count, test.rows, test.cols], [10_000, 28, 28]);
  equal(train.images.length, 60_000 * 784);
  deepEqual(classCounts(train.labels), Array(10).fill(6_000));
  deepEqual(classCounts(test.labels), Array(10).fill(1_000));
  deepEqual(Array.from(train.labels.subarray(0, 10)), [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
  deepEqual(Array.from(test.labels.subarray(0, 10)), [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]);
  let sum = 0;
  for (const value of train.images) sum += value;
  equal((sum / train.images.length / 255).toFixed(4), "0.2860", "the well-known mean pixel");
  const split = splitTrainVal(train, { seed: 0 });
  deepEqual([split.train.count, split.val.count], [48_000, 12_000]);
});

Deno.test("real data: `download` finds the system copy offline and prints where it is", async () => {
  const out: string[] = [];
  const code = await downloadCommand(["--data-dir", tempDir(), "--offline", "--quiet"], {
    out: (line) => out.push(line),
    err: (line) => out.push(line),
  });
  equal(code, 0, out.join("\n"));
  ok(out[0].startsWith("FashionMNIST is ready"), out.join("\n"));
  ok(out.some((line) => line.includes(join(SYSTEM_DIR, "train-images-idx3-ubyte.gz"))));
});

Deno.test("real data: batches of the test set on the GPU match the CPU reference", async () => {
  await gpuReady();
  const { test } = await systemCopy();
  const dataset = new GpuDataset(test);
  const loader = new DataLoader(dataset, { batchSize: 128, seed: 11 });
  equal(loader.length, 79);
  const order = loader.epochOrder(0);
  for (const batch of loader.batches(0)) {
    if (batch.index === 0 || batch.index === 78) {
      const expected = gatherReference(test, order, { start: batch.index * 128, size: batch.size });
      equal(batch.size, batch.index === 78 ? 16 : 128);
      assertClose(await batch.x.toArray(), expected.x, { atol: 1e-7, rtol: 1e-6 }, "x");
      deepEqual(Array.from(await batch.y.toTypedArray()), Array.from(expected.y));
    }
    batch.dispose();
  }
  loader.dispose();
  dataset.dispose();
});

Deno.test({
  name: `official files: downloaded from a loopback server and verified by the official MD5s${
    hasOfficial
      ? ""
      : ` (skipped: ${OFFICIAL_DIR} is absent; it exists on development machines only)`
  }`,
  ignore: !hasOfficial,
  async fn() {
    const files = new Map<string, Uint8Array>();
    for (const spec of Object.values(FASHION_MNIST_FILES)) {
      files.set(spec.name, await Deno.readFile(join(OFFICIAL_DIR, spec.name)));
    }
    const server = serveFixture(files);
    try {
      const dir = tempDir();
      const options = {
        dataDir: dir,
        systemDirs: [],
        mirrors: [server.mirror("missing"), server.mirror("ok")],
        progress: "none" as const,
        log: () => {},
      };
      const location = await ensureFashionMnist(options);
      for (const file of Object.values(location.files)) {
        equal(file.source, "download");
        equal(file.method, "md5");
        equal(file.url, server.mirror("ok") + file.spec.name);
        equal(md5Hex(await Deno.readFile(file.path)), file.spec.md5);
      }
      const again = await ensureFashionMnist(options);
      ok(Object.values(again.files).every((file) => file.source === "cache"));
    } finally {
      await server.close();
    }
  },
});
