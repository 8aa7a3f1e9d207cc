/**
 * Bad input to the CLI, through the real entry point (subprocesses) on a small generated
 * dataset: each mistake is refused with a one-line message naming the flag (or file) and what
 * would be right, with exit code 2 for usage errors, before any training.
 */

import { equal, match, ok } from "node:assert/strict";
import { join } from "node:path";
import { encodePng } from "../../data/png.ts";
import { gpu } from "../../nn/gpu/device.ts";
import { maxBatchSize, maxL1 } from "../../nn/model_limits.ts";
import { cnnBn } from "../../nn/models.ts";
import { encodeSafetensors } from "../../nn/safetensors.ts";
import { MODEL_KEY, readTensors, saveWeights } from "../../train/checkpoint.ts";
import { type CliResult, runCli, tempOut, writeBlobDataset } from "../cli_fixtures.ts";
import { gpuReady } from "../testing.ts";

await gpuReady();

// 480 training images, 200 test images.
const dataDir = await writeBlobDataset(480, 200);
const data = ["--data-dir", dataDir, "--no-verify", "--progress", "none"];
const testData = ["--data-dir", dataDir, "--no-verify"];

// Weights files: a good CNN-BN, and copies with NaN, bad metadata JSON, a huge metadata l1.
const files = await Deno.makeTempDir({ prefix: "wgtorch_cli_input_" });
const model = cnnBn();
const goodWeights = join(files, "good.safetensors");
await saveWeights(goodWeights, model);
const tensors = await readTensors(model.stateDict());
model.dispose();
async function weightsFile(
  name: string,
  metadata: string,
  change: (t: typeof tensors) => void = () => {},
): Promise<string> {
  const copy = Object.fromEntries(
    Object.entries(tensors).map(([k, t]) => [k, { shape: t.shape, data: t.data.slice() }]),
  );
  change(copy);
  const path = join(files, name);
  await Deno.writeFile(path, encodeSafetensors(copy, { [MODEL_KEY]: metadata }));
  return path;
}
const nanWeights = await weightsFile("nan.safetensors", '{"model":"cnn-bn"}', (t) => {
  t["fc.weight"].data[5] = NaN;
});
const badJson = await weightsFile("badjson.safetensors", '{"model": "cnn-bn"');
const hugeL1 = await weightsFile("hugel1.safetensors", '{"model":"tuning-cnn","l1":1000000000}');
const aFile = join(files, "a-file.txt");
await Deno.writeTextFile(aFile, "not a folder");

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

