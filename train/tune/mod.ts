/**
 * The hyperparameter tuner: Ray Tune's search spaces, ASHA and FIFO schedulers, and a runner with
 * per-epoch checkpoints, an event journal and exact resume. Framework-independent: a trainable is
 * any async function that reports metrics once per epoch.
 *
 * @example Tune a learning rate with ASHA (no GPU needed: the trainable is plain arithmetic)
 * ```ts
 * import { AshaScheduler, choice, loguniform, tune } from "@wgtorch/wgtorch/tune";
 *
 * const grid = await tune({
 *   trainable: async (config, session) => {
 *     for (let epoch = session.iteration; epoch < 4; epoch++) {
 *       const loss = 1 / (epoch + 1) + Number(config.lr);
 *       if (!await session.report({ val_loss: loss })) return;
 *     }
 *   },
 *   paramSpace: { l1: choice([64, 128, 256]), lr: loguniform(1e-4, 1e-2) },
 *   numSamples: 4,
 *   scheduler: new AshaScheduler({ maxT: 4, gracePeriod: 1, reductionFactor: 2 }),
 *   metric: "val_loss",
 *   mode: "min",
 *   dir: await Deno.makeTempDir(),
 * });
 * console.log(grid.bestResult()?.config);
 * ```
 *
 * @module
 */

export type {
  Config as TrialConfig,
  Decision as SchedulerDecision,
  Json as JsonValue,
  Metrics as TrialMetrics,
  Mode as MetricMode,
  TrialStatus,
} from "./types.ts";
export {
  Choice,
  choice,
  Domain,
  type DomainJson,
  GridSearch,
  gridSearch,
  LogUniform,
  loguniform,
  QRandInt,
  qrandint,
  type QRandIntOptions,
  RandInt,
  randint,
  type RandomSource,
  Uniform,
  uniform,
} from "./search_space.ts";
export { countConfigs, type ParamSpace, type SpaceValue } from "./variants.ts";
export { type TrialScheduler } from "./scheduler.ts";
export { type AshaOptions, AshaScheduler, type RungState } from "./asha.ts";
export { type FifoOptions, FifoScheduler } from "./fifo.ts";
export {
  type CheckpointSpec,
  type ReportOptions,
  type Trainable,
  type TrialCheckpoint,
  type TrialSession,
  TrialStopped,
} from "./session.ts";
export {
  bestOf,
  type BestOptions,
  ResultGrid,
  type Scope as ResultScope,
  type TableRow as ResultTableRow,
  type TrialResult,
} from "./result_grid.ts";
export { decodeMetrics, encodeMetrics, type MetricsJson } from "./metrics.ts";
export { type Ordering as TrialOrdering } from "./experiment.ts";
export { type StorageEvent, tune, type TuneOptions, type TuneProgress } from "./runner.ts";
export { checkStorage, readSharedStudy, StorageError } from "./distributed.ts";
export { type AdapterFacts, suggestMaxConcurrent } from "./concurrency.ts";
