/**
 * The tuning runner with fake trainables (scripted curves, no GPU): results, errors, files,
 * concurrency, deterministic ordering, and resume after a forced stop giving the same table.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { AshaScheduler } from "../../train/tune/asha.ts";
import { FifoScheduler } from "../../train/tune/fifo.ts";
import { readJournal } from "../../train/tune/journal.ts";
import type { ResultGrid } from "../../train/tune/result_grid.ts";
import { tune, type TuneOptions, type TuneProgress } from "../../train/tune/runner.ts";
import { choice, gridSearch, loguniform } from "../../train/tune/search_space.ts";
import { type Trainable, TrialStopped } from "../../train/tune/session.ts";
import { suggestMaxConcurrent } from "../../train/tune/concurrency.ts";
import type { Config } from "../../train/tune/types.ts";
import type { ParamSpace } from "../../train/tune/variants.ts";

const SPACE: ParamSpace = {
  l1: choice([64, 128, 256]),
  lr: choice([1e-4, 1e-3, 1e-2]),
  batch_size: choice([32, 64, 128]),
};

function hash(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}

interface FakeOptions {
  epochs?: number;
  checkpoint?: boolean;
  /** Milliseconds to sleep before epoch `epoch`'s report (default: none, a microtask). */
  sleepMs?: (config: Config, epoch: number) => number;
  /** Abort `controller` just before the `reports`-th report of this trainable object. */
  abortAt?: { controller: AbortController; reports: number };
  /** Configs for which the trainable throws at this epoch. */
  failAt?: (config: Config) => number | undefined;
  /** Counts how trials started: fresh, or restored from a checkpoint. */
  starts?: { fresh: number; restored: number };
}

/**
 * A deterministic fake: a loss curve whose next value depends on the previous one (kept in the
 * checkpoint), so a wrong restore changes every later number.
 */
function fake(options: FakeOptions = {}): Trainable {
  const epochs = options.epochs ?? 10;
  let reports = 0;
  return async (config, session) => {
    const h = hash(JSON.stringify(config));
    const decay = 0.55 + (h % 1000) / 2500; // 0.55 .. 0.95
    const floor = ((h >>> 10) % 1000) / 2000; // 0 .. 0.5
    let state = 1;
    if (session.checkpoint) {
      const saved = JSON.parse(await Deno.readTextFile(join(session.checkpoint.dir, "w.json")));
      state = saved.state;
      assert.deepEqual(session.checkpoint.data, { epoch: session.iteration, state });
      options.starts && options.starts.restored++;
    } else {
      assert.equal(session.iteration, 0);
      options.starts && options.starts.fresh++;
    }
    for (let epoch = session.iteration; epoch < epochs; epoch++) {
      const ms = options.sleepMs?.(config, epoch) ?? 0;
      if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
      else await Promise.resolve();
      if (options.failAt?.(config) === epoch + 1) throw new Error(`boom at epoch ${epoch + 1}`);
      state = state * decay + 0.01 * ((h >>> (epoch % 20)) % 7);
      const loss = floor + state;
      reports++;
      if (options.abortAt && reports === options.abortAt.reports) {
        options.abortAt.controller.abort();
      }
      const checkpoint = options.checkpoint === false ? undefined : {
        data: { epoch: epoch + 1, state },
        save: (dir: string) => Deno.writeTextFile(join(dir, "w.json"), JSON.stringify({ state })),
      };
      const go = await session.report({ loss, acc: 1 - loss / 2 }, { checkpoint });
      if (!go) return;
    }
  };
}

/** What must be identical between runs: everything but timings and paths. */
function stable(grid: ResultGrid) {
  return grid.trials.map((t) => ({
    id: t.id,
    config: t.config,
    status: t.status,
    iterations: t.iterations,
    history: t.history.map(({ time_total_s: _a, time_this_iter_s: _b, ...rest }) => rest),
    error: t.error,
  }));
}

