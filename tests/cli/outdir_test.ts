/**
 * Output folders through the real entry point (subprocesses): two concurrent `train` runs never
 * share a folder, a non-empty `--out` is refused unless `--overwrite` (which keeps the other
 * files), `--resume` of a folder in use is refused, a run's lock does not outlive it (second
 * Ctrl-C, SIGKILL), and Ctrl-C during the test pass ends with exit 130 and a run that `--resume`
 * finishes as if never interrupted.
 */

import { deepEqual, equal, match, ok } from "node:assert/strict";
import { join } from "node:path";
import { LOCK_FILE } from "../../cli/files.ts";
import { type CliResult, ROOT, runCli, tempOut, writeBlobDataset } from "../cli_fixtures.ts";

// 160 images: 128 training (one batch), 32 validation; 50 test images.
const dataDir = await writeBlobDataset(160, 50);
const data = ["--data-dir", dataDir, "--no-verify", "--progress", "lines"];
const mlp = ["train", "--model", "mlp", "--epochs", "2"];

const exists = (path: string) => Deno.stat(path).then(() => true, () => false);
const names = (dir: string) => [...Deno.readDirSync(dir)].map((e) => e.name).sort();
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");

async function summaryStatus(dir: string): Promise<string> {
  return JSON.parse(await Deno.readTextFile(join(dir, "summary.json"))).status;
}

Deno.test("two train runs with the same --out: one runs, the other is refused", async () => {
  const out = await tempOut("same_out");
  const runs = await Promise.all([
    runCli([...mlp, "--out", out, ...data]),
    runCli([...mlp, "--out", out, ...data]),
  ]);
  deepEqual(runs.map((r) => r.code).sort(), [0, 2], runs.map((r) => r.stderr).join("\n---\n"));
  const refused = runs.find((r) => r.code === 2)!;
  match(
    refused.stderr,
    new RegExp(`^train: ${escape(out)} is in use by a live "train" run \\(pid \\d+ on `),
  );
  equal(refused.stderr.trim().split("\n").length, 1, "one line, no stack trace");
  equal(await summaryStatus(out), "completed");
  equal(JSON.parse(await Deno.readTextFile(join(out, "history.json"))).history.length, 2);
  ok(!names(out).includes(LOCK_FILE), "the lock is released at exit");
  ok(!names(out).some((name) => name.includes(".tmp-")), names(out).join(", "));

  const again = await runCli([...mlp, "--out", out, ...data]);
  equal(again.code, 2, again.stderr);
  match(again.stderr, /already holds a run \(command\.json\); continue it with --resume/);
});

Deno.test("two train runs with the default --out get folders of their own", async () => {
  const cwd = await Deno.makeTempDir({ prefix: "wgtorch_default_out_" });
  const runs = await Promise.all([
    runCli([...mlp, ...data], { cwd }),
    runCli([...mlp, ...data], { cwd }),
  ]);
  for (const run of runs) equal(run.code, 0, run.stderr);
  const dirs = names(join(cwd, "results", "train"));
  equal(dirs.length, 2, dirs.join(", "));
  for (const dir of dirs) {
    const path = join(cwd, "results", "train", dir);
    equal(await summaryStatus(path), "completed");
    ok(!(await exists(join(path, LOCK_FILE))));
  }
});

Deno.test("--out refuses a non-empty folder; --overwrite writes beside the other files", async () => {
  const out = await tempOut("nonempty");
  await Deno.mkdir(out);
  await Deno.writeTextFile(join(out, "notes.txt"), "my notes");
  await Deno.writeTextFile(join(out, "history.csv"), "my,own\n1,2\n");
  const refused = await runCli([...mlp, "--out", out, ...data]);
  equal(refused.code, 2, refused.stderr);
  match(
    refused.stderr,
    new RegExp(
      `^train: --out ${escape(out)} is not empty \\(2 entries: history\\.csv, notes\\.txt\\)`,
    ),
  );
  match(refused.stderr, /pass --overwrite/);
  deepEqual(names(out), ["history.csv", "notes.txt"], "nothing written");
  equal(await Deno.readTextFile(join(out, "history.csv")), "my,own\n1,2\n");

  const help = await runCli(["train", "--help"]);
  match(help.stdout, /--overwrite +allow an --out folder that already holds other files/);

  const run = await runCli([...mlp, "--out", out, "--overwrite", ...data]);
  equal(run.code, 0, run.stderr);
  equal(await Deno.readTextFile(join(out, "notes.txt")), "my notes", "other files are kept");
  match(await Deno.readTextFile(join(out, "history.csv")), /^epoch,/);
  equal(await summaryStatus(out), "completed");
});

