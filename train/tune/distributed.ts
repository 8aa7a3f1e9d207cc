/**
 * Shared studies: many workers (processes, machines) run one search through one PostgreSQL
 * database, with no central driver (Optuna's model), making Ray Tune's ASHA decisions in arrival
 * order. `tune({ storage: "postgres://...", study })` runs one worker.
 *
 * Tables: `experiments` (the spec, one row per study), `trials` (status, owner, attempt, lease
 * expiry), `journal` (the numbered events `journal.jsonl` holds for a local run, unique on trial
 * + iteration), `checkpoints` (each trial's latest committed checkpoint, a `bytea`).
 *
 * **Every decision is one transaction**: lock the study's `experiments` row (`SELECT ... FOR
 * UPDATE`), check the fencing token (the trial's `attempt` is still this worker's), catch up on
 * journal events newer than the last one seen into the local `RunState` (replaying them through
 * the local scheduler, so every worker checks every other worker's decisions), let the scheduler
 * decide, insert the journal event and the checkpoint, extend the lease, commit. Decisions come
 * out in one total order, and a replay of the journal reproduces them all.
 *
 * **Claiming**: under the same lock, a worker takes a RUNNING trial whose lease expired (orphans
 * first; journaled as `reclaim`, attempt + 1, resumed from its last committed checkpoint) or the
 * first PENDING one. After `maxFailures` lost attempts a trial is ended as ERROR instead. A
 * heartbeat, in its own thread (training blocks the main one for seconds at a time), every
 * lease/3 extends the leases (`UPDATE ... WHERE attempt = mine`); zero rows means
 * the lease was lost and the trainable is aborted. Lease times come from the database clock, and
 * no lease expires within one lease time after the database (re)started, so a database outage
 * does not cost running trials their leases. Transient database errors are retried with back-off.
 *
 * @module
 */

import { hostname } from "node:os";
import { join } from "node:path";
import { ActiveTrial, type EndEvent, type ReportEvent, type TrialEvent } from "./active_trial.ts";
import { checkpointName, loadCheckpoint, pruneCheckpoints, saveCheckpoint } from "./checkpoints.ts";
import type { ExperimentSpec } from "./experiment.ts";
import { writeFileAtomic, writeJsonAtomic } from "./fs_atomic.ts";
import type { HeartbeatIn, HeartbeatOut } from "./heartbeat_thread.ts";
import { decodeEvent, encodeEvent, type JournalEvent } from "./journal.ts";
import {
  connect,
  extendLease,
  packDir,
  type Row,
  SCHEMA,
  SCHEMA_LOCK,
  type Sql,
  StorageError,
  unpackDir,
  withRetry,
} from "./pg_client.ts";
import type { ResultGrid } from "./result_grid.ts";
import { RunState } from "./run_state.ts";
import { buildSpec } from "./run_setup.ts";
import { schedulerFromJSON } from "./scheduler_json.ts";
import { endingOf, progressOf, resultOf, waitForEnd } from "./run_common.ts";
import { type TrialCheckpoint, TrialStopped } from "./session.ts";
import type { StorageEvent, TuneOptions } from "./tune_options.ts";
import type { Decision, Json, Metrics } from "./types.ts";

export { StorageError } from "./pg_client.ts";
export type { StorageEvent } from "./tune_options.ts";

/** A worker's report was refused: its trial's attempt is no longer its own. */
class Fenced extends Error {
  constructor(trial: string, attempt: number) {
    super(`trial ${trial}: attempt ${attempt} lost its lease (fenced)`);
    this.name = "Fenced";
  }
}

/** Spec fields every worker of a study must agree on (`maxConcurrent` is per worker). */
const SHARED_FIELDS = [
  "metric",
  "mode",
  "paramSpace",
  "numSamples",
  "seed",
  "ordering",
  "scheduler",
  "meta",
  "trials",
] as const;