/** tmpfs when there is one (fsync is free there: the tests are about logic, not disks). */
const TEMP_ROOT = (() => {
  try {
    return Deno.statSync("/dev/shm").isDirectory ? "/dev/shm" : undefined;
  } catch {
    return undefined;
  }
})();

async function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "tune_runner_", dir: TEMP_ROOT });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function ashaRun(dir: string, trainable: Trainable, extra: Partial<TuneOptions> = {}) {
  return tune({
    trainable,
    paramSpace: SPACE,
    numSamples: 27,
    scheduler: new AshaScheduler({ maxT: 10, gracePeriod: 1, reductionFactor: 2 }),
    metric: "loss",
    mode: "min",
    seed: 7,
    dir,
    ...extra,
  });
}

Deno.test("ASHA run, one trial at a time, makes exactly the scheduler's sequential decisions", async () => {
  await withDir(async (dir) => {
    const progress: TuneProgress[] = [];
    const grid = await ashaRun(dir, fake(), { onProgress: (p) => progress.push(p) });
    // Reference: the same curves fed to a bare scheduler, trial after trial.
    const reference = new AshaScheduler({ maxT: 10, gracePeriod: 1, reductionFactor: 2 });
    reference.setSearchProperties("loss", "min");
    grid.trials.forEach((t) => reference.onTrialAdd(t.id));
    for (const trial of grid.trials) {
      let expected = "RUNNING", iterations = 0;
      for (const result of trial.history) {
        iterations++;
        if (reference.onTrialResult(trial.id, result) === "STOP") {
          reference.onTrialComplete(trial.id, result);
          expected = iterations >= 10 ? "TERMINATED" : "STOPPED";
          break;
        }
      }
      assert.equal(trial.status, expected, trial.id);
      assert.equal(trial.iterations, iterations);
      assert.equal(trial.history.at(-1)!.training_iteration, iterations);
    }
    const counts = grid.counts();
    assert.equal(counts.TERMINATED + counts.STOPPED, 27);
    assert.ok(counts.STOPPED > 10 && counts.TERMINATED >= 1, JSON.stringify(counts));
    // The best trial by last loss is a finished one, and matches a direct search.
    const best = grid.bestResult()!;
    const direct = [...grid.trials].sort((a, b) => a.lastResult!.loss - b.lastResult!.loss)[0];
    assert.equal(best.id, direct.id);
    assert.equal(grid.bestResult("acc", "max")!.id, direct.id);
    // Progress: one call per result, counts add up, the last one sees everything finished.
    assert.equal(progress.length, grid.trials.reduce((n, t) => n + t.iterations, 0));
    const last = progress.at(-1)!;
    assert.equal(last.counts.TERMINATED + last.counts.STOPPED, 27);
    assert.equal(last.best?.trialId, best.id);
  });
});

Deno.test("run directory: experiment, journal, trials.json/csv, params and one checkpoint per trial", async () => {
  await withDir(async (dir) => {
    const grid = await ashaRun(dir, fake(), { numSamples: 4, meta: { optimizer: "adam" } });
    const experiment = JSON.parse(await Deno.readTextFile(join(dir, "experiment.json")));
    assert.equal(experiment.trials.length, 4);
    assert.deepEqual(experiment.meta, { optimizer: "adam" });
    assert.equal(experiment.scheduler.kind, "asha");
    assert.deepEqual(experiment.paramSpace.l1, { $domain: "choice", values: [64, 128, 256] });
    const journal = await readJournal(join(dir, "journal.jsonl"));
    assert.equal(journal.filter((e) => e.type === "start").length, 4);
    const saved = JSON.parse(await Deno.readTextFile(join(dir, "trials.json")));
    assert.equal(saved.trials.length, 4);
    assert.equal(saved.metric, "loss");
    const csv = (await Deno.readTextFile(join(dir, "trials.csv"))).trim().split("\n");
    assert.equal(csv.length, 5);
    assert.ok(csv[0].startsWith("trial_id,status,iterations,seconds,config/l1,config/lr"), csv[0]);
    assert.ok(csv[0].includes(",loss,acc,training_iteration,") && csv[0].endsWith(",error"));
    for (const trial of grid.trials) {
      const entries = [...Deno.readDirSync(join(dir, trial.id))].map((e) => e.name).sort();
      const name = `checkpoint_${String(trial.iterations).padStart(6, "0")}`;
      assert.deepEqual(entries, [name, "params.json"]);
      assert.equal(trial.checkpointDir, join(dir, trial.id, name));
      const state = JSON.parse(
        await Deno.readTextFile(join(dir, trial.id, name, "tune_checkpoint.json")),
      );
      assert.equal(state.iteration, trial.iterations);
      assert.equal(state.history.length, trial.iterations);
    }
    const rows = grid.toTable();
    assert.deepEqual(Object.keys(rows[0]), Object.keys(rows[3]));
    const first = grid.trials[0];
    assert.equal(rows[0].best_loss, Math.min(...first.history.map((r) => r.loss)));
    assert.equal(first.bestMetric, rows[0].best_loss);
  });
});

