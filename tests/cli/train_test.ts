/**
 * `train`, `evaluate` and `predict` through the real entry point (subprocesses) on a small
 * generated dataset: the files a run writes and what they hold, the same numbers from
 * `evaluate`, class probabilities from `predict` (test index and PNG file), and Ctrl-C keeping a
 * consistent history and checkpoint.
 */

import { deepEqual, equal, match, ok } from "node:assert/strict";
import { join } from "node:path";
import { encodePng } from "../../data/png.ts";
import { parseImages, readGzipFile } from "../../data/idx.ts";
import { FASHION_MNIST_FILES } from "../../data/checksums.ts";
import { decodeSafetensors } from "../../nn/safetensors.ts";
import { loadCheckpoint, loadWeights } from "../../train/checkpoint.ts";
import { decodePng } from "../../cli/image.ts";
import { ROOT, runCli, tempOut, writeBlobDataset } from "../cli_fixtures.ts";

// 480 training images: 384 train (3 batches of 128) and 96 validation; 200 test images.
const dataDir = await writeBlobDataset(480, 200);
const data = ["--data-dir", dataDir, "--no-verify", "--progress", "lines"];

Deno.test("train writes weights, checkpoint, history, curves, summary and report", async (t) => {
  const out = await tempOut("train");
  const run = await runCli(["train", "--model", "mlp", "--epochs", "2", "--out", out, ...data]);
  equal(run.code, 0, run.stderr);
  match(run.stderr, /^Adapter: .+/m);
  match(run.stderr, /Split: 384 training \/ 96 validation \/ 200 test images/);
  match(run.stderr, /\[mlp\] epoch 1\/2 {2}train loss \d\.\d{4} acc \d\.\d{4} {2}val loss/);
  match(run.stdout, /^Test accuracy \d\.\d{4}, mean NLL \d+\.\d{4} \(200 images\)/m);
  const files = [...Deno.readDirSync(out)].map((e) => e.name).sort();
  deepEqual(files, [
    "checkpoint.safetensors",
    "command.json",
    "curves.svg",
    "history.csv",
    "history.json",
    "report.md",
    "summary.json",
    "weights.safetensors",
  ]);
  const history = JSON.parse(await Deno.readTextFile(join(out, "history.json")));
  equal(history.history.length, 2);
  equal(history.spec.model, "mlp");
  for (const [i, r] of history.history.entries()) {
    equal(r.epoch, i + 1);
    equal(r.trainImages, 384);
    equal(r.lr, 0.01);
    for (const key of ["trainLoss", "trainAccuracy", "valLoss", "valAccuracy", "seconds"]) {
      ok(Number.isFinite(r[key]), key);
    }
  }
  const csv = (await Deno.readTextFile(join(out, "history.csv"))).trim().split("\n");
  equal(csv.length, 3);
  const header = csv[0].split(",");
  equal(Number(csv[2].split(",")[header.indexOf("valAccuracy")]), history.history[1].valAccuracy);
  const summary = JSON.parse(await Deno.readTextFile(join(out, "summary.json")));
  equal(summary.status, "completed");
  equal(summary.test.samples, 200);
  ok(summary.test.accuracy > 0.6, `test accuracy ${summary.test.accuracy} on separable blobs`);
  equal(summary.test.confusion.flat().reduce((a: number, b: number) => a + b, 0), 200);
  equal(summary.data.split.train, 384);
  match(summary.environment.adapter, /\w/);
  deepEqual(summary.study.row.row, "MLP");
  const svg = await Deno.readTextFile(join(out, "curves.svg"));
  match(svg, /^<\?xml[^]*<svg [^]*<\/svg>\s*$/);
  equal((svg.match(/<path d="M/g) ?? []).length, 4, "train and validation, loss and accuracy");
  const report = await Deno.readTextFile(join(out, "report.md"));
  match(report, /\| Table 1, MLP \| 0\.004 \| 0\.82 \| 0\.\d{4} \| \d\.\d{4} \| \d\.\d{4} \|/);
  match(report, /Loss scaling/);
  match(report, /384 training \/ 96 validation images/);
  match(report, /seed 0/);
  match(report, /Adapter: /);
  match(report, /wall time/);
  match(report, /!\[loss and accuracy per epoch\]\(curves\.svg\)/);
  const weights = await loadWeights(join(out, "weights.safetensors"));
  deepEqual(weights.config, { model: "mlp" });
  deepEqual(
    Object.keys(decodeSafetensors(await Deno.readFile(join(out, "weights.safetensors"))).tensors)
      .sort(),
    [
      "fc1.bias",
      "fc1.weight",
      "fc2.bias",
      "fc2.weight",
      "fc3.bias",
      "fc3.weight",
    ],
  );
  const checkpoint = await loadCheckpoint(join(out, "checkpoint.safetensors"));
  equal(checkpoint.epoch, 2);
  equal(checkpoint.optimizer.optimizer, "Adam");

  await t.step("evaluate gives the same test numbers", async () => {
    const run = await runCli([
      "evaluate",
      "--weights",
      join(out, "weights.safetensors"),
      "--json",
      "--data-dir",
      dataDir,
      "--no-verify",
    ]);
    equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout);
    equal(result.accuracy, summary.test.accuracy);
    ok(Math.abs(result.loss - summary.test.loss) < 1e-6);
    deepEqual(result.confusion, summary.test.confusion);
    equal(result.perClass.length, 10);
  });

  await t.step("predict: a test image by index, and a PNG file", async () => {
    const byIndex = await runCli([
      "predict",
      "--weights",
      join(out, "checkpoint.safetensors"),
      "--index",
      "3",
      "--json",
      "--data-dir",
      dataDir,
      "--no-verify",
    ]);
    equal(byIndex.code, 0, byIndex.stderr);
    const p = JSON.parse(byIndex.stdout);
    const total = Object.values(p.probabilities as Record<string, number>).reduce(
      (a, b) => a + b,
      0,
    );
    ok(Math.abs(total - 1) < 1e-4, `probabilities sum to ${total}`);
    equal(typeof p.label, "number");
    const images = parseImages(
      await readGzipFile(join(dataDir, FASHION_MNIST_FILES.testImages.name)),
      "test images",
    );
    const png = await encodePng({
      width: 28,
      height: 28,
      channels: 1,
      data: images.pixels.slice(3 * 784, 4 * 784),
    });
    const file = join(await Deno.makeTempDir(), "image.png");
    await Deno.writeFile(file, png);
    deepEqual((await decodePng(png)).pixels, images.pixels.slice(3 * 784, 4 * 784));
    const byFile = await runCli([
      "predict",
      "--weights",
      join(out, "weights.safetensors"),
      "--image",
      file,
      "--json",
    ]);
    equal(byFile.code, 0, byFile.stderr);
    const q = JSON.parse(byFile.stdout);
    equal(q.predicted, p.predicted);
    for (const [name, value] of Object.entries(q.probabilities as Record<string, number>)) {
      ok(Math.abs(value - p.probabilities[name]) < 1e-5, name);
    }
  });
});

Deno.test("Ctrl-C keeps the finished epochs' history and checkpoint; --resume finishes", async () => {
  const out = await tempOut("interrupt");
  // 160 images: 128 training (one batch), 32 validation: about 0.2 s per epoch.
  const small = [
    "--data-dir",
    await writeBlobDataset(160, 50),
    "--no-verify",
    "--progress",
    "lines",
  ];
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      join(ROOT, "cli.ts"),
      "train",
      "--model",
      "mlp",
      "--epochs",
      "20",
      "--out",
      out,
      ...small,
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const decoder = new TextDecoder();
  let stderr = "";
  const reader = child.stderr.getReader();
  let signalled = false;
  while (true) {
    const { value, done } = await reader.read();
    if (done) break;
    stderr += decoder.decode(value, { stream: true });
    if (!signalled && /epoch 2\/20 /.test(stderr)) {
      child.kill("SIGINT");
      signalled = true;
    }
  }
  const status = await child.status;
  await child.stdout.cancel();
  ok(signalled, stderr);
  equal(status.code, 130, stderr);
  match(stderr, /Ctrl-C: stopping/);
  const done = Number(/Interrupted after (\d+) finished epochs? of 20/.exec(stderr)?.[1]);
  ok(done >= 2 && done < 20, stderr);
  match(stderr, new RegExp(`history: +${out.replaceAll("/", "\\/")}\\/history\\.json`));
  match(
    stderr,
    new RegExp(
      `checkpoint: ${out.replaceAll("/", "\\/")}\\/checkpoint\\.safetensors \\(epoch ${done}\\)`,
    ),
  );
  const history = JSON.parse(await Deno.readTextFile(join(out, "history.json"))).history;
  equal(history.length, done);
  deepEqual(
    history.map((r: { epoch: number }) => r.epoch),
    Array.from({ length: done }, (_, i) => i + 1),
  );
  const csv = (await Deno.readTextFile(join(out, "history.csv"))).trim().split("\n");
  equal(csv.length, done + 1);
  equal((await loadCheckpoint(join(out, "checkpoint.safetensors"))).epoch, done);
  const summary = JSON.parse(await Deno.readTextFile(join(out, "summary.json")));
  equal(summary.status, "interrupted");
  equal(summary.epochsDone, done);
  equal(summary.test, null);
  match(await Deno.readTextFile(join(out, "report.md")), /\*\*interrupted\*\* \(Ctrl-C\)/);
  ok(!(await Deno.stat(join(out, "weights.safetensors")).then(() => true, () => false)));
  match(
    stderr,
    new RegExp(`continue: +deno run -A cli\\.ts train --resume ${out.replaceAll("/", "\\/")}`),
  );

  const refused = await runCli(["train", "--resume", out, "--epochs", "3"]);
  equal(refused.code, 2);
  match(refused.stderr, /--resume takes its settings from .*command\.json; drop --epochs/);
  const resumed = await runCli(["train", "--resume", out, "--progress", "lines"]);
  equal(resumed.code, 0, resumed.stderr);
  match(resumed.stderr, new RegExp(`resuming after epoch ${done} of 20`));
  const full = JSON.parse(await Deno.readTextFile(join(out, "history.json"))).history;
  deepEqual(
    full.map((r: { epoch: number }) => r.epoch),
    Array.from({ length: 20 }, (_, i) => i + 1),
  );
  deepEqual(full.slice(0, done), history, "finished epochs are kept as they were");
  equal((await loadCheckpoint(join(out, "checkpoint.safetensors"))).epoch, 20);
  equal(JSON.parse(await Deno.readTextFile(join(out, "summary.json"))).status, "completed");
  ok(await Deno.stat(join(out, "weights.safetensors")).then(() => true, () => false));
  const started = JSON.parse(await Deno.readTextFile(join(out, "command.json"))).started;
  match(
    await Deno.readTextFile(join(out, "report.md")),
    new RegExp(`- Started: ${started.replaceAll(".", "\\.")} \\(resumed \\d{4}-`),
    "the report keeps the first start and says when it resumed",
  );
});

Deno.test("a diverging run stops with the epoch and exit code 1", async () => {
  const out = await tempOut("nan");
  const run = await runCli([
    "train",
    "--model",
    "mlp",
    "--optimizer",
    "sgd",
    "--lr",
    "1e30",
    "--epochs",
    "3",
    "--out",
    out,
    ...data,
  ]);
  equal(run.code, 1, run.stderr);
  match(run.stderr, /error: the training loss became NaN or infinite in epoch 1 \(batch \d\)/);
  const summary = JSON.parse(await Deno.readTextFile(join(out, "summary.json")));
  equal(summary.status, "diverged");
});

Deno.test("a CNN-BN run with SGD at lr 1e6 stops as diverged with exit code 1", async () => {
  // It used to end "completed" with a finite loss, running_var infinite and chance accuracy: an
  // infinite variance normalises to the bias, and ReLU turned NaN into 0.
  const out = await tempOut("nan_bn");
  const run = await runCli([
    "train",
    "--model",
    "cnn-bn",
    "--optimizer",
    "sgd",
    "--lr",
    "1e6",
    "--epochs",
    "3",
    "--out",
    out,
    ...data,
  ]);
  equal(run.code, 1, run.stderr);
  match(
    run.stderr,
    /error: the (training loss|parameters|running statistics)( \(first [\w.]+\))? became NaN or infinite in epoch 1 \(batch \d\); training diverged/,
  );
  const summary = JSON.parse(await Deno.readTextFile(join(out, "summary.json")));
  equal(summary.status, "diverged");
});
