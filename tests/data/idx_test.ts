import { deepEqual, equal, match, ok, rejects, throws } from "node:assert/strict";
import { join } from "node:path";
import { DataError } from "../../data/errors.ts";
import { loadFashionMnist } from "../../data/fashion_mnist.ts";
import {
  encodeIdx,
  gunzip,
  gzip,
  parseIdx,
  parseImages,
  parseLabels,
  readGzipFile,
} from "../../data/idx.ts";
import { makeFixture, tempDir, writeFixture } from "../data_fixtures.ts";

function oneLine(pattern: RegExp) {
  return (error: unknown) => {
    ok(error instanceof DataError, String(error));
    ok(!error.message.includes("\n"), error.message);
    match(error.message, pattern);
    return true;
  };
}

Deno.test("IDX: encode and parse round trip, images and labels", () => {
  const pixels = Uint8Array.from({ length: 3 * 4 * 5 }, (_, i) => i * 7 % 256);
  const images = parseImages(encodeIdx([3, 4, 5], pixels), "x", { count: 3, rows: 4, cols: 5 });
  deepEqual([images.count, images.rows, images.cols], [3, 4, 5]);
  deepEqual(images.pixels, pixels);
  const labels = parseLabels(encodeIdx([4], Uint8Array.of(9, 0, 0, 3)), "y", {
    count: 4,
    classes: 10,
  });
  deepEqual(Array.from(labels.labels), [9, 0, 0, 3]);
  const bytes = encodeIdx([2], Uint8Array.of(1, 2));
  deepEqual(Array.from(bytes.subarray(0, 8)), [0, 0, 8, 1, 0, 0, 0, 2]);
  deepEqual(parseIdx(bytes, "z").dims, [2]);
});

Deno.test("IDX: wrong magic, truncation, trailing bytes and bad labels name the file", () => {
  const images = encodeIdx([2, 2, 2], new Uint8Array(8));
  const labels = encodeIdx([2], Uint8Array.of(1, 2));
  throws(
    () => parseLabels(images, "a.idx"),
    oneLine(
      /^a\.idx: wrong magic number 0x00000803, expected 0x00000801 for an IDX file of labels .*Delete the file so that it is fetched again\.$/,
    ),
  );
  throws(
    () => parseImages(labels, "b.idx"),
    oneLine(/^b\.idx: wrong magic number 0x00000801, expected 0x00000803/),
  );
  const float = images.slice();
  float[2] = 0x0d; // IDX type float32: not supported
  throws(
    () => parseIdx(float, "c.idx"),
    oneLine(/^c\.idx: wrong magic number 0x00000d03: not an IDX file of unsigned bytes/),
  );
  throws(
    () => parseImages(images.subarray(0, images.length - 1), "d.idx"),
    oneLine(/^d\.idx: truncated IDX file: 23 bytes, the header \(2x2x2\) announces 24/),
  );
  throws(
    () => parseImages(images.subarray(0, 10), "e.idx"),
    oneLine(/^e\.idx: truncated IDX file: 10 bytes, the header alone needs 16/),
  );
  const longer = new Uint8Array(images.length + 3);
  longer.set(images);
  throws(
    () => parseImages(longer, "f.idx"),
    oneLine(/^f\.idx: 3 unexpected bytes after the 2x2x2 elements/),
  );
  throws(
    () => parseLabels(labels, "g.idx", { count: 3 }),
    oneLine(/^g\.idx: holds 2 labels, expected 3/),
  );
  throws(
    () => parseLabels(encodeIdx([2], Uint8Array.of(1, 12)), "h.idx", { classes: 10 }),
    oneLine(/^h\.idx: label 12 at index 1 is not a class index below 10/),
  );
  throws(
    () => parseImages(images, "i.idx", { rows: 28, cols: 28 }),
    oneLine(/^i\.idx: images are 2x2, expected 28x28/),
  );
});

