/**
 * Rebuilding a scheduler from the settings saved in `experiment.json`, so that
 * `tune --resume DIR` needs nothing but the directory.
 *
 * @module
 */

import { AshaScheduler } from "./asha.ts";
import { FifoScheduler } from "./fifo.ts";
import type { TrialScheduler } from "./scheduler.ts";
import type { Json, Mode } from "./types.ts";

/** The scheduler that `scheduler.toJSON()` describes (kinds `asha` and `fifo`). */
export function schedulerFromJSON(json: { kind: string; [key: string]: Json }): TrialScheduler {
  const get = <T>(key: string): T | undefined => (json[key] ?? undefined) as T | undefined;
  switch (json.kind) {
    case "asha":
      return new AshaScheduler({
        timeAttr: get<string>("timeAttr"),
        metric: get<string>("metric"),
        mode: get<Mode>("mode"),
        maxT: get<number>("maxT"),
        gracePeriod: get<number>("gracePeriod"),
        reductionFactor: get<number>("reductionFactor"),
        brackets: get<number>("brackets"),
        stopLastTrials: get<boolean>("stopLastTrials"),
        seed: get<number>("seed"),
      });
    case "fifo":
      return new FifoScheduler({ maxT: get<number>("maxT"), timeAttr: get<string>("timeAttr") });
    default:
      throw new Error(`unknown scheduler kind "${json.kind}"`);
  }
}
