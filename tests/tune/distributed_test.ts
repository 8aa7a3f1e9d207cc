/**
 * Shared studies on a real PostgreSQL (a throw-away cluster on 127.0.0.1, see `pg_cluster.ts`),
 * with worker processes running a fast fake trainable (`pg_worker.ts`, no GPU): three workers
 * complete a 12-trial ASHA search; a SIGKILLed worker's trial is reclaimed and finished; a
 * SIGSTOPped worker's late report is fenced; two workers race to create a study; the database
 * restarts mid-run; a different spec is refused; bad URLs and credentials fail with one line.
 * Skipped, with the reason printed, where PostgreSQL is not installed.
 */

import { deepEqual, doesNotMatch, equal, match, ok, rejects } from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { readSharedStudy } from "../../train/tune/distributed.ts";
import { encodeMetrics } from "../../train/tune/metrics.ts";
import { connect, type Sql, StorageError } from "../../train/tune/pg_client.ts";
import { tune, uniform } from "../../train/tune/mod.ts";
import { decodeEvent, type JournalEvent } from "../../train/tune/journal.ts";
import { type PgCluster, startCluster } from "./pg_cluster.ts";

const WORKER = fileURLToPath(new URL("./pg_worker.ts", import.meta.url));
const LEASE = 2;

interface Worker {
  child: Deno.ChildProcess;
  /** stdout so far. */
  out(): string;
  /** Resolves to the exit code, stdout and stderr. */
  done: Promise<{ code: number; signal: Deno.Signal | null; stdout: string; stderr: string }>;
}

