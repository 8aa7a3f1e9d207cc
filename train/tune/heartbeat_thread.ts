/**
 * The lease heartbeat of a shared-study worker, in its own thread (a Web Worker with its own
 * database connection): training blocks the main thread for seconds at a time (pipeline
 * compilation, long synchronous steps on a software adapter), and a heartbeat there would let
 * leases expire under a live worker. Every lease/3 it extends the leases of the trials it was
 * given (`UPDATE ... WHERE attempt = mine`); a trial whose update touches no row was taken over,
 * and the main thread is told (`lost`). Database errors are skipped (the lease waits for the
 * database; see `distributed.ts`).
 *
 * Messages in: `init` { url, study, leaseSeconds }, `add` { trial, attempt }, `remove` { trial,
 * attempt }, `stop`. Messages out: `ready`, `error` { message }, `lost` { trial, attempt },
 * `stopped`.
 *
 * @module
 */

import { connect, extendLease, type Sql } from "./pg_client.ts";

/** A message to the heartbeat thread. */
export type HeartbeatIn =
  | { type: "init"; url: string; study: string; leaseSeconds: number }
  | { type: "add" | "remove"; trial: string; attempt: number }
  | { type: "stop" };

/** A message from the heartbeat thread. */
export type HeartbeatOut =
  | { type: "ready" | "stopped" }
  | { type: "error"; message: string }
  | { type: "lost"; trial: string; attempt: number };

interface WorkerScope {
  onmessage: ((event: MessageEvent<HeartbeatIn>) => void) | null;
  postMessage(message: HeartbeatOut): void;
  close(): void;
}

const scope = globalThis as unknown as WorkerScope;
const trials = new Map<string, number>();
let sql: Sql | undefined;
let study = "";
let lease = 30;
let timer: ReturnType<typeof setInterval> | undefined;
let beating = false;

async function beat(): Promise<void> {
  if (beating || !sql) return;
  beating = true;
  try {
    for (const [trial, attempt] of [...trials]) {
      let lost: boolean;
      try {
        lost = await extendLease(sql, { study, trial, attempt, lease });
      } catch {
        continue;
      }
      if (lost && trials.get(trial) === attempt) {
        trials.delete(trial);
        scope.postMessage({ type: "lost", trial, attempt });
      }
    }
  } finally {
    beating = false;
  }
}

scope.onmessage = async (event) => {
  const message = event.data;
  switch (message.type) {
    case "init":
      try {
        study = message.study;
        lease = message.leaseSeconds;
        sql = await connect(message.url);
        timer = setInterval(beat, (lease * 1000) / 3);
        scope.postMessage({ type: "ready" });
      } catch (error) {
        scope.postMessage({ type: "error", message: (error as Error).message });
      }
      break;
    case "add":
      trials.set(message.trial, message.attempt);
      break;
    case "remove":
      if (trials.get(message.trial) === message.attempt) trials.delete(message.trial);
      break;
    case "stop":
      clearInterval(timer);
      await sql?.end({ timeout: 1 }).catch(() => {});
      scope.postMessage({ type: "stopped" });
      scope.close();
      break;
  }
};
