import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { join } from "node:path";
import { writeText } from "../../cli/files.ts";
import { renderSampleGrid } from "../../data/sample_grid.ts";
import { DataError } from "../../data/errors.ts";
import { writeFileAtomic } from "../../train/tune/fs_atomic.ts";
import {
  fillDisk,
  listDir,
  makeFixture,
  mountSmallDisk,
  SMALL_DISK_SKIP,
  tempDir,
} from "../data_fixtures.ts";
import { parseImages, parseLabels } from "../../data/idx.ts";
import { imageSetOf } from "../../data/dataset.ts";
import { runCli, writeBlobDataset } from "../cli_fixtures.ts";

Deno.test("atomic write: replaces the file; no temporary file is left", async () => {
  const dir = tempDir();
  const path = join(dir, "a.json");
  await writeFileAtomic(path, "one");
  await writeFileAtomic(path, "two");
  equal(await Deno.readTextFile(path), "two");
  deepEqual(listDir(dir), ["a.json"]);
});

Deno.test("atomic write: a missing folder keeps its error class and names the file", async () => {
  const path = join(tempDir(), "missing", "a.json");
  await rejects(writeFileAtomic(path, "x"), (error: unknown) => {
    ok(error instanceof Deno.errors.NotFound, String(error));
    equal((error as { code?: string }).code, "ENOENT");
    ok(error.message.startsWith(`${path}: could not be written: `), error.message);
    return true;
  });
});

Deno.test({
  name: `atomic write: a full disk names the file, keeps ENOSPC and leaves no temporary file${
    SMALL_DISK_SKIP ? ` (skipped: ${SMALL_DISK_SKIP})` : ""
  }`,
  ignore: SMALL_DISK_SKIP !== null,
  async fn() {
    const disk = mountSmallDisk(64);
    if ("skip" in disk) throw new Error(disk.skip);
    try {
      await fillDisk(disk.dir, 48 * 1024);
      const path = join(disk.dir, "summary.json");
      for (const write of [writeFileAtomic, writeText]) {
        await rejects(write(path, "x".repeat(100_000)), (error: unknown) => {
          ok(error instanceof Error);
          equal((error as { code?: string }).code, "ENOSPC");
          match(error.message, /summary\.json: could not be written: No space left on device/);
          ok(!error.message.includes("\n"), error.message);
          return true;
        });
        deepEqual(listDir(disk.dir), ["filler"], "the temporary file is removed");
      }
      // The sample grid goes through the same helper, with the data layer's one-line advice.
      const fixture = await makeFixture({ train: 40 });
      const name = fixture.files.trainImages.name, labels = fixture.files.trainLabels.name;
      const set = imageSetOf(
        parseImages(fixture.raw.get(name)!, name),
        parseLabels(fixture.raw.get(labels)!, labels),
      );
      await Deno.writeFile(join(disk.dir, "filler"), new Uint8Array(60 * 1024));
      const grid = join(disk.dir, "grid.svg");
      await rejects(renderSampleGrid(set, grid, { perClass: 4 }), (error: unknown) => {
        ok(error instanceof DataError, String(error));
        match(error.message, /grid\.svg: the disk is full/);
        return true;
      });
      deepEqual(listDir(disk.dir), ["filler"]);
    } finally {
      await disk.unmount();
    }
  },
});

Deno.test({
  name:
    `train --out on a full disk: exit 1, one line naming the file and ENOSPC, no temporary file${
      SMALL_DISK_SKIP ? ` (skipped: ${SMALL_DISK_SKIP})` : ""
    }`,
  ignore: SMALL_DISK_SKIP !== null,
  async fn() {
    const data = await writeBlobDataset(64, 32);
    const disk = mountSmallDisk(64);
    if ("skip" in disk) throw new Error(disk.skip);
    try {
      const out = join(disk.dir, "out");
      const run = await runCli([
        "train",
        "--model",
        "mlp",
        "--epochs",
        "1",
        "--data-dir",
        data,
        "--no-verify",
        "--progress",
        "none",
        "--out",
        out,
      ]);
      equal(run.code, 1, run.stderr);
      const errors = run.stderr.split("\n").filter((line) => line.startsWith("error: "));
      equal(errors.length, 1, run.stderr);
      match(
        errors[0],
        new RegExp(`^error: ${out}/[a-z]+\\.[a-z]+: could not be written: No space left on device`),
      );
      ok(!/^\s+at /m.test(run.stderr), `no stack trace:\n${run.stderr}`);
      const left = listDir(out).filter((name) => name.includes(".tmp-"));
      deepEqual(left, [], "no temporary file is left");
    } finally {
      await disk.unmount();
      await Deno.remove(data, { recursive: true });
    }
  },
});
