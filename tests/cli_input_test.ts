/**
 * Bad input to the CLI, through the real entry point (subprocesses) on a small generated
 * dataset: each mistake is refused with a one-line message naming the flag (or file) and what
 * would be right, with exit code 2 for usage errors, before any training.
 */

import { equal, match, ok } from "node:assert/strict";
import { type CliResult, runCli, writeBlobDataset } from "./cli_fixtures.ts";

// 480 training images, 200 test images.
const dataDir = await writeBlobDataset(480, 200);
const data = ["--data-dir", dataDir, "--no-verify", "--progress", "none"];

/** Asserts a usage error: exit 2, `pattern` in stderr, one line, no stack trace. */
function assertUsage(run: CliResult, pattern: RegExp): void {
  equal(run.code, 2, run.stderr);
  match(run.stderr, pattern);
  ok(!/^\s+at /m.test(run.stderr), `no stack trace:\n${run.stderr}`);
}

Deno.test("seeds outside [0, 2^32) are refused, naming the flag", async () => {
  assertUsage(
    await runCli(["train", "--seed", "4294967296", ...data]),
    /train: --seed "4294967296": expected an integer >= 0 and < 4294967296/,
  );
  assertUsage(
    await runCli(["train", "--split-seed", "4294967297", ...data]),
    /train: --split-seed "4294967297": expected an integer >= 0 and < 4294967296/,
  );
});

Deno.test("an empty training or validation set is a usage error before any GPU work", async () => {
  const swapped = await runCli(["train", "--val-split", "0", "--swap-split", ...data]);
  assertUsage(swapped, /--val-split 0 --swap-split leaves no training images/);
  ok(!/Adapter:/.test(swapped.stderr), "refused before the device is set up");
  const limited = await runCli(["train", "--limit", "2", "--val-split", "0.9", ...data]);
  assertUsage(limited, /--limit 2 with --val-split 0.9 leaves no training images .*--val-split/);
  ok(!/Adapter:/.test(limited.stderr), "refused before the device is set up");
  assertUsage(
    await runCli(["train", "--limit", "3", "--val-split", "0.1", ...data]),
    /--limit 3 with --val-split 0.1 leaves no validation images .*--val-split 0/,
  );
  // A --limit above the 480 images there are: found empty once the data is read, not uploaded.
  assertUsage(
    await runCli(["train", "--limit", "100000", "--val-split", "0.999", ...data]),
    /--val-split 0.999 leaves no training images \(all 480 training images held out/,
  );
});