/** The fields of `given` that differ from the study's `stored` spec. */
export function specDifferences(stored: ExperimentSpec, given: ExperimentSpec): string[] {
  return SHARED_FIELDS.filter((f) => JSON.stringify(stored[f]) !== JSON.stringify(given[f]))
    .map((f) =>
      f === "trials"
        ? "trials (the sampled configs)"
        : `${f} (study: ${JSON.stringify(stored[f])}, given: ${JSON.stringify(given[f])})`
    );
}

/** Creates the tables if needed, then the study, or reads it back; the stored spec. */
async function createOrJoin(
  sql: Sql,
  study: string,
  spec: ExperimentSpec,
  retrySeconds: number,
): Promise<ExperimentSpec> {
  return await withRetry(() =>
    sql.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK})`;
      for (const ddl of SCHEMA) await tx.unsafe(ddl);
      const inserted = await tx`
        INSERT INTO experiments (study, spec) VALUES (${study}, ${JSON.stringify(spec)})
        ON CONFLICT DO NOTHING RETURNING study`;
      if (inserted.length > 0) {
        for (const [index, trial] of spec.trials.entries()) {
          await tx`INSERT INTO trials (study, trial, idx, status)
            VALUES (${study}, ${trial.id}, ${index}, 'PENDING')`;
        }
        return spec;
      }
      const [row] = await tx`SELECT spec FROM experiments WHERE study = ${study}`;
      return JSON.parse(row.spec as string) as ExperimentSpec;
    }), { seconds: retrySeconds, what: "creating the study" });
}

/** Reads a shared study: its spec and its journal's events, in order. */
async function readStudy(
  storage: string,
  study: string,
): Promise<{ spec: ExperimentSpec; events: JournalEvent[] } | undefined> {
  const sql = await connect(storage);
  try {
    const exists = await sql`SELECT to_regclass('experiments') IS NOT NULL AS ok`;
    const rows = exists[0].ok ? await sql`SELECT spec FROM experiments WHERE study = ${study}` : [];
    if (rows.length === 0) return undefined;
    const journal = await sql`SELECT event FROM journal WHERE study = ${study} ORDER BY seq`;
    return {
      spec: JSON.parse(rows[0].spec as string),
      events: journal.map((r) => decodeEvent(r.event as string)),
    };
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/**
 * A shared study as it stands (`tune({ storage, study })` from any number of workers): its
 * result grid, replayed from the journal (every decision checked), and the `meta` it was
 * created with; undefined when `storage` holds no such study. Throws {@linkcode StorageError}
 * when the database cannot be reached.
 */
export async function readSharedStudy(
  storage: string,
  study: string,
): Promise<{ grid: ResultGrid; meta: Json } | undefined> {
  const found = await readStudy(storage, study);
  if (!found) return undefined;
  const { spec, events } = found;
  const scheduler = schedulerFromJSON(spec.scheduler);
  scheduler.setSearchProperties(spec.metric, spec.mode);
  const state = new RunState(spec, scheduler);
  for (const event of events) state.replay(event);
  return { grid: state.grid(), meta: spec.meta };
}

/**
 * Checks that `storage` (a `postgres://` URL) is well formed and that the database accepts the
 * connection; throws a one-line {@linkcode StorageError} otherwise (password never shown).
 */
export async function checkStorage(storage: string): Promise<void> {
  const sql = await connect(storage);
  await sql.end({ timeout: 1 });
}