Deno.test("a failing trial is recorded as ERROR and the others go on", async () => {
  await withDir(async (dir) => {
    const grid = await tune({
      trainable: fake({ epochs: 4, failAt: (c) => (c.bad ? 2 : undefined) }),
      paramSpace: { bad: gridSearch([false, true, false]), lr: loguniform(1e-4, 1e-2) },
      metric: "loss",
      mode: "min",
      maxConcurrent: 2,
      dir,
    });
    assert.deepEqual(grid.trials.map((t) => t.status), ["TERMINATED", "ERROR", "TERMINATED"]);
    assert.equal(grid.trials[1].error, "boom at epoch 2");
    assert.equal(grid.trials[1].iterations, 1);
    assert.deepEqual(grid.trials.map((t) => t.iterations), [4, 1, 4]);
    assert.ok(grid.toCSV().includes(",boom at epoch 2\n"));
  });
});

Deno.test("FIFO with maxT terminates every trial at maxT", async () => {
  await withDir(async (dir) => {
    const grid = await tune({
      trainable: fake({ epochs: 100 }),
      paramSpace: { lr: loguniform(1e-4, 1e-2) },
      numSamples: 5,
      scheduler: new FifoScheduler({ maxT: 3 }),
      metric: "loss",
      mode: "min",
      dir,
    });
    assert.deepEqual(
      grid.trials.map((t) => [t.status, t.iterations]),
      Array(5).fill(["TERMINATED", 3]),
    );
  });
});

Deno.test("deterministic ordering: concurrent runs with different timings give the same table", async () => {
  const run = (seed: number) =>
    withDir((dir) =>
      ashaRun(dir, fake({ sleepMs: (c, e) => hash(`${seed}${JSON.stringify(c)}${e}`) % 4 }), {
        numSamples: 12,
        maxConcurrent: 3,
      })
    );
  const [a, b] = [await run(1), await run(2)];
  assert.deepEqual(stable(a), stable(b));
  // And ASHA did stop some (so order mattered).
  assert.ok(a.counts().STOPPED > 0);
});

Deno.test("arrival ordering runs trials concurrently, maxConcurrent at a time", async () => {
  await withDir(async (dir) => {
    let running = 0, peak = 0;
    const inner = fake({ epochs: 3, sleepMs: () => 2 });
    const grid = await tune({
      trainable: async (config, session) => {
        running++;
        peak = Math.max(peak, running);
        try {
          await inner(config, session);
        } finally {
          running--;
        }
      },
      paramSpace: { lr: loguniform(1e-4, 1e-2) },
      numSamples: 7,
      metric: "loss",
      mode: "min",
      maxConcurrent: 3,
      ordering: "arrival",
      dir,
    });
    assert.equal(peak, 3);
    assert.ok(grid.trials.every((t) => t.status === "TERMINATED" && t.iterations === 3));
  });
});

