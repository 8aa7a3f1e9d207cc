/**
 * `--seeds` through the real entry point on a small generated dataset: one sub-run per seed, the
 * aggregate equal to the mean / sample sd / min / max of the sub-runs' own summary.json, paired
 * intervals for the study's comparisons, figures with a band, and Ctrl-C between seeds resumed at
 * the next seed.
 */

import { deepEqual, equal, match, notEqual, ok } from "node:assert/strict";
import { join } from "node:path";
import { ROOT, runCli, tempOut, writeBlobDataset } from "../cli_fixtures.ts";
import { pairedTInterval, spread } from "../../cli/seed_stats.ts";

// 160 images: 128 training (one batch), 32 validation; 50 test images.
const dataDir = await writeBlobDataset(160, 50);
const data = ["--data-dir", dataDir, "--no-verify", "--progress", "lines"];

async function readJson(path: string) {
  return JSON.parse(await Deno.readTextFile(path));
}

function near(actual: number | null, expected: number | null, what: string): void {
  ok(
    actual !== null && expected !== null && Math.abs(actual - expected) < 1e-12,
    `${what}: ${actual} vs ${expected}`,
  );
}

Deno.test("train --seeds 2: two sub-runs and their mean, sd, min, max", async () => {
  const out = await tempOut("seeds_train");
  const run = await runCli([
    "train",
    "--model",
    "mlp",
    "--epochs",
    "2",
    "--seeds",
    "2",
    "--out",
    out,
    ...data,
  ]);
  equal(run.code, 0, run.stderr);
  match(run.stdout, /^Test accuracy over 2 seeds: mean 0\.\d{4}, sd 0\.\d{4}/m);
  const subs = [
    await readJson(join(out, "seed-0", "summary.json")),
    await readJson(join(out, "seed-1", "summary.json")),
  ];
  deepEqual(subs.map((s) => s.spec.seed), [0, 1]);
  deepEqual(subs.map((s) => s.data.split.splitSeed), [0, 1], "each seed splits its own way");
  for (const s of subs) equal(s.status, "completed");
  const top = await readJson(join(out, "summary.json"));
  deepEqual(top.seeds, [0, 1]);
  equal(top.status, "completed");
  match(top.statistics, /n - 1/);
  const acc = subs.map((s) => s.test.accuracy), nll = subs.map((s) => s.test.loss);
  const mean = (v: number[]) => (v[0] + v[1]) / 2;
  const sd = (v: number[]) => Math.abs(v[0] - v[1]) / Math.SQRT2;
  near(top.test.accuracy.mean, mean(acc), "accuracy mean");
  near(top.test.accuracy.sd, sd(acc), "accuracy sd");
  equal(top.test.accuracy.min, Math.min(...acc));
  equal(top.test.accuracy.max, Math.max(...acc));
  deepEqual(top.test.accuracy.values, acc);
  near(top.test.meanNll.mean, mean(nll), "NLL mean");
  near(top.test.meanNll.sd, sd(nll), "NLL sd");
  equal(top.study.row.accuracy, 0.82, "the study's number beside ours");
  const report = await Deno.readTextFile(join(out, "report.md"));
  match(
    report,
    new RegExp(`\\| Table 1, MLP \\| 0\\.82 \\| ${top.test.accuracy.mean.toFixed(4)} ± `),
  );
  match(report, /sample standard deviation/);
  match(report, /\[seed-1\/report\.md\]\(seed-1\/report\.md\)/);
  const svg = await Deno.readTextFile(join(out, "curves.svg"));
  const bands =
    svg.match(/<path class="band" d="M[^"]+Z" fill="#[0-9a-f]{6}" fill-opacity="[\d.]+"/g) ?? [];
  equal(bands.length, 4, "a band for train and validation, loss and accuracy");
  match(svg, /min to max over the seeds/);

  await checkFixedSplit();
});