Deno.test("an empty training, validation or test set is a usage error before any upload", async () => {
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
  const noTest = await writeBlobDataset(100, 0);
  assertUsage(
    await runCli(["train", "--data-dir", noTest, "--no-verify", "--progress", "none"]),
    /the test set holds no images: .*--no-verify/,
  );
  // A --limit above the 480 images there are: found empty once the data is read, not uploaded.
  assertUsage(
    await runCli(["train", "--limit", "100000", "--val-split", "0.999", ...data]),
    /--val-split 0.999 leaves no training images \(all 480 training images held out/,
  );
});

Deno.test("batch sizes larger than the adapter holds are refused, naming the flag", async () => {
  const largest = maxBatchSize({ model: "cnn-bn" }, gpu().limits);
  const out = await tempOut("batch");
  const batch = await runCli(["train", "--batch-size", String(largest + 1), "--out", out, ...data]);
  assertUsage(
    batch,
    new RegExp(`train: --batch-size ${largest + 1}: .*at most ${largest} .*cnn-bn`),
  );
  ok(!/Data:/.test(batch.stderr), "refused before the data is loaded");
  ok(!(await exists(out)), "no output folder made");
  assertUsage(
    await runCli(["train", "--eval-batch-size", "100000", ...data]),
    new RegExp(`train: --eval-batch-size 100000: .*expected an integer from 1 to ${largest}`),
  );
  const compared = await runCli([
    "compare",
    "--epochs",
    "1",
    "--eval-batch-size",
    "100000",
    ...data,
  ]);
  assertUsage(
    compared,
    new RegExp(`compare: --eval-batch-size 100000: .*expected an integer from 1 to ${largest}`),
  );
  ok(!/Data:/.test(compared.stderr), "refused before the data is loaded");
  const evaluated = await runCli([
    "evaluate",
    "--weights",
    goodWeights,
    "--batch-size",
    "100000",
    ...testData,
  ]);
  assertUsage(evaluated, new RegExp(`evaluate: --batch-size 100000: .*at most ${largest}`));
  ok(!/Test set/.test(evaluated.stdout));
});

Deno.test("an l1 too large for the adapter is refused before allocating it", async () => {
  const largest = maxL1(gpu().limits);
  assertUsage(
    await runCli(["train", "--model", "tuning-cnn", "--l1", "1000000000", ...data]),
    new RegExp(`train: --l1 1000000000: .*expected an integer from 1 to ${largest}`),
  );
  assertUsage(
    await runCli(["evaluate", "--weights", hugeL1, ...testData]),
    new RegExp(`hugel1.safetensors: l1 in its metadata 1000000000: .*from 1 to ${largest}`),
  );
});

Deno.test("weights files: bad metadata, NaN values and flags that do not apply", async () => {
  assertUsage(
    await runCli(["evaluate", "--weights", badJson, ...testData]),
    /evaluate: --weights .*badjson\.safetensors: its metadata is not valid JSON/,
  );
  const nan = await runCli(["evaluate", "--weights", nanWeights, ...testData]);
  equal(nan.code, 1, nan.stderr);
  match(nan.stderr, /nan\.safetensors: fc\.weight\[5\] is NaN or infinite: the run that saved/);
  ok(!/learning rate/.test(nan.stderr), nan.stderr);
  ok(!/^\s+at /m.test(nan.stderr), nan.stderr);
  assertUsage(
    await runCli(["evaluate", "--weights", goodWeights, "--l1", "128", ...testData]),
    /evaluate: --l1 does not apply to cnn-bn/,
  );
  assertUsage(
    await runCli(["predict", "--weights", goodWeights, "--model", "mlp", "--index", "0"]),
    /predict: --model mlp does not apply: .*good\.safetensors holds cnn-bn/,
  );
  assertUsage(
    await runCli(["predict", "--weights", goodWeights, "--index", "0", "--invert", ...testData]),
    /predict: --invert does not apply to --index/,
  );
});

Deno.test("train: flags that do not apply to the chosen model or optimizer", async () => {
  assertUsage(
    await runCli(["train", "--model", "cnn-bn", "--l1", "128", ...data]),
    /train: --l1 does not apply to --model cnn-bn/,
  );
  assertUsage(
    await runCli(["train", "--momentum", "0.9", ...data]),
    /train: --momentum does not apply to --optimizer adam/,
  );
  assertUsage(
    await runCli(["train", "--gamma", "0.5", ...data]),
    /train: --gamma does not apply without --step-size N/,
  );
});

Deno.test("predict --image: a missing or damaged file is a usage error naming it", async () => {
  const missing = join(files, "missing.png");
  assertUsage(
    await runCli(["predict", "--weights", goodWeights, "--image", missing]),
    /predict: --image .*missing\.png: no such file/,
  );
  const png = await encodePng({ width: 28, height: 28, channels: 1, data: new Uint8Array(784) });
  png[40] ^= 1; // inside IDAT: its CRC no longer matches
  const damaged = join(files, "damaged.png");
  await Deno.writeFile(damaged, png);
  assertUsage(
    await runCli(["predict", "--weights", goodWeights, "--image", damaged]),
    /predict: --image .*damaged\.png: corrupt PNG \(CRC mismatch/,
  );
  assertUsage(
    await runCli(["predict", "--weights", goodWeights, "--image", damaged, "--set", "train"]),
    /predict: --set does not apply to --image/,
  );
});

Deno.test("--out on a file, or under one, is a usage error naming the flag", async () => {
  assertUsage(
    await runCli(["train", "--epochs", "1", "--out", aFile, ...data]),
    /train: --out .*a-file\.txt is a file; expected a new or empty folder/,
  );
  assertUsage(
    await runCli(["train", "--epochs", "1", "--out", join(aFile, "run"), ...data]),
    /train: --out .*a-file\.txt\/run: a file is in the way/,
  );
  const evaluated = await runCli([
    "evaluate",
    "--weights",
    goodWeights,
    "--out",
    aFile,
    ...testData,
  ]);
  assertUsage(evaluated, /evaluate: --out .*a-file\.txt is a file; expected a new or empty folder/);
  ok(!/Mean NLL/.test(evaluated.stdout), "refused before evaluating");
  equal(await Deno.readTextFile(aFile), "not a folder");
});

// /sys is read-only in containers (even for root, whom permissions do not stop).
const sysReadOnly = await Deno.mkdir("/sys/wgtorch_probe").then(
  () => Deno.remove("/sys/wgtorch_probe").then(() => false),
  () => true,
);

Deno.test({
  name: "--out on a read-only path is a usage error naming the flag",
  ignore: !sysReadOnly,
  fn: async () => {
    assertUsage(
      await runCli(["train", "--epochs", "1", "--out", "/sys/wgtorch_out", ...data]),
      /train: --out \/sys\/wgtorch_out: no permission to create the folder there \(read-only\?\)/,
    );
  },
});

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("--resume from a damaged checkpoint is a usage error naming it; nothing is lost", async () => {
  const out = await tempOut("resume");
  const first = await runCli([
    "train",
    "--model",
    "mlp",
    "--epochs",
    "2",
    "--limit",
    "200",
    "--out",
    out,
    ...data,
  ]);
  equal(first.code, 0, first.stderr);
  // As if stopped after epoch 1 with its checkpoint then damaged on disk.
  await Deno.remove(join(out, "summary.json"));
  const damaged = new TextEncoder().encode("not a safetensors file");
  await Deno.writeFile(join(out, "checkpoint.safetensors"), damaged);
  const resumed = await runCli(["train", "--resume", out]);
  assertUsage(
    resumed,
    /--resume: cannot resume from .*checkpoint\.safetensors: it is damaged \(.+\); move it away/,
  );
  match(resumed.stderr.trim().split("\n").at(-1)!, /^--resume: cannot resume from/);
  equal(
    new TextDecoder().decode(await Deno.readFile(join(out, "checkpoint.safetensors"))),
    "not a safetensors file",
  );
});