/** Runs one worker of a shared study (`tune()` with `storage`). */
export async function tuneShared(options: TuneOptions): Promise<ResultGrid> {
  const storage = options.storage!;
  const study = options.study;
  if (!study) throw new Error('tune: storage needs a study name (study: "...")');
  if (options.resume) {
    throw new Error("tune: resume does not apply to a shared study (workers join it instead)");
  }
  if (options.ordering === "deterministic") {
    throw new Error(
      'tune: ordering "deterministic" cannot hold across workers; a shared study uses "arrival"',
    );
  }
  const leaseSeconds = options.leaseSeconds ?? 30;
  if (!(leaseSeconds > 0)) throw new RangeError(`leaseSeconds must be > 0, got ${leaseSeconds}`);
  const maxFailures = options.maxFailures ?? 3;
  if (!Number.isInteger(maxFailures) || maxFailures < 0) {
    throw new RangeError(`maxFailures must be an integer >= 0, got ${maxFailures}`);
  }
  const { spec: proposed } = buildSpec(options);
  await Deno.mkdir(options.dir, { recursive: true });
  const sql = await connect(storage);
  try {
    const retrySeconds = options.retrySeconds ?? 600;
    const spec = await createOrJoin(sql, study, proposed, retrySeconds);
    const differences = specDifferences(spec, proposed);
    if (differences.length > 0) {
      throw new StorageError(
        `tune: study ${JSON.stringify(study)} exists with other settings: ${
          differences.join("; ")
        }`,
        { usage: true },
      );
    }
    const worker = new StudyWorker({
      options,
      sql,
      study,
      spec: { ...spec, maxConcurrent: proposed.maxConcurrent },
      storage,
      leaseSeconds,
      maxFailures,
      retrySeconds,
      workerId: options.workerId ?? `${hostname()}:${Deno.pid}`,
    });
    return await worker.execute();
  } finally {
    await sql.end({ timeout: 1 }).catch(() => {});
  }
}

interface Slot {
  active: ActiveTrial;
  attempt: number;
  /** Iterations already journaled when claimed (answered from the journal if re-reported). */
  journaled: number;
  /** The trial's journaled results (for checkpoints and times). */
  history: Metrics[];
  /** The lease was lost: nothing more of this attempt is journaled. */
  lost: boolean;
}

type Claim =
  | { kind: "claimed"; id: string; attempt: number; from: number; history: Metrics[] }
  | { kind: "failed" }
  | { kind: "none"; unfinished: number };

class StudyWorker {
  readonly #options: TuneOptions;
  readonly #storage: string;
  readonly #sql: Sql;
  readonly #study: string;
  readonly #spec: ExperimentSpec;
  readonly #lease: number;
  readonly #maxFailures: number;
  readonly #retrySeconds: number;
  readonly #id: string;
  readonly #slots: (Slot | null)[];
  readonly #started = performance.now();
  #state: RunState | undefined;
  #lastSeq = 0;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #thread: Worker | undefined;
  #beating = false;

  constructor(init: {
    options: TuneOptions;
    sql: Sql;
    study: string;
    spec: ExperimentSpec;
    storage: string;
    leaseSeconds: number;
    maxFailures: number;
    retrySeconds: number;
    workerId: string;
  }) {
    this.#options = init.options;
    this.#storage = init.storage;
    this.#sql = init.sql;
    this.#study = init.study;
    this.#spec = init.spec;
    this.#lease = init.leaseSeconds;
    this.#maxFailures = init.maxFailures;
    this.#retrySeconds = init.retrySeconds;
    this.#id = init.workerId;
    this.#slots = new Array(init.spec.maxConcurrent).fill(null);
  }