async function interruptedThenResumed(
  reference: ResultGrid,
  options: { stopAt: number[]; concurrency: number; checkpoint?: boolean; tamper?: boolean },
): Promise<{ fresh: number; restored: number }> {
  return await withDir(async (dir) => {
    const extra = { numSamples: 27, maxConcurrent: options.concurrency };
    const starts = { fresh: 0, restored: 0 };
    for (const stop of options.stopAt) {
      const controller = new AbortController();
      const trainable = fake({
        checkpoint: options.checkpoint,
        abortAt: { controller, reports: stop },
        starts,
        sleepMs: options.concurrency > 1
          ? (c, e) => hash(`${stop}${JSON.stringify(c)}${e}`) % 3
          : undefined,
      });
      const attempt = stop === options.stopAt[0]
        ? ashaRun(dir, trainable, { ...extra, signal: controller.signal })
        : tune({ trainable, dir, resume: true, signal: controller.signal });
      try {
        await attempt;
        break; // finished before the stop: nothing left to interrupt
      } catch (error) {
        assert.ok(error instanceof DOMException && error.name === "AbortError", String(error));
      }
      if (options.tamper) {
        // A crash mid-append and mid-checkpoint: torn journal line, uncommitted checkpoint dirs.
        await Deno.writeTextFile(join(dir, "journal.jsonl"), '{"type":"result","tri', {
          append: true,
        });
        for (const entry of Deno.readDirSync(dir)) {
          if (!entry.isDirectory) continue;
          await Deno.mkdir(join(dir, entry.name, "checkpoint_000099"), { recursive: true });
          await Deno.mkdir(join(dir, entry.name, ".tmp_checkpoint_000100"), { recursive: true });
        }
      }
    }
    const resumed = await tune({
      trainable: fake({ checkpoint: options.checkpoint, starts }),
      dir,
      resume: true,
    });
    assert.deepEqual(stable(resumed), stable(reference));
    // Resuming a finished run changes nothing.
    const again = await tune({ trainable: fake(), dir, resume: true });
    assert.deepEqual(stable(again), stable(reference));
    const saved = JSON.parse(await Deno.readTextFile(join(dir, "trials.json")));
    assert.deepEqual(
      saved.trials.map((t: { status: string }) => t.status),
      reference.trials.map((t) => t.status),
    );
    return starts;
  });
}

Deno.test("resume after forced stops gives the same final table (one trial at a time)", async () => {
  const reference = await withDir((dir) => ashaRun(dir, fake()));
  let restored = 0;
  for (const stopAt of [[1], [17], [60, 5, 30]]) {
    restored += (await interruptedThenResumed(reference, { stopAt, concurrency: 1 })).restored;
  }
  assert.ok(restored > 0, "some resumed trial restarted from its checkpoint");
});

Deno.test("resume with torn journal line and uncommitted checkpoints; and without checkpoints", async () => {
  const reference = await withDir((dir) => ashaRun(dir, fake()));
  await interruptedThenResumed(reference, { stopAt: [23, 11], concurrency: 1, tamper: true });
  const starts = await interruptedThenResumed(reference, {
    stopAt: [33],
    concurrency: 1,
    checkpoint: false,
  });
  assert.equal(starts.restored, 0);
});

Deno.test("resume with 3 concurrent trials in deterministic order gives the same final table", async () => {
  const reference = await withDir((dir) => ashaRun(dir, fake(), { maxConcurrent: 3 }));
  const starts = await interruptedThenResumed(reference, { stopAt: [20, 9, 31], concurrency: 3 });
  assert.ok(starts.restored > 0, JSON.stringify(starts));
});

