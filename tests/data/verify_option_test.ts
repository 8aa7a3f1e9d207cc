/**
 * `loadFashionMnist({ verify: false })`: files of one's own in FashionMNIST's format, read as
 * they are; and the command line's re-wording of the library's option names as flags.
 */
import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { join } from "node:path";
import { DataError } from "../../data/errors.ts";
import { loadFashionMnist } from "../../data/mod.ts";
import { flagWording } from "../../cli/wording.ts";
import { makeFixture, tempDir, writeFixture } from "../data_fixtures.ts";

// Not the official files: their checksums are the fixture's own, so only `verify: false` reads
// them. 12 training and 5 test images.
const fixture = await makeFixture({ seed: 3 });

Deno.test("verify: false reads the data folder's files as they are, with no download", async () => {
  const dir = tempDir();
  await writeFixture(fixture, dir);
  const data = await loadFashionMnist({
    dataDir: dir,
    verify: false,
    mirrors: ["http://127.0.0.1:9/"], // never contacted: nothing is downloaded
    log: (line) => {
      throw new Error(`unexpected notice: ${line}`);
    },
  });
  equal(data.train.count, 12);
  equal(data.test.count, 5);
  equal(data.location.dataDir, dir);
  for (const file of Object.values(data.location.files)) {
    equal(file.method, "none");
    ok(file.path.startsWith(dir + "/"), file.path);
  }
  const trainLabels = fixture.raw.get("train-labels-idx1-ubyte.gz")!;
  deepEqual(Array.from(data.train.labels), Array.from(trainLabels.subarray(8)), "labels as stored");
});

Deno.test("verify (default true) refuses the same files: they are not the official ones", async () => {
  const dir = tempDir();
  await writeFixture(fixture, dir);
  await rejects(
    loadFashionMnist({ dataDir: dir, download: false, progress: "none", log: () => {} }),
    (error: unknown) => {
      ok(error instanceof DataError, String(error));
      match(error.message, /not the official FashionMNIST files.*load it with `verify: false`/);
      return true;
    },
  );
});

Deno.test("verify: false with a file missing: a DataError that names it", async () => {
  const dir = tempDir();
  await writeFixture(fixture, dir);
  const missing = join(dir, "t10k-labels-idx1-ubyte.gz");
  await Deno.remove(missing);
  await rejects(loadFashionMnist({ dataDir: dir, verify: false }), (error: unknown) => {
    ok(error instanceof DataError, String(error));
    ok(error.message.startsWith(`${missing}: cannot be read`), error.message);
    return true;
  });
});

Deno.test("the command line names flags where the library names options", () => {
  equal(
    flagWording(
      "x: is not the official FashionMNIST file. To use this file as it is, load it with " +
        "`verify: false`; for FashionMNIST, choose another folder with the `dataDir` option or " +
        "WGTORCH_DATA_DIR, or leave both unset.",
    ),
    "x: is not the official FashionMNIST file. To use this file as it is, add --no-verify (the " +
      "training commands); for FashionMNIST, choose another folder with --data-dir or " +
      "WGTORCH_DATA_DIR, or leave both unset.",
  );
  equal(
    flagWording("give another mirror with the `mirrors` option or WGTORCH_MIRRORS, or copy"),
    "give another mirror with --mirror URL or WGTORCH_MIRRORS, or copy",
  );
  equal(
    flagWording('mirror "x": not a valid URL. Fix this `mirrors` entry.'),
    'mirror "x": not a valid URL. Fix the --mirror value.',
  );
  equal(flagWording("nothing to re-word"), "nothing to re-word");
});