async function checkFixedSplit(): Promise<void> {
  const out = await tempOut("seeds_fixed");
  const run = await runCli([
    "train",
    "--model",
    "mlp",
    "--epochs",
    "1",
    "--seeds",
    "3,5",
    "--split-seed",
    "7",
    "--out",
    out,
    ...data,
  ]);
  equal(run.code, 0, run.stderr);
  const top = await readJson(join(out, "summary.json"));
  deepEqual(top.seeds, [3, 5]);
  deepEqual(top.splitSeeds, [7, 7]);
  for (const seed of [3, 5]) {
    const sub = await readJson(join(out, `seed-${seed}`, "summary.json"));
    equal(sub.spec.seed, seed);
    equal(sub.data.split.splitSeed, 7, "--split-seed holds the split fixed");
  }
}

Deno.test("--seeds: bad values are usage errors", async () => {
  for (
    const [args, message] of [
      [["--seeds", "0,0"], /--seeds 0,0: a seed is repeated/],
      [["--seeds", "0"], /the count must be 1 to 1000/],
      [["--seeds", "1,x"], /each seed must be an integer/],
      [["--seeds", "1,2", "--seed", "3"], /--seed does not apply with a list of --seeds/],
    ] as const
  ) {
    const run = await runCli(["train", ...args, "--out", await tempOut("seeds_bad"), ...data]);
    equal(run.code, 2, run.stderr);
    match(run.stderr, message);
  }
});

Deno.test("compare --seeds 2: per-row spread and paired intervals from the sub-runs", async () => {
  const out = await tempOut("seeds_compare");
  const run = await runCli(["compare", "--epochs", "1", "--seeds", "2", "--out", out, ...data]);
  equal(run.code, 0, run.stderr);
  match(run.stdout, /^compare\/cnn-bn over 2 seeds: test accuracy 0\.\d{4} ± 0\.\d{4} \(sd\)/m);
  const top = await readJson(join(out, "summary.json"));
  const subs = [
    await readJson(join(out, "seed-0", "summary.json")),
    await readJson(join(out, "seed-1", "summary.json")),
  ];
  const values = (name: string, key: "accuracy" | "meanNll") =>
    subs.map((s) => s.table.find((row: { row: string }) => row.row === name).ours[key]);
  for (const row of top.table) {
    const acc = spread(values(row.row, "accuracy"));
    near(row.ours.accuracy.mean, acc.mean, `${row.row} accuracy mean`);
    near(row.ours.accuracy.sd, acc.sd, `${row.row} accuracy sd`);
    near(row.ours.meanNll.mean, spread(values(row.row, "meanNll")).mean, `${row.row} NLL mean`);
    deepEqual(row.ours.accuracy.values, values(row.row, "accuracy"));
    ok(row.study.accuracy > 0.8, "the study's number beside ours");
  }
  deepEqual(top.comparisons.map((c: { a: string; b: string }) => `${c.a}-${c.b}`), [
    "CNN-MLP",
    "CNN-BN-CNN",
    "CNN-BN-MLP",
  ]);
  const ci = pairedTInterval(values("CNN-BN", "accuracy"), values("CNN", "accuracy"));
  near(top.comparisons[1].accuracy.low, ci.low, "CI low");
  near(top.comparisons[1].accuracy.high, ci.high, "CI high");
  equal(top.comparisons[1].accuracy.df, 1);
  const report = await Deno.readTextFile(join(out, "report.md"));
  match(report, /which differences are real/);
  match(
    report,
    /\| CNN-BN vs CNN \| \+0\.0180 \| [+−]\d\.\d{4} \| \[[+−]\d+\.\d{4}, [+−]\d+\.\d{4}\] \|/,
  );
  match(report, /95% paired t interval/);
  for (const figure of ["fig6a_mlp.svg", "fig6b_cnn.svg", "fig6c_cnn-bn.svg"]) {
    match(
      await Deno.readTextFile(join(out, figure)),
      /<path class="band" d="M[^"]+Z" fill="#/,
      figure,
    );
  }
});

