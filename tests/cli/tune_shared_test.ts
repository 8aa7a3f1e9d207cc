/**
 * `tune --storage postgres://... --study NAME` through the real entry point: two workers share a
 * tiny search on a small generated dataset, `tune report` rebuilds the same table from the
 * database, a worker with other settings is refused naming them, and bad storage URLs, a wrong
 * password and an unreachable host fail with one line and exit code 2 or 1. Needs PostgreSQL
 * (a throw-away cluster on 127.0.0.1); skipped with the reason printed where it is absent.
 */

import { deepEqual, doesNotMatch, equal, match } from "node:assert/strict";
import { join } from "node:path";
import { runCli, tempOut, writeBlobDataset } from "../cli_fixtures.ts";
import { startCluster } from "../tune/pg_cluster.ts";

Deno.test({
  name: "tune --storage: two workers, tune report, refusals",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const cluster = await startCluster("tune --storage");
    if (!cluster) return;
    const { url } = cluster;
    const dataDir = await writeBlobDataset(320, 100);
    const data = [
      "--data-dir",
      dataDir,
      "--no-verify",
      "--progress",
      "lines",
      "--test-limit",
      "50",
    ];
    const search = ["--samples", "4", "--max-epochs", "2", "--optimizer", "adam"];
    const shared = ["--storage", url, "--study", "cli", "--lease-seconds", "3"];
    try {
      await t.step("two workers share the search; tune report writes the same table", async () => {
        const outs = [await tempOut("shared_a"), await tempOut("shared_b")];
        const runs = await Promise.all(
          outs.map((out) =>
            runCli(["tune", ...search, ...shared, "--concurrency", "1", "--out", out, ...data])
          ),
        );
        for (const run of runs) equal(run.code, 0, run.stderr);
        for (const run of runs) match(run.stderr, /\[adam\] study cli\/adam: 4 samples/);
        const csv = await Promise.all(
          outs.map((out) => Deno.readTextFile(join(out, "trials.csv"))),
        );
        equal(csv[0].trim().split("\n").length, 5);
        equal(csv[1], csv[0]);
        const reportOut = await tempOut("shared_report");
        const report = await runCli([
          "tune",
          "report",
          "--storage",
          url,
          "--study",
          "cli",
          "--out",
          reportOut,
        ]);
        equal(report.code, 0, report.stderr);
        match(report.stdout, /^study cli: adam: 4\/4 done \(0 running, 0 failed\)/m);
        match(report.stdout, /^tune\/adam: best trial_\d{5}/m);
        equal(await Deno.readTextFile(join(reportOut, "trials.csv")), csv[0]);
        match(await Deno.readTextFile(join(reportOut, "report.md")), /Shared study `cli`/);
        doesNotMatch(await Deno.readTextFile(join(reportOut, "report.md")), /secret|tune:/);
      });

      await t.step("a worker with other settings is refused, naming them", async () => {
        const run = await runCli([
          "tune",
          "--samples",
          "5",
          "--max-epochs",
          "2",
          "--optimizer",
          "adam",
          ...shared,
          "--out",
          await tempOut("shared_other"),
          ...data,
        ]);
        equal(run.code, 2, run.stderr);
        match(
          run.stderr,
          /study "cli\/adam" exists with other settings: numSamples \(study: 4, given: 5\)/,
        );
      });

      await t.step("bad URL, wrong password, unreachable host: one line, exit 2 or 1", async () => {
        const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
        const port = (closed.addr as Deno.NetAddr).port;
        closed.close();
        const cases: [string, number, RegExp][] = [
          ["mysql://x@127.0.0.1/db", 2, /unsupported scheme mysql:/],
          ["not a url", 2, /is not a URL; expected postgres:\/\/user:password@host:port\/database/],
          [
            url.replace("secret", "wrong"),
            1,
            /^error: storage postgres:\/\/tune:\*\*\*@.*authentication failed/,
          ],
          [`postgres://tune:secret@127.0.0.1:${port}/tune`, 1, /cannot reach the server/],
        ];
        for (const [storage, code, message] of cases) {
          const run = await runCli([
            "tune",
            ...search,
            "--storage",
            storage,
            "--study",
            "x",
            "--out",
            await tempOut("shared_bad"),
            ...data,
          ]);
          equal(run.code, code, run.stderr);
          match(run.stderr, message);
          equal(run.stderr.trim().split("\n").length, 1, run.stderr);
          doesNotMatch(run.stderr, /wrong| {4}at /);
        }
        const noStudy = await runCli(["tune", ...search, "--storage", url, ...data]);
        equal(noStudy.code, 2);
        match(noStudy.stderr, /--storage needs --study NAME/);
        deepEqual(noStudy.stdout, "");
      });
    } finally {
      await cluster.stop();
    }
  },
});