function spawnWorker(settings: Record<string, unknown>): Worker {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", WORKER, JSON.stringify(settings)],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let stdout = "", stderr = "";
  const read = async (stream: ReadableStream<Uint8Array>, into: (s: string) => void) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) into(chunk);
  };
  const reading = Promise.all([
    read(child.stdout, (s) => stdout += s),
    read(child.stderr, (s) => stderr += s),
  ]);
  const done = (async () => {
    const status = await child.status;
    await reading;
    return { code: status.code, signal: status.signal, stdout, stderr };
  })();
  return { child, out: () => stdout, done };
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, seconds = 60) {
  const deadline = performance.now() + seconds * 1000;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function journal(sql: Sql, study: string): Promise<JournalEvent[]> {
  const rows = await sql`SELECT event FROM journal WHERE study = ${study} ORDER BY seq`;
  return rows.map((r) => decodeEvent(r.event as string));
}

/** Every trial finished, its results' iterations 1..n once each; returns the events. */
async function checkJournal(sql: Sql, study: string, trials: number): Promise<JournalEvent[]> {
  const events = await journal(sql, study);
  const seqs = await sql`SELECT seq FROM journal WHERE study = ${study} ORDER BY seq`;
  deepEqual(seqs.map((r) => Number(r.seq)), seqs.map((_, i) => i + 1), "contiguous sequence");
  const byTrial = new Map<string, number[]>();
  for (const e of events) {
    if (e.type === "result") {
      byTrial.set(e.trial, [...(byTrial.get(e.trial) ?? []), e.result.training_iteration]);
    }
  }
  equal(byTrial.size, trials);
  for (const [trial, iterations] of byTrial) {
    deepEqual(iterations, iterations.map((_, i) => i + 1), `${trial}: contiguous iterations`);
  }
  const open = await sql`SELECT trial, status FROM trials
    WHERE study = ${study} AND status IN ('PENDING', 'RUNNING')`;
  deepEqual(open, [], "no unfinished trial");
  return events;
}

/** The RESULT line of a worker's stdout. */
function resultOf(stdout: string): unknown {
  const line = stdout.split("\n").find((l) => l.startsWith("RESULT "));
  ok(line, `no RESULT line in:\n${stdout}`);
  return JSON.parse(line.slice("RESULT ".length));
}

/** The replayed table in the workers' RESULT format. */
async function replayed(url: string, study: string): Promise<unknown> {
  const { grid } = (await readSharedStudy(url, study))!;
  return grid.trials.map((t) => ({
    id: t.id,
    status: t.status,
    iterations: t.iterations,
    history: t.history.map(encodeMetrics),
  }));
}

function lockTimes(stdout: string): number[] {
  return stdout.split("\n").filter((l) => l.startsWith("LOCK ")).map((l) =>
    Number(l.split(" ")[2])
  );
}

function summary(times: number[]): string {
  const sorted = [...times].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return `${sorted.length} transactions, median ${at(0.5).toFixed(2)} ms, p95 ${
    at(0.95).toFixed(2)
  } ms, max ${sorted.at(-1)!.toFixed(2)} ms`;
}

let cluster: PgCluster | null = null;

Deno.test({
  name: "shared studies on PostgreSQL",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    cluster = await startCluster("shared studies on PostgreSQL");
    if (!cluster) return;
    const { url } = cluster;
    const sql = await connect(url);
    const root = await Deno.makeTempDir({ prefix: "wgtorch_shared_" });
    const settings = (study: string, worker: string, extra: Record<string, unknown> = {}) => ({
      url,
      study,
      dir: `${root}/${study}/${worker}`,
      samples: 12,
      epochMs: 60,
      lease: LEASE,
      worker,
      ...extra,
    });
    try {
      await t.step(
        "3 workers complete a 12-trial ASHA search; the table is the journal's",
        async () => {
          const started = performance.now();
          const workers = ["a", "b", "c"].map((w) => spawnWorker(settings("three", w)));
          const runs = await Promise.all(workers.map((w) => w.done));
          for (const run of runs) equal(run.code, 0, run.stderr);
          const events = await checkJournal(sql, "three", 12);
          const expected = await replayed(url, "three");
          for (const run of runs) deepEqual(resultOf(run.stdout), expected);
          // Every worker took part, and NaN/-Infinity survived the database.
          for (const run of runs) match(run.stdout, /^CLAIM /m);
          for (const run of runs) doesNotMatch(run.stdout, /^LOST /m, "no lease lost");
          const first = events.find((e) => e.type === "result");
          ok(first?.type === "result" && Number.isNaN(first.result.odd));
          const times = runs.flatMap((r) => lockTimes(r.stdout));
          console.log(
            `  3 workers, 12 trials: ${((performance.now() - started) / 1000).toFixed(1)} s; ` +
              `lock held (FOR UPDATE to COMMIT): ${summary(times)}`,
          );
        },
      );

      await t.step(
        "a SIGKILLed worker's trial is reclaimed after the lease and finished",
        async () => {
          const workers = ["a", "b", "c"].map((w) =>
            spawnWorker(settings("kill", w, { epochMs: 250 }))
          );
          // Kill worker a while one of its trials runs with a committed result (a checkpoint to
          // resume). Not simply its first trial: ASHA may have stopped that one at its first rung.
          let victim = "";
          await waitFor("a running trial of worker a with a result", async () => {
            for (const [, claimed] of workers[0].out().matchAll(/^CLAIM (\S+) 1 0$/gm)) {
              const rows = await sql`SELECT 1 FROM trials
              WHERE study = 'kill' AND trial = ${claimed} AND status = 'RUNNING' AND EXISTS (
                SELECT 1 FROM journal
                WHERE study = 'kill' AND trial = ${claimed} AND iteration IS NOT NULL)`;
              if (rows.length > 0) {
                victim = claimed;
                return true;
              }
            }
            return false;
          });
          workers[0].child.kill("SIGKILL");
          const killed = await workers[0].done;
          equal(killed.signal, "SIGKILL");
          const runs = await Promise.all(workers.slice(1).map((w) => w.done));
          for (const run of runs) equal(run.code, 0, run.stderr);
          const events = await checkJournal(sql, "kill", 12);
          const reclaim = events.find((e) => e.type === "reclaim" && e.trial === victim);
          ok(reclaim?.type === "reclaim", `no reclaim of ${victim}`);
          equal(reclaim.attempt, 2);
          for (const run of runs) doesNotMatch(run.stdout, /^LOST /m, "survivors keep leases");
          ok(reclaim.from >= 1, "resumed from its checkpoint");
          for (const run of runs) deepEqual(resultOf(run.stdout), await replayed(url, "kill"));
        },
      );

      await t.step(
        "past --max-failures a lost trial ends as ERROR instead of looping",
        async () => {
          const workers = ["a", "b"].map((w) =>
            spawnWorker(settings("fail", w, { epochMs: 250, maxFailures: 0 }))
          );
          await waitFor("a result of worker a", async () => {
            const claimed = workers[0].out().match(/^CLAIM (\S+) 1 0$/m)?.[1];
            return claimed !== undefined && (await sql`SELECT 1 FROM journal
            WHERE study = 'fail' AND trial = ${claimed} AND iteration IS NOT NULL`).length > 0;
          });
          const victim = workers[0].out().match(/^CLAIM (\S+) 1 0$/m)![1];
          workers[0].child.kill("SIGKILL");
          await workers[0].done;
          const run = await workers[1].done;
          equal(run.code, 0, run.stderr);
          const events = await checkJournal(sql, "fail", 12);
          ok(!events.some((e) => e.type === "reclaim"), "no reclaim with max failures 0");
          const end = events.find((e) => e.type === "end" && e.trial === victim);
          ok(end?.type === "end");
          equal(end.status, "ERROR");
          equal(end.error, "lost its worker 1 time (max failures 0)");
          deepEqual(resultOf(run.stdout), await replayed(url, "fail"));
        },
      );

      await t.step(
        "a SIGSTOPped worker's late report is fenced; the search is unaffected",
        async () => {
          const workers = ["a", "b"].map((w) =>
            spawnWorker(settings("stop", w, { epochMs: 300, concurrency: 2 }))
          );
          await waitFor("worker a's first claim", () => /^CLAIM /m.test(workers[0].out()));
          const victim = workers[0].out().match(/^CLAIM (\S+) 1 0$/m)![1];
          workers[0].child.kill("SIGSTOP");
          await waitFor(
            `worker b reclaiming ${victim}`,
            async () =>
              (await sql`SELECT 1 FROM trials WHERE study = 'stop' AND trial = ${victim}
              AND attempt >= 2`).length > 0,
          );
          workers[0].child.kill("SIGCONT");
          const runs = await Promise.all(workers.map((w) => w.done));
          for (const run of runs) equal(run.code, 0, run.stderr);
          match(runs[0].stdout, new RegExp(`^LOST ${victim} 1$`, "m"));
          await checkJournal(sql, "stop", 12);
          for (const run of runs) deepEqual(resultOf(run.stdout), await replayed(url, "stop"));
        },
      );

      await t.step("two workers racing to create a study make one study", async () => {
        const workers = ["a", "b"].map((w) => spawnWorker(settings("race", w, { epochMs: 100 })));
        const runs = await Promise.all(workers.map((w) => w.done));
        for (const run of runs) equal(run.code, 0, run.stderr);
        const rows = await sql`SELECT count(*)::int AS n FROM experiments WHERE study = 'race'`;
        equal(rows[0].n, 1);
        for (const run of runs) match(run.stdout, /^CLAIM /m);
        await checkJournal(sql, "race", 12);
      });

      await t.step("pg_ctl restart mid-run: the workers wait and carry on", async () => {
        const workers = ["a", "b"].map((w) =>
          spawnWorker(settings("restart", w, { epochMs: 150, concurrency: 2 }))
        );
        await waitFor(
          "a few results",
          async () =>
            (await sql`SELECT 1 FROM journal WHERE study = 'restart' AND iteration IS NOT NULL`)
              .length >= 4,
        );
        await cluster!.restart();
        const runs = await Promise.all(workers.map((w) => w.done));
        for (const run of runs) equal(run.code, 0, run.stderr);
        await checkJournal(sql, "restart", 12);
        for (const run of runs) deepEqual(resultOf(run.stdout), await replayed(url, "restart"));
        const lost = runs.map((r) => r.stdout).join("").match(/^LOST /gm) ?? [];
        equal(lost.length, 0, "no lease lost to the restart");
      });

      await t.step("a trainable blocking its thread past the lease keeps its lease", async () => {
        const workers = ["a", "b"].map((w) =>
          spawnWorker(settings("block", w, { samples: 4, maxT: 2, blockMs: LEASE * 1250 }))
        );
        const runs = await Promise.all(workers.map((w) => w.done));
        for (const run of runs) equal(run.code, 0, run.stderr);
        const all = runs.map((r) => r.stdout).join("");
        equal(all.match(/^LOST /gm), null, "no lease lost");
        equal(all.match(/^CLAIM \S+ [2-9]/gm), null, "no trial taken over");
        await checkJournal(sql, "block", 4);
      });

      await t.step("a worker with a different spec is refused, naming the fields", async () => {
        const run = await spawnWorker(settings("three", "z", { seed: 5, maxT: 3 })).done;
        equal(run.code, 2);
        match(run.stderr, /study "three" exists with other settings: seed \(study: 0, given: 5\)/);
        match(run.stderr, /scheduler \(study: .*"maxT":4.*given: .*"maxT":3/);
        equal(run.stderr.trim().split("\n").length, 1, run.stderr);
      });

      await t.step(
        "bad URL, wrong password, unreachable host: one clear StorageError",
        async () => {
          const base = {
            trainable: async () => {},
            paramSpace: { x: uniform(0, 1) },
            metric: "loss",
            mode: "min" as const,
            dir: `${root}/bad`,
            study: "bad",
          };
          await rejects(tune({ ...base, storage: "not a url" }), (e) => {
            ok(e instanceof StorageError);
            match(e.message, /is not a URL; expected postgres:\/\/user:password@host/);
            return true;
          });
          await rejects(tune({ ...base, storage: "http://127.0.0.1/x" }), /unsupported scheme/);
          await rejects(tune({ ...base, storage: url.replace("secret", "wrong") }), (e) => {
            ok(e instanceof StorageError);
            match(e.message, /authentication failed/);
            ok(!e.message.includes("wrong"), "password not shown");
            return true;
          });
          const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
          const port = (closed.addr as Deno.NetAddr).port;
          closed.close();
          await rejects(
            tune({ ...base, storage: `postgres://tune:secret@127.0.0.1:${port}/tune` }),
            /cannot reach the server/,
          );
          await rejects(tune({ ...base, storage: url, study: undefined }), /needs a study name/);
          await rejects(
            tune({ ...base, storage: url, ordering: "deterministic" }),
            /"deterministic" cannot hold across workers/,
          );
        },
      );
    } finally {
      await sql.end({ timeout: 1 });
      await cluster.stop();
      await Deno.remove(root, { recursive: true }).catch(() => {});
    }
  },
});