Deno.test("Ctrl-C between seeds: --resume keeps seed 0 and runs seed 1", async () => {
  const out = await tempOut("seeds_resume");
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      join(ROOT, "cli.ts"),
      "train",
      "--model",
      "mlp",
      "--epochs",
      "3",
      "--seeds",
      "2",
      "--out",
      out,
      ...data,
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
    if (!signalled && /^\[seed 0\] test accuracy/m.test(stderr)) {
      child.kill("SIGINT");
      signalled = true;
    }
  }
  const status = await child.status;
  await child.stdout.cancel();
  ok(signalled, stderr);
  equal(status.code, 130, stderr);
  match(
    stderr,
    new RegExp(`continue: +deno run -A cli\\.ts train --resume ${out.replaceAll("/", "\\/")}`),
  );
  const first = await readJson(join(out, "seed-0", "summary.json"));
  equal(first.status, "completed");
  const top = await readJson(join(out, "summary.json"));
  equal(top.status, "interrupted");
  equal(top.test, null, "no statistics before every seed finished");

  const resumed = await runCli(["train", "--resume", out, "--progress", "lines"]);
  equal(resumed.code, 0, resumed.stderr);
  match(resumed.stderr, /-- seed 0 [^]*\[mlp\] finished before: kept as it is/);
  match(resumed.stderr, /-- seed 1 \(2 of 2\)/);
  const kept = await readJson(join(out, "seed-0", "summary.json"));
  deepEqual(kept.test, first.test, "seed 0's result is kept as it was");
  deepEqual(kept.last, first.last, "seed 0 is not trained again");
  const done = await readJson(join(out, "summary.json"));
  equal(done.status, "completed");
  const second = await readJson(join(out, "seed-1", "summary.json"));
  equal(second.status, "completed");
  equal(second.epochsDone, 3);
  near(
    done.test.accuracy.mean,
    (first.test.accuracy + second.test.accuracy) / 2,
    "mean after resume",
  );
  notEqual(done.test.accuracy.sd, null);
});

Deno.test("reproduce --seeds 2: tune once, every other experiment per seed", async () => {
  const out = await tempOut("seeds_reproduce");
  const run = await runCli([
    "reproduce",
    "--epochs",
    "1",
    "--samples",
    "2",
    "--seeds",
    "2",
    "--out",
    out,
    ...data,
  ]);
  equal(run.code, 0, run.stderr);
  const exists = (path: string) => Deno.stat(join(out, path)).then(() => true, () => false);
  for (const name of ["compare", "optimizers", "final"]) {
    for (const seed of [0, 1]) {
      ok(await exists(`${name}/seed-${seed}/report.md`), `${name} ${seed}`);
    }
    const top = await readJson(join(out, name, "summary.json"));
    deepEqual(top.seeds, [0, 1]);
    for (const row of top.table) equal(row.ours.accuracy.n, 2, `${name} ${row.row}`);
  }
  ok(!(await exists("tune/seed-0")), "one search per optimizer");
  ok(!(await exists("optimizers/seed-1/adam")), "optimizers' Adam is compare's CNN-BN, per seed");
  match(run.stderr, /\[adam\] same settings as .*compare\/seed-1\/cnn-bn: reusing its result/);
  const tuned = await readJson(join(out, "tune", "trials.json"));
  for (const seed of [0, 1]) {
    const final = await readJson(join(out, "final", `seed-${seed}`, "summary.json"));
    for (const optimizer of ["adam", "sgd"]) {
      const spec = final.runs.find((r: { name: string }) => r.name === optimizer).spec;
      equal(spec.seed, seed);
      equal(spec.lr, tuned.optimizers[optimizer].best.config.lr, "final takes the tuned config");
    }
  }
  const report = await Deno.readTextFile(join(out, "report.md"));
  match(report, /^- Seeds: 0, 1 for compare, optimizers and final/m);
  match(report, /^### Table 1: which differences are real/m);
  match(report, /^### Table 2: which differences are real/m);
  match(report, /\| Adam vs SGD \|/);
  match(report, /!\[[^\]]+\]\(final\/fig8a_adam\.svg\)/);
  match(report, /\[seed 1\]\(compare\/seed-1\/report\.md\)/);
});
