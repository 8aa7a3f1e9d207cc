/**
 * The hyperparameter tuner: Ray Tune's search spaces, ASHA and FIFO schedulers, and a runner with
 * per-epoch checkpoints, an event journal and exact resume. Framework-independent: a trainable is
 * any async function that reports metrics once per epoch.
 *
 * ```ts
 * import { AshaScheduler, choice, loguniform, tune } from "./mod.ts";
 *
 * const grid = await tune({
 *   trainable: async (config, session) => {
 *     for (let epoch = session.iteration; epoch < 10; epoch++) {
 *       const loss = 1 / (epoch + 1) + Number(config.lr);
 *       if (!await session.report({ val_loss: loss })) return;
 *     }
 *   },
 *   paramSpace: { l1: choice([64, 128, 256]), lr: loguniform(1e-4, 1e-2) },
 *   numSamples: 27,
 *   scheduler: new AshaScheduler({ maxT: 10, gracePeriod: 1, reductionFactor: 2 }),
 *   metric: "val_loss",
 *   mode: "min",
 *   dir: "results/tune_adam",
 * });
 * console.log(grid.bestResult()?.config);
 * ```
 *
 * @module
 */

export type { Config, Decision, Json, Metrics, Mode, TrialStatus } from "./types.ts";
export {
  Choice,
  choice,
  Domain,
  domainFromJSON,
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
export {
  countConfigs,
  generateConfigs,
  type GenerateOptions,
  type ParamSpace,
  type SpaceValue,
} from "./variants.ts";
export { nanPercentile } from "./percentile.ts";
export { type TrialScheduler } from "./scheduler.ts";
export { type AshaOptions, AshaScheduler, type RungState } from "./asha.ts";
export { type FifoOptions, FifoScheduler } from "./fifo.ts";
export { schedulerFromJSON } from "./scheduler_json.ts";
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
  type Scope,
  type TableRow,
  type TrialResult,
} from "./result_grid.ts";
export { type ExperimentSpec, type Ordering, readExperiment } from "./experiment.ts";
export {
  type JournalEnd,
  type JournalEvent,
  type JournalResult,
  type JournalStart,
  readJournal,
} from "./journal.ts";
export { decodeMetrics, encodeMetrics, type MetricsJson } from "./metrics.ts";
export { tune, type TuneOptions, type TuneProgress } from "./runner.ts";
export { type AdapterFacts, suggestMaxConcurrent } from "./concurrency.ts";
