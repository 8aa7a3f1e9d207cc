/**
 * `reproduce` through the real entry point on a small generated dataset (1 epoch, 2 tuning
 * samples): every experiment's folder, table and figure is written, the top report gathers
 * Tables 1-5, and `final` trains the configurations that `tune` found best.
 */

import { equal, match, ok } from "node:assert/strict";
import { join } from "node:path";
import { runCli, tempOut, writeBlobDataset } from "../cli_fixtures.ts";

const dataDir = await writeBlobDataset(320, 100);

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

Deno.test("reproduce --epochs 1 runs every experiment and writes the report", async () => {
  const out = await tempOut("reproduce");
  const run = await runCli([
    "reproduce",
    "--epochs",
    "1",
    "--samples",
    "2",
    "--test-limit",
    "50",
    "--data-dir",
    dataDir,
    "--no-verify",
    "--progress",
    "lines",
    "--out",
    out,
  ]);
  equal(run.code, 0, run.stderr);
  for (const stage of ["compare", "optimizers", "tune", "final"]) {
    match(run.stderr, new RegExp(`^== ${stage} ==$`, "m"));
    ok(await exists(join(out, stage, "report.md")), `${stage}/report.md`);
  }
  match(run.stderr, /\[adam\] same settings as .*compare\/cnn-bn: reusing its result/);
  for (
    const figure of [
      "compare/fig6a_mlp.svg",
      "compare/fig6b_cnn.svg",
      "compare/fig6c_cnn-bn.svg",
      "optimizers/fig7a_adam.svg",
      "optimizers/fig7b_sgd.svg",
      "tune/tune_adam.svg",
      "tune/tune_sgd.svg",
    ]
  ) ok(await exists(join(out, figure)), figure);

  const report = await Deno.readTextFile(join(out, "report.md"));
  for (const table of ["Table 1", "Table 2", "Tables 3 and 4", "Table 5"]) {
    match(report, new RegExp(`^## ${table} — `, "m"));
  }
  match(report, /quick run/i);
  match(
    report,
    /^- Time in runs: .+ \(compare .+, optimizers .+, tune \(trials\) .+, final .+\)$/m,
  );

  const tuned = JSON.parse(await Deno.readTextFile(join(out, "tune", "trials.json")));
  const final = JSON.parse(await Deno.readTextFile(join(out, "final", "summary.json")));
  for (const optimizer of ["adam", "sgd"]) {
    const best = tuned.optimizers[optimizer].best.config;
    const spec = final.runs.find((r: { name: string }) => r.name === optimizer).spec;
    equal(spec.l1, best.l1, `final ${optimizer} takes the tuned l1`);
    equal(spec.lr, best.lr, `final ${optimizer} takes the tuned lr`);
    equal(spec.batchSize, best.batchSize, `final ${optimizer} takes the tuned batch size`);
    equal(spec.epochs, 1);
  }
});