Deno.test("a run directory is never clobbered; resume checks its settings", async () => {
  await withDir(async (dir) => {
    await ashaRun(dir, fake({ epochs: 2 }), { numSamples: 2 });
    await assert.rejects(ashaRun(dir, fake(), { numSamples: 2 }), /already holds a run/);
    await assert.rejects(
      tune({ trainable: fake(), dir, resume: true, scheduler: new AshaScheduler({ maxT: 20 }) }),
      /scheduler/,
    );
    await assert.rejects(
      tune({ trainable: fake(), dir, resume: true, numSamples: 3 }),
      /numSamples/,
    );
    await assert.rejects(
      tune({ trainable: fake(), dir: join(dir, "x"), resume: true }),
      /no experiment/,
    );
  });
});

Deno.test("session contract: stop signal, report after a stop, failing checkpoint save", async () => {
  await withDir(async (dir) => {
    const seen: string[] = [];
    const grid = await tune({
      trainable: async (config, session) => {
        assert.equal(session.trialDir, join(dir, session.trialId));
        assert.deepEqual(session.config, config);
        for (let epoch = 0; epoch < 5; epoch++) {
          const save = config.failSave && epoch === 1
            ? () => Promise.reject(new Error("disk full"))
            : undefined;
          const go = await session.report({ loss: epoch }, { checkpoint: { save } });
          assert.equal(session.iteration, epoch + 1);
          if (!go) {
            assert.ok(session.signal.aborted && session.signal.reason instanceof TrialStopped);
            await assert.rejects(session.report({ loss: 0 }), TrialStopped);
            seen.push(session.trialId);
            return;
          }
        }
      },
      paramSpace: { failSave: gridSearch([false, true]) },
      scheduler: new FifoScheduler({ maxT: 2 }),
      metric: "loss",
      mode: "min",
      dir,
    });
    assert.deepEqual(seen, ["trial_00000"]);
    assert.deepEqual(grid.trials.map((t) => [t.status, t.iterations, t.error]), [
      ["TERMINATED", 2, undefined],
      ["ERROR", 1, "disk full"],
    ]);
    await assert.rejects(
      tune({
        trainable: fake(),
        paramSpace: SPACE,
        metric: "loss",
        mode: "min",
        dir: join(dir, "pre"),
        signal: AbortSignal.abort(),
      }),
      /aborted/,
    );
    assert.throws(() => {
      throw new TrialStopped("aborted");
    }, /aborted/);
  });
});

Deno.test("suggestMaxConcurrent: 1 on software adapters, 2 on hardware", () => {
  assert.equal(suggestMaxConcurrent({ description: "llvmpipe (LLVM 15.0.6, 256 bits)" }), 1);
  assert.equal(suggestMaxConcurrent({ description: "x", isFallbackAdapter: true }), 1);
  assert.equal(suggestMaxConcurrent({ description: "NVIDIA H100 80GB HBM3" }), 2);
});

// A child process for the crash test: runs the reference experiment until it is killed.
const CHILD_DIR = Deno.env.get("TUNE_CRASH_CHILD_DIR");
if (CHILD_DIR) {
  await ashaRun(CHILD_DIR, fake({ sleepMs: () => 3 }));
  Deno.exit(0);
}

Deno.test("resume after SIGKILL mid-run gives the same final table", async () => {
  const reference = await withDir((dir) => ashaRun(dir, fake()));
  for (const killAfterLines of [25, 70]) {
    await withDir(async (dir) => {
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", new URL(import.meta.url).pathname],
        env: { TUNE_CRASH_CHILD_DIR: dir },
        stdout: "null",
        stderr: "piped",
      }).spawn();
      const journal = join(dir, "journal.jsonl");
      let lines = 0;
      for (let i = 0; i < 3000 && lines < killAfterLines; i++) {
        await new Promise((resolve) => setTimeout(resolve, 5));
        lines = (await Deno.readTextFile(journal).catch(() => "")).split("\n").length - 1;
      }
      child.kill("SIGKILL");
      const status = await child.output();
      assert.ok(!status.success, "the child was killed before finishing");
      assert.ok(lines >= killAfterLines, `journal lines ${lines}`);
      const resumed = await tune({ trainable: fake(), dir, resume: true });
      assert.deepEqual(stable(resumed), stable(reference));
    });
  }
});
