/**
 * A real-data run through the real entry point: the MLP on the first 6,000 FashionMNIST
 * training images (4,800 / 1,200 split) for 2 epochs must beat 0.70 accuracy on the full
 * 10,000-image test set. Needs the Debian package dataset-fashion-mnist (installed in CI) or a
 * cached copy; nothing is downloaded.
 */

import { equal, ok } from "node:assert/strict";
import { join } from "node:path";
import { runCli, tempOut } from "../cli_fixtures.ts";

Deno.test("real data: MLP, --limit 6000 --epochs 2, beats 0.70 test accuracy", async () => {
  const out = await tempOut("real");
  const run = await runCli([
    "train",
    "--model",
    "mlp",
    "--limit",
    "6000",
    "--epochs",
    "2",
    "--offline",
    "--progress",
    "lines",
    "--out",
    out,
  ]);
  equal(
    run.code,
    0,
    `${run.stderr}\n(install the Debian package dataset-fashion-mnist, or run the download command)`,
  );
  const summary = JSON.parse(await Deno.readTextFile(join(out, "summary.json")));
  equal(summary.data.split.train, 4800);
  equal(summary.data.split.val, 1200);
  equal(summary.test.samples, 10000);
  ok(summary.test.accuracy > 0.7, `test accuracy ${summary.test.accuracy}`);
});
