/**
 * `tune` through the real entry point on a small generated dataset: a tiny search (4 samples,
 * 2 epochs) writes trials.csv/json, the plot and the report with the study's tables; Ctrl-C then
 * `--resume` finishes the same trials; `final --tune DIR` takes the best configs.
 */

import { deepEqual, equal, match, ok } from "node:assert/strict";
import { join } from "node:path";
import { experiment } from "../../cli/experiments.ts";
import { readTunedConfigs } from "../../cli/tune_results.ts";
import { ROOT, runCli, tempOut, writeBlobDataset } from "../cli_fixtures.ts";

// 320 images: 256 training (a multiple of every batch size searched) and 64 validation.
const dataDir = await writeBlobDataset(320, 100);
const data = ["--data-dir", dataDir, "--no-verify", "--progress", "lines", "--test-limit", "50"];
const search = ["--samples", "4", "--max-epochs", "2", "--optimizer", "adam"];

interface Trial {
  id: string;
  status: string;
  iterations: number;
  config: { l1: number; lr: number; batch_size: number };
  history: { loss: number }[];
}

Deno.test("a tiny tune run writes the trials, the plot and the study's tables", async () => {
  const out = await tempOut("tune");
  const run = await runCli(["tune", ...search, "--out", out, ...data]);
  equal(run.code, 0, run.stderr);
  match(
    run.stderr,
    /\[adam\] trial_00000 epoch 1: val loss \d\.\d{4} acc \d\.\d{4} → (CONTINUE|STOP)/,
  );
  match(run.stderr, /\d\/4 done \(\d stopped, \d running, 0 failed\) · best trial_\d{5}/);
  match(run.stdout, /^tune\/adam: best trial_\d{5} batch \d+, l1 \d+, lr [\d.e-]+: val loss/m);
  const csv = (await Deno.readTextFile(join(out, "trials.csv"))).trim().split("\n");
  equal(csv.length, 5);
  deepEqual(csv[0].split(",").slice(0, 9), [
    "optimizer",
    "trialId",
    "status",
    "epochs",
    "batchSize",
    "l1",
    "lr",
    "loss",
    "accuracy",
  ]);
  const json = JSON.parse(await Deno.readTextFile(join(out, "trials.json")));
  const trials: Trial[] = json.optimizers.adam.trials;
  equal(trials.length, 4);
  for (const trial of trials) {
    ok(["TERMINATED", "STOPPED"].includes(trial.status), trial.status);
    ok(trial.iterations >= 1 && trial.iterations <= 2);
    equal(trial.history.length, trial.iterations);
    ok([64, 128, 256].includes(trial.config.l1) && [32, 64, 128].includes(trial.config.batch_size));
  }
  const best = json.optimizers.adam.best;
  const lastLoss = (t: Trial) => t.history.at(-1)!.loss;
  equal(best.loss, Math.min(...trials.map(lastLoss)));
  const report = await Deno.readTextFile(join(out, "report.md"));
  match(report, /## Table 3: tuning with Adam/);
  match(
    report,
    /\| \*\*128\*\* \| \*\*64\*\* \| \*\*0\.001\*\* \| \*\*0\.00290222\*\* \| \*\*0\.8735\*\* \|/,
  );
  match(
    report,
    /\| trial \| batch size \| l1 \| lr \| loss \(study scaling\) \| accuracy \| mean NLL/,
  );
  match(report, /!\[every Adam trial's validation curves\]\(tune_adam\.svg\)/);
  const svg = await Deno.readTextFile(join(out, "tune_adam.svg"));
  equal(
    (svg.match(/<path d="M[^"]*" fill="none"/g) ?? []).length,
    8,
    "4 trials x loss and accuracy",
  );
  const tuned = await readTunedConfigs("final", out);
  deepEqual(tuned.configs.adam, best.config);
  const final = experiment("final", { tuned: tuned.configs });
  equal(final.runs[0].spec.l1, best.config.l1);
  equal(final.runs[0].spec.batchSize, best.config.batchSize);
  equal(final.runs[0].spec.lr, best.config.lr);
  equal(final.runs[1].spec.batchSize, 64, "SGD was not tuned: the study's config");
});

Deno.test("tune: Ctrl-C, then --resume finishes the same trials", async () => {
  const out = await tempOut("tune_resume");
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(ROOT, "cli.ts"), "tune", ...search, "--out", out, ...data],
    cwd: ROOT,
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  let stderr = "", signalled = false;
  const decoder = new TextDecoder();
  for await (const chunk of child.stderr) {
    stderr += decoder.decode(chunk, { stream: true });
    if (!signalled && /trial_00001 epoch 1/.test(stderr)) {
      child.kill("SIGINT");
      signalled = true;
    }
  }
  const status = await child.status;
  ok(signalled, stderr);
  equal(status.code, 130, stderr);
  match(stderr, /Continue with: deno run -A cli\.ts tune --resume /);
  const partial =
    JSON.parse(await Deno.readTextFile(join(out, "trials.json"))).optimizers.adam.trials;
  ok(partial.some((t: Trial) => t.status === "PENDING" || t.status === "RUNNING"), "unfinished");
  const refused = await runCli(["tune", "--resume", out, "--samples", "9"]);
  equal(refused.code, 2);
  match(refused.stderr, /--resume takes its settings from .*tune\.json; drop --samples/);
  const resumed = await runCli(["tune", "--resume", out, "--progress", "lines"]);
  equal(resumed.code, 0, resumed.stderr);
  match(resumed.stderr, /\[adam\] resuming/);
  match(
    await Deno.readTextFile(join(out, "report.md")),
    /- Started: \S+ \(resumed \S+\)\n[^]*- Wall time since resuming: [^;]+; time in trials: Adam \d/,
  );
  const trials: Trial[] =
    JSON.parse(await Deno.readTextFile(join(out, "trials.json"))).optimizers.adam.trials;
  equal(trials.length, 4);
  ok(trials.every((t) => t.status === "TERMINATED" || t.status === "STOPPED"));
  deepEqual(
    trials.slice(0, 1).map((t) => t.history.map((r) => r.loss)),
    partial.slice(0, 1).map((t: Trial) => t.history.map((r) => r.loss)),
    "the finished trial is kept as it was",
  );
});
