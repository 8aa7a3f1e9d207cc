/**
 * Ctrl-C: the first SIGINT aborts a signal, so that training stops at its next read (within about
 * a second), keeps every finished epoch and says where the files are; a second one quits at once.
 *
 * @module
 */

import { shutdown } from "../nn/shutdown.ts";
import { releaseAllClaims } from "./files.ts";

/** Exit code of a run stopped by Ctrl-C (128 + SIGINT, as shells report it). */
export const INTERRUPTED_EXIT_CODE = 130;

let forcedExit: Promise<void> | null = null;

/**
 * The exit a second Ctrl-C started (the device is being shut down, then the process exits with
 * 130), or null. Code that ends the process otherwise awaits it: the work it interrupted may fail
 * on the way (the device is gone), and that failure is not the outcome.
 */
export function forcedExitInProgress(): Promise<void> | null {
  return forcedExit;
}

/** An installed Ctrl-C handler. */
export interface InterruptHandle {
  /** Aborted on the first Ctrl-C. */
  readonly signal: AbortSignal;
  /** Removes the handler. */
  dispose(): void;
}

/** Installs the handler; `notice` is printed on the first Ctrl-C. */
export function onInterrupt(notice: (line: string) => void): InterruptHandle {
  const controller = new AbortController();
  const handler = () => {
    if (controller.signal.aborted) {
      notice("Second Ctrl-C: quitting now.");
      releaseAllClaims();
      // Destroy the device first: exiting while the driver's threads run can crash (SIGSEGV).
      forcedExit ??= shutdown({ timeoutMs: 1000 }).catch(() => undefined).finally(() =>
        Deno.exit(INTERRUPTED_EXIT_CODE)
      );
      return;
    }
    notice("Ctrl-C: stopping after the GPU work in flight (press Ctrl-C again to quit now)...");
    controller.abort(new DOMException("interrupted by Ctrl-C", "AbortError"));
  };
  const signals: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT", "SIGBREAK"]
    : ["SIGINT", "SIGTERM"];
  const installed: Deno.Signal[] = [];
  for (const name of signals) {
    try {
      Deno.addSignalListener(name, handler);
      installed.push(name);
    } catch { /* not supported here */ }
  }
  return {
    signal: controller.signal,
    dispose() {
      for (const name of installed) Deno.removeSignalListener(name, handler);
    },
  };
}