/** Spawns `cli.ts args`, calls `onLine(stderr so far, child)` as stderr arrives. */
async function spawnCli(
  args: readonly string[],
  onStderr: (stderr: string, child: Deno.ChildProcess) => void,
): Promise<{ code: number; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(ROOT, "cli.ts"), ...args],
    cwd: ROOT,
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const decoder = new TextDecoder();
  let stderr = "";
  for await (const chunk of child.stderr) {
    stderr += decoder.decode(chunk, { stream: true });
    onStderr(stderr, child);
  }
  return { code: (await child.status).code, stderr };
}

Deno.test("--resume of a folder in use is refused; a second Ctrl-C still frees it", async () => {
  const out = await tempOut("resume_busy");
  let refused: Promise<CliResult> | undefined;
  let stops = 0;
  const run = await spawnCli(
    ["train", "--model", "mlp", "--epochs", "50", "--out", out, ...data],
    (stderr, child) => {
      if (!refused && /epoch 1\/50 /.test(stderr)) {
        refused = runCli(["train", "--resume", out]).finally(() => {
          child.kill("SIGINT");
          stops++;
        });
      }
      if (stops === 1 && /Ctrl-C: stopping/.test(stderr)) {
        child.kill("SIGINT");
        stops++;
      }
    },
  );
  ok(refused, run.stderr);
  const busy = await refused;
  equal(busy.code, 2, busy.stderr);
  match(busy.stderr, new RegExp(`^train: ${escape(out)} is in use by a live "train" run`));
  equal(run.code, 130, run.stderr);
  match(run.stderr, /Second Ctrl-C: quitting now/);
  ok(!(await exists(join(out, LOCK_FILE))), "the lock is removed before a forced exit");
});

Deno.test("a SIGKILLed run leaves a stale lock that --resume takes over", async () => {
  const out = await tempOut("sigkill");
  let killed = false;
  await spawnCli(["train", "--model", "mlp", "--epochs", "20", "--out", out, ...data], (s, c) => {
    if (!killed && /epoch 2\/20 /.test(s)) {
      c.kill("SIGKILL");
      killed = true;
    }
  });
  ok(killed);
  ok(await exists(join(out, LOCK_FILE)), "SIGKILL leaves the lock");
  const resumed = await runCli(["train", "--resume", out, "--progress", "lines"]);
  equal(resumed.code, 0, resumed.stderr);
  equal(await summaryStatus(out), "completed");
  ok(!(await exists(join(out, LOCK_FILE))));
});

Deno.test("Ctrl-C during the test pass: exit 130, interrupted, and --resume finishes", async () => {
  const out = await tempOut("sigint_test_pass");
  // A large test set keeps the test pass long enough for the signal to land in it.
  const bigTest = ["--data-dir", await writeBlobDataset(160, 30000), "--no-verify"];
  const args = (
    dir: string,
  ) => ["train", "--model", "mlp", "--epochs", "1", "--out", dir, ...bigTest];
  let signalled = false;
  const run = await spawnCli(
    [...args(out), "--progress", "lines"],
    (stderr, child) => {
      if (!signalled && /\[mlp\] epoch 1\/1 .*\n/.test(stderr)) {
        child.kill("SIGINT");
        signalled = true;
      }
    },
  );
  ok(signalled, run.stderr);
  equal(run.code, 130, run.stderr);
  match(run.stderr, /Ctrl-C: stopping/);
  match(run.stderr, /Interrupted after 1 finished epoch of 1\./);
  match(run.stderr, new RegExp(`continue: +deno run -A cli\\.ts train --resume ${escape(out)}`));
  const summary = JSON.parse(await Deno.readTextFile(join(out, "summary.json")));
  equal(summary.status, "interrupted");
  equal(summary.test, null);
  equal(summary.epochsDone, 1);
  ok(!(await exists(join(out, "weights.safetensors"))));
  match(await Deno.readTextFile(join(out, "report.md")), /\*\*interrupted\*\* \(Ctrl-C\)/);
  ok(!names(out).some((name) => name.includes(".tmp-") || name === LOCK_FILE), names(out).join());

  const resumed = await runCli(["train", "--resume", out, "--progress", "lines"]);
  equal(resumed.code, 0, resumed.stderr);
  match(resumed.stderr, /resuming after epoch 1 of 1/);
  const finished = JSON.parse(await Deno.readTextFile(join(out, "summary.json")));
  equal(finished.status, "completed");
  equal(finished.test.samples, 30000);

  const straight = await tempOut("sigint_reference");
  const reference = await runCli([...args(straight), "--progress", "none"]);
  equal(reference.code, 0, reference.stderr);
  const expected = JSON.parse(await Deno.readTextFile(join(straight, "summary.json")));
  const { seconds: _a, ...resumedTest } = finished.test;
  const { seconds: _b, ...expectedTest } = expected.test;
  deepEqual(resumedTest, expectedTest, "the resumed test pass is the uninterrupted run's");
  deepEqual(
    await Deno.readFile(join(out, "weights.safetensors")),
    await Deno.readFile(join(straight, "weights.safetensors")),
  );
});