  async execute(): Promise<ResultGrid> {
    const signal = this.#options.signal;
    signal?.throwIfAborted();
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<null>((resolve) => {
      onAbort = () => resolve(null);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
    await this.#startHeartbeat();
    const poll = Math.max(50, (this.#lease * 1000) / 3);
    try {
      let unfinished = Infinity;
      while (true) {
        if (!signal?.aborted) unfinished = await this.#fillSlots(unfinished);
        const live = this.#slots.filter((s): s is Slot => s !== null);
        if (signal?.aborted || (live.length === 0 && unfinished === 0)) break;
        const free = live.length < this.#slots.length;
        let timer: ReturnType<typeof setTimeout> | undefined;
        const wake = free
          ? new Promise<"poll">((resolve) => timer = setTimeout(() => resolve("poll"), poll))
          : new Promise<"poll">(() => {});
        const winner = await Promise.race([
          ...live.map((s) => s.active.ready().then(() => s)),
          aborted,
          wake,
        ]);
        clearTimeout(timer);
        if (winner === null || signal?.aborted) break;
        if (winner === "poll") {
          unfinished = Infinity; // look again
          continue;
        }
        const event = winner.active.shift();
        const decision = await this.#process(winner, event);
        this.#progress(winner, event, decision);
      }
    } catch (error) {
      await this.#shutdown();
      throw error;
    } finally {
      await this.#stopHeartbeat();
      if (onAbort) signal?.removeEventListener("abort", onAbort);
    }
    await this.#shutdown();
    // The final table: the whole journal, replayed.
    this.#state = undefined;
    const state = await withRetry(() => this.#sql.begin((tx) => this.#catchUp(tx)), {
      seconds: this.#retrySeconds,
      what: "reading the journal",
    });
    const grid = state.grid();
    await writeJsonAtomic(join(this.#options.dir, "trials.json"), grid);
    await writeFileAtomic(join(this.#options.dir, "trials.csv"), grid.toCSV());
    if (state.trials.some((t) => t.status === "PENDING" || t.status === "RUNNING")) {
      throw signal?.reason ?? new DOMException("tune aborted", "AbortError");
    }
    return grid;
  }

  /** Claims trials for the free slots; the number of unfinished trials when none is left. */
  async #fillSlots(unfinished: number): Promise<number> {
    for (let slot = 0; slot < this.#slots.length; slot++) {
      while (!this.#slots[slot]) {
        const claim = await this.#claim(slot);
        if (claim.kind === "none") return claim.unfinished;
        if (claim.kind === "claimed") await this.#launch(slot, claim);
      }
    }
    return unfinished;
  }

  #emit(event: StorageEvent): void {
    this.#options.onStorage?.(event);
  }

  /** Applies the journal events this worker has not seen yet (rebuilding after a failure). */
  async #catchUp(tx: Sql): Promise<RunState> {
    if (!this.#state) {
      const scheduler = schedulerFromJSON(this.#spec.scheduler);
      scheduler.setSearchProperties(this.#spec.metric, this.#spec.mode);
      this.#state = new RunState(this.#spec, scheduler);
      this.#lastSeq = 0;
    }
    const rows = await tx`SELECT seq, event FROM journal
      WHERE study = ${this.#study} AND seq > ${this.#lastSeq} ORDER BY seq`;
    for (const row of rows) {
      this.#state.replay(decodeEvent(row.event as string));
      this.#lastSeq = Number(row.seq);
    }
    return this.#state;
  }

  /** Runs `fn` in a transaction holding the study's lock, caught up; retried while down. */
  async #locked<T>(what: string, fn: (tx: Sql, state: RunState) => Promise<T>): Promise<T> {
    return await withRetry(async () => {
      let lockedAt = 0;
      try {
        const out = await this.#sql.begin(async (tx) => {
          await tx`SELECT study FROM experiments WHERE study = ${this.#study} FOR UPDATE`;
          lockedAt = performance.now();
          return await fn(tx, await this.#catchUp(tx));
        });
        this.#emit({ kind: "lock", what, heldMs: performance.now() - lockedAt });
        return out;
      } catch (error) {
        this.#state = undefined; // local changes may not be committed: rebuild from the journal
        throw error;
      }
    }, {
      seconds: this.#retrySeconds,
      what,
      onRetry: (error, waitMs) =>
        this.#emit({ kind: "retry", what, waitMs, error: (error as Error).message }),
    });
  }

  async #append(tx: Sql, event: JournalEvent, iteration: number | null = null): Promise<void> {
    const seq = this.#lastSeq + 1;
    await tx`INSERT INTO journal (study, seq, trial, iteration, event)
      VALUES (${this.#study}, ${seq}, ${event.trial}, ${iteration}, ${encodeEvent(event)})`;
    this.#lastSeq = seq;
  }

  async #fence(tx: Sql, trial: string, attempt: number): Promise<void> {
    const [row] = await tx`SELECT status, attempt FROM trials
      WHERE study = ${this.#study} AND trial = ${trial}`;
    if (!row || row.status !== "RUNNING" || row.attempt !== attempt) {
      throw new Fenced(trial, attempt);
    }
  }

  #leaseSql(tx: Sql): Promise<Row[]> {
    return tx`SELECT now() + make_interval(secs => ${this.#lease}) AS until`;
  }

  #claim(slot: number): Promise<Claim> {
    return this.#locked("claim", async (tx, state): Promise<Claim> => {
      const rows = await tx`SELECT trial, status, attempt,
          (lease_until < now() AND
            now() > pg_postmaster_start_time() + make_interval(secs => ${this.#lease})) AS expired
        FROM trials WHERE study = ${this.#study} AND status IN ('PENDING', 'RUNNING')
        ORDER BY idx`;
      const orphan = rows.find((r) => r.status === "RUNNING" && r.expired === true);
      const pending = rows.find((r) => r.status === "PENDING");
      const [{ until }] = await this.#leaseSql(tx);
      if (orphan) {
        const id = orphan.trial as string, attempt = orphan.attempt as number;
        const record = state.get(id);
        if (attempt > this.#maxFailures) {
          const ending = {
            status: "ERROR" as const,
            error: `lost its worker ${attempt} time${
              attempt === 1 ? "" : "s"
            } (max failures ${this.#maxFailures})`,
            seconds: record.seconds,
          };
          state.end(id, ending);
          await this.#append(tx, { type: "end", trial: id, ...ending });
          await tx`UPDATE trials SET status = 'ERROR', owner = NULL, lease_until = NULL
            WHERE study = ${this.#study} AND trial = ${id}`;
          return { kind: "failed" };
        }
        const [checkpoint] = await tx`SELECT iteration FROM checkpoints
          WHERE study = ${this.#study} AND trial = ${id}`;
        const from = checkpoint ? Number(checkpoint.iteration) : 0;
        await this.#append(tx, {
          type: "reclaim",
          trial: id,
          attempt: attempt + 1,
          from,
          worker: this.#id,
        });
        await tx`UPDATE trials SET attempt = ${attempt + 1}, owner = ${this.#id},
          lease_until = ${until} WHERE study = ${this.#study} AND trial = ${id}`;
        return { kind: "claimed", id, attempt: attempt + 1, from, history: [...record.history] };
      }
      if (pending) {
        const id = pending.trial as string;
        state.start(id, slot);
        await this.#append(tx, { type: "start", trial: id, slot });
        await tx`UPDATE trials SET status = 'RUNNING', attempt = 1, owner = ${this.#id},
          lease_until = ${until} WHERE study = ${this.#study} AND trial = ${id}`;
        return { kind: "claimed", id, attempt: 1, from: 0, history: [] };
      }
      return { kind: "none", unfinished: rows.length };
    });
  }

  async #launch(
    slot: number,
    claim: { id: string; attempt: number; from: number; history: Metrics[] },
  ): Promise<void> {
    const trialDir = join(this.#options.dir, claim.id);
    await Deno.remove(trialDir, { recursive: true }).catch(() => {});
    await Deno.mkdir(trialDir, { recursive: true });
    const record = this.#spec.trials.find((t) => t.id === claim.id)!;
    await writeJsonAtomic(join(trialDir, "params.json"), record.config);
    let checkpoint: TrialCheckpoint | undefined;
    if (claim.from > 0) {
      const [row] = await withRetry(
        () =>
          this.#sql`SELECT iteration, data FROM checkpoints
            WHERE study = ${this.#study} AND trial = ${claim.id}`,
        { seconds: this.#retrySeconds, what: "reading a checkpoint" },
      );
      if (row) {
        const dir = join(trialDir, checkpointName(Number(row.iteration)));
        await unpackDir(new Uint8Array(row.data as Uint8Array), dir);
        checkpoint = await loadCheckpoint(dir);
      }
    }
    this.#emit({ kind: "claim", trialId: claim.id, attempt: claim.attempt, from: claim.from });
    const iteration = checkpoint?.iteration ?? 0;
    const active = new ActiveTrial({
      id: claim.id,
      config: structuredClone(record.config),
      trialDir,
      slot,
      iteration,
      checkpoint,
      baseSeconds: iteration > 0 ? claim.history[iteration - 1]?.time_total_s ?? 0 : 0,
    });
    this.#slots[slot] = {
      active,
      attempt: claim.attempt,
      journaled: claim.history.length,
      history: claim.history,
      lost: false,
    };
    this.#tellHeartbeat({ type: "add", trial: claim.id, attempt: claim.attempt });
    active.start(this.#options.trainable);
  }

  /**
   * Starts the heartbeat in its own thread (see `heartbeat_thread.ts`), or, where a worker thread
   * cannot run, on this thread.
   */
  async #startHeartbeat(): Promise<void> {
    try {
      const thread = new Worker(new URL("./heartbeat_thread.ts", import.meta.url), {
        type: "module",
      });
      const answer = await new Promise<HeartbeatOut>((resolve) => {
        thread.onmessage = (e: MessageEvent<HeartbeatOut>) => resolve(e.data);
        thread.onerror = (e) => {
          e.preventDefault();
          resolve({ type: "error", message: e.message });
        };
        const init: HeartbeatIn = {
          type: "init",
          url: this.#storage,
          study: this.#study,
          leaseSeconds: this.#lease,
        };
        thread.postMessage(init);
      });
      if (answer.type !== "ready") {
        thread.terminate();
        throw new Error(answer.type === "error" ? answer.message : answer.type);
      }
      thread.onmessage = (e: MessageEvent<HeartbeatOut>) => {
        const message = e.data;
        if (message.type !== "lost") return;
        const slot = this.#slots.find((s) =>
          s !== null && s.active.id === message.trial && s.attempt === message.attempt
        );
        if (slot) this.#lose(slot);
      };
      this.#thread = thread;
    } catch {
      this.#heartbeat = setInterval(() => this.#beat(), (this.#lease * 1000) / 3);
    }
  }

  #tellHeartbeat(message: HeartbeatIn): void {
    this.#thread?.postMessage(message);
  }

  async #stopHeartbeat(): Promise<void> {
    clearInterval(this.#heartbeat);
    const thread = this.#thread;
    if (!thread) return;
    this.#thread = undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      new Promise<void>((resolve) => {
        thread.onmessage = (e: MessageEvent<HeartbeatOut>) => {
          if (e.data.type === "stopped") resolve();
        };
        thread.postMessage({ type: "stop" } satisfies HeartbeatIn);
      }),
      new Promise<void>((resolve) => timer = setTimeout(resolve, 2000)),
    ]);
    clearTimeout(timer);
    thread.terminate();
  }

  /** Extends the leases of this worker's trials; aborts those whose lease was lost. */
  async #beat(): Promise<void> {
    if (this.#beating) return;
    this.#beating = true;
    try {
      for (const slot of this.#slots) {
        if (!slot || slot.lost) continue;
        let lost: boolean;
        try {
          lost = await extendLease(this.#sql, {
            study: this.#study,
            trial: slot.active.id,
            attempt: slot.attempt,
            lease: this.#lease,
          });
        } catch {
          continue; // the database is away: the lease waits for it (see the module notes)
        }
        if (lost && this.#slots.includes(slot)) this.#lose(slot);
      }
    } finally {
      this.#beating = false;
    }
  }

  #lose(slot: Slot): void {
    if (slot.lost) return;
    slot.lost = true;
    this.#emit({ kind: "lost", trialId: slot.active.id, attempt: slot.attempt });
    slot.active.abort();
  }

  async #process(slot: Slot, event: TrialEvent): Promise<Decision | undefined> {
    if (event.kind === "end") {
      await this.#end(slot, event);
      return undefined;
    }
    return await this.#report(slot, event);
  }

  async #report(slot: Slot, event: ReportEvent): Promise<Decision | undefined> {
    const { active } = slot;
    if (slot.lost) {
      event.reject(new TrialStopped("aborted"));
      return undefined;
    }
    const iteration = active.iteration + 1;
    if (iteration <= slot.journaled) {
      // Restarted without a checkpoint this recent: the journal already decided this iteration.
      active.iteration = iteration;
      event.resolve(true);
      return "CONTINUE";
    }
    const result = resultOf(event, iteration, slot.history);
    let bytes: Uint8Array | undefined;
    const spec = event.options.checkpoint;
    if (spec) {
      try {
        const saved = await saveCheckpoint(active.trialDir, iteration, {
          spec,
          history: [...slot.history, result],
        });
        bytes = await packDir(saved.dir);
      } catch (error) {
        event.reject(error);
        return undefined;
      }
    }
    let decision: Decision;
    try {
      decision = await this.#locked("report", async (tx, state) => {
        await this.#fence(tx, active.id, slot.attempt);
        const decision = state.result(active.id, result);
        await this.#append(tx, { type: "result", trial: active.id, result, decision }, iteration);
        if (bytes) {
          await tx`INSERT INTO checkpoints (study, trial, iteration, data)
            VALUES (${this.#study}, ${active.id}, ${iteration}, ${bytes})
            ON CONFLICT (study, trial)
            DO UPDATE SET iteration = EXCLUDED.iteration, data = EXCLUDED.data`;
        }
        const status = state.get(active.id).status;
        const [{ until }] = await this.#leaseSql(tx);
        await tx`UPDATE trials SET status = ${status},
            lease_until = ${status === "RUNNING" ? until : null}
          WHERE study = ${this.#study} AND trial = ${active.id}`;
        return decision;
      });
    } catch (error) {
      if (!(error instanceof Fenced)) throw error;
      this.#lose(slot);
      event.reject(new TrialStopped("aborted"));
      return undefined;
    }
    slot.history.push(result);
    active.iteration = iteration;
    if (bytes) await pruneCheckpoints(active.trialDir, iteration);
    if (decision === "CONTINUE") {
      event.resolve(true);
      return decision;
    }
    active.markStopped();
    event.resolve(false);
    await waitForEnd(active);
    this.#release(slot);
    return decision;
  }

  async #end(slot: Slot, event: EndEvent): Promise<void> {
    const { active } = slot;
    if (slot.lost || this.#options.signal?.aborted) {
      this.#release(slot);
      return;
    }
    const ending = endingOf(active, event);
    try {
      await this.#locked("end", async (tx, state) => {
        await this.#fence(tx, active.id, slot.attempt);
        state.end(active.id, ending);
        await this.#append(tx, { type: "end", trial: active.id, ...ending });
        await tx`UPDATE trials SET status = ${ending.status}, lease_until = NULL
          WHERE study = ${this.#study} AND trial = ${active.id}`;
      });
    } catch (error) {
      if (!(error instanceof Fenced)) throw error;
      this.#lose(slot);
    }
    this.#release(slot);
  }

  #release(slot: Slot): void {
    this.#tellHeartbeat({ type: "remove", trial: slot.active.id, attempt: slot.attempt });
    const index = this.#slots.indexOf(slot);
    if (index >= 0) this.#slots[index] = null;
  }

  /** Aborts what still runs, waits for it, and hands its leases back for others to reclaim. */
  async #shutdown(): Promise<void> {
    const live = this.#slots.filter((s): s is Slot => s !== null);
    if (live.length === 0) return;
    for (const slot of live) slot.active.abort();
    await Promise.all(live.map((s) => s.active.done));
    this.#slots.fill(null);
    for (const slot of live) {
      if (slot.lost) continue;
      await this.#sql`UPDATE trials SET lease_until = now() - interval '1 hour'
        WHERE study = ${this.#study} AND trial = ${slot.active.id}
          AND attempt = ${slot.attempt} AND status = 'RUNNING'`.catch(() => {});
    }
  }

  #progress(slot: Slot, event: TrialEvent, decision: Decision | undefined): void {
    const onProgress = this.#options.onProgress;
    if (!onProgress || !this.#state || slot.lost) return;
    onProgress(progressOf(this.#state, slot.active, event, decision, this.#started));
  }
}