Deno.test("gzip: not gzip, truncated and corrupt data are one-line errors naming the file", async () => {
  const raw = encodeIdx([100], Uint8Array.from({ length: 100 }, (_, i) => i % 10));
  const gz = await gzip(raw);
  deepEqual(await gunzip(gz, "ok.gz"), raw);
  await rejects(
    gunzip(raw, "plain.gz"),
    oneLine(/^plain\.gz: not a gzip file \(\d+ bytes, starting with 00 00 08 01\)/),
  );
  await rejects(
    gunzip(new TextEncoder().encode("<html><body>Sign in to continue</body></html>"), "portal.gz"),
    oneLine(/looks like an HTML page/),
  );
  await rejects(
    gunzip(gz.subarray(0, gz.length - 9), "cut.gz"),
    oneLine(/^cut\.gz: corrupt or truncated gzip data/),
  );
  const flipped = gz.slice();
  flipped[gz.length - 6] ^= 0xff; // the CRC
  await rejects(gunzip(flipped, "crc.gz"), oneLine(/^crc\.gz: corrupt or truncated gzip data/));
  const dir = tempDir();
  await Deno.writeFile(join(dir, "labels.gz"), gz);
  deepEqual(await readGzipFile(join(dir, "labels.gz")), raw);
  await rejects(readGzipFile(join(dir, "absent.gz")), oneLine(/absent\.gz: cannot be read/));
});

Deno.test("load: parses the training and test sets of the cache folder", async () => {
  const fixture = await makeFixture({ train: 12, test: 5 });
  const dir = tempDir();
  await writeFixture(fixture, dir);
  const data = await loadFashionMnist({
    dataDir: dir,
    files: fixture.files,
    systemDirs: [],
    download: false,
    log: () => {},
  });
  deepEqual([data.train.count, data.train.rows, data.train.cols], [12, 28, 28]);
  equal(data.test.count, 5);
  equal(data.train.images.length, 12 * 784);
  const rawLabels = fixture.raw.get(fixture.files.trainLabels.name)!;
  deepEqual(data.train.labels, rawLabels.subarray(8));
  equal(data.location.files.trainImages.source, "cache");
});

Deno.test("load: a label file whose count disagrees with the image file is a one-line error", async () => {
  const fixture = await makeFixture({ train: 6, trainLabels: 5 });
  const dir = tempDir();
  await writeFixture(fixture, dir);
  await rejects(
    loadFashionMnist({
      dataDir: dir,
      files: fixture.files,
      systemDirs: [],
      download: false,
      log: () => {},
    }),
    oneLine(
      /train-labels-idx1-ubyte\.gz: holds 5 labels but .*train-images-idx3-ubyte\.gz holds 6 images: the two files do not belong together\. Delete both/,
    ),
  );
});

Deno.test("load: an IDX file with a wrong magic is a one-line error naming it", async () => {
  const fixture = await makeFixture();
  // Swap the two training files' roles: the table still verifies, the magic does not.
  const files = {
    ...fixture.files,
    trainImages: { ...fixture.files.trainLabels, name: fixture.files.trainImages.name },
    trainLabels: { ...fixture.files.trainImages, name: fixture.files.trainLabels.name },
  };
  const dir = tempDir();
  await Deno.writeFile(
    join(dir, files.trainImages.name),
    fixture.gz.get(fixture.files.trainLabels.name)!,
  );
  await Deno.writeFile(
    join(dir, files.trainLabels.name),
    fixture.gz.get(fixture.files.trainImages.name)!,
  );
  for (const key of ["testImages", "testLabels"] as const) {
    await Deno.writeFile(join(dir, files[key].name), fixture.gz.get(files[key].name)!);
  }
  await rejects(
    loadFashionMnist({ dataDir: dir, files, systemDirs: [], download: false, log: () => {} }),
    oneLine(/train-images-idx3-ubyte\.gz: wrong magic number 0x00000801, expected 0x00000803/),
  );
});
