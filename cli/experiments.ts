/**
 * The study's training experiments as run specs: Experiment 1 (`compare`: MLP, CNN, CNN-BN),
 * Experiment 2 (`optimizers`: CNN-BN with Adam and SGD) and Experiment 4 (`final`: the tuning CNN
 * with Adam for 30 epochs and SGD for 60, StepLR), with their tables and figures.
 *
 * @module
 */

import type { RunResult, RunSpec } from "./run_training.ts";
import { type StudyRow, TABLE_1, TABLE_2, TABLE_5 } from "./study.ts";

/** The experiments that train fixed runs. */
export type ExperimentName = "compare" | "optimizers" | "final";

/** One run of an experiment and its row in the study's table. */
export interface ExperimentRun {
  /** The run. */
  spec: RunSpec;
  /** The study's row for it. */
  study: StudyRow;
  /** Its panel in the study's figure, e.g. `fig6a`. */
  figure: string;
}

/** An experiment: its runs, table and figure. */
export interface Experiment {
  /** Command name. */
  name: ExperimentName;
  /** Heading of its report. */
  title: string;
  /** The study's table, e.g. `Table 1`. */
  table: string;
  /** The study's figure, e.g. `Fig. 6`. */
  figure: string;
  /** What the rows are (first column's header). */
  rowHeader: string;
  /** The runs. */
  runs: ExperimentRun[];
  /** Notes for the report. */
  notes: string[];
}

/** Settings an experiment's runs may take from the command line. */
export interface ExperimentOverrides {
  /** Epochs of every run, instead of the study's. */
  epochs?: number;
  /** Seed (default 0). */
  seed?: number;
  /** The final runs' configs (from a tuning run), by optimizer. */
  tuned?: Partial<Record<"adam" | "sgd", { l1: number; lr: number; batchSize: number }>>;
}

const BASE = { l1: undefined, momentum: 0, stepSize: 0, gamma: 0.1 } as const;

/** The study's epoch counts, by experiment and run name. */
export const STUDY_EPOCHS: Readonly<Record<string, number>> = {
  "compare/mlp": 10,
  "compare/cnn": 10,
  "compare/cnn-bn": 10,
  "optimizers/adam": 10,
  "optimizers/sgd": 10,
  "final/adam": 30,
  "final/sgd": 60,
};

/** The runs of `name` with the study's settings, `overrides` applied. */
export function experiment(name: ExperimentName, overrides: ExperimentOverrides = {}): Experiment {
  const seed = overrides.seed ?? 0;
  const epochs = (run: string) => overrides.epochs ?? STUDY_EPOCHS[`${name}/${run}`];
  if (name === "compare") {
    const models = [["mlp", "MLP", "fig6a"], ["cnn", "CNN", "fig6b"], [
      "cnn-bn",
      "CNN-BN",
      "fig6c",
    ]] as const;
    return {
      name,
      title: "Experiment 1: architecture comparison",
      table: "Table 1",
      figure: "Fig. 6",
      rowHeader: "model",
      runs: models.map(([model, label, figure], i) => ({
        spec: {
          ...BASE,
          name: model,
          title: `${label}: Adam, lr 0.01, batch 128`,
          model,
          optimizer: "adam",
          lr: 0.01,
          batchSize: 128,
          epochs: epochs(model),
          seed,
        },
        study: TABLE_1[i],
        figure,
      })),
      notes: ["The study's setup for all three: Adam, lr 0.01, batch 128, 10 epochs, NLL loss."],
    };
  }
  if (name === "optimizers") {
    return {
      name,
      title: "Experiment 2: optimizer comparison (CNN-BN)",
      table: "Table 2",
      figure: "Fig. 7",
      rowHeader: "optimizer",
      runs: (["adam", "sgd"] as const).map((optimizer, i) => ({
        spec: {
          ...BASE,
          name: optimizer,
          title: `CNN-BN: ${optimizer === "adam" ? "Adam" : "SGD"}, lr 0.01, batch 128`,
          model: "cnn-bn",
          optimizer,
          lr: 0.01,
          batchSize: 128,
          epochs: epochs(optimizer),
          seed,
        },
        study: TABLE_2[i],
        figure: i === 0 ? "fig7a" : "fig7b",
      })),
      notes: [
        "The study's setup for both: CNN-BN, lr 0.01, batch 128, 10 epochs; SGD is plain (no " +
        "momentum).",
        "The study's SGD row (0.857) is not an SGD result: its notebook evaluated the CNN model " +
        "of Experiment 1 there (0.857 is Table 1's CNN). Ours is the SGD-trained CNN-BN.",
      ],
    };
  }
  const tuned = overrides.tuned ?? {};
  const adam = tuned.adam ?? { l1: 64, lr: 0.01, batchSize: 128 };
  const sgd = tuned.sgd ?? { l1: 64, lr: 0.01, batchSize: 64 };
  return {
    name,
    title: "Experiment 4: final training (tuning CNN)",
    table: "Table 5",
    figure: "Fig. 8",
    rowHeader: "optimizer",
    runs: [
      {
        spec: {
          ...BASE,
          name: "adam",
          title:
            `Tuning CNN (l1 ${adam.l1}): Adam, lr ${adam.lr}, batch ${adam.batchSize}, StepLR(10, 0.1)`,
          model: "tuning-cnn",
          l1: adam.l1,
          optimizer: "adam",
          lr: adam.lr,
          batchSize: adam.batchSize,
          epochs: epochs("adam"),
          stepSize: 10,
          seed,
        },
        study: TABLE_5[0],
        figure: "fig8a",
      },
      {
        spec: {
          ...BASE,
          name: "sgd",
          title:
            `Tuning CNN (l1 ${sgd.l1}): SGD, lr ${sgd.lr}, batch ${sgd.batchSize}, StepLR(35, 0.1)`,
          model: "tuning-cnn",
          l1: sgd.l1,
          optimizer: "sgd",
          lr: sgd.lr,
          batchSize: sgd.batchSize,
          epochs: epochs("sgd"),
          stepSize: 35,
          seed,
        },
        study: TABLE_5[1],
        figure: "fig8b",
      },
    ],
    notes: [
      overrides.tuned
        ? "Configs (l1, lr, batch size) from the tuning run's best trials (see below); epochs and " +
          "StepLR as in the study."
        : "The study's configs: Adam l1 64, lr 0.01 (the study used 0.01 rather than its tuned " +
          "1e-3, to suit the LR schedule), batch 128, 30 epochs, StepLR(10, 0.1); SGD l1 64, " +
          "lr 0.01, batch 64, 60 epochs, StepLR(35, 0.1).",
    ],
  };
}

/** The study's table row for a `train` run with the same settings, if there is one. */
export function studyMatch(
  spec: RunSpec,
): { table: string; row: StudyRow; epochs: number } | undefined {
  const same = (other: RunSpec) =>
    other.model === spec.model && other.optimizer === spec.optimizer && other.lr === spec.lr &&
    other.batchSize === spec.batchSize && other.stepSize === spec.stepSize &&
    (other.optimizer === "adam" || other.momentum === spec.momentum) &&
    (other.model !== "tuning-cnn" || other.l1 === spec.l1) &&
    (other.stepSize === 0 || other.gamma === spec.gamma);
  for (const name of ["compare", "optimizers", "final"] as const) {
    const found = experiment(name).runs.find((run) => same(run.spec));
    if (found) {
      const table = experiment(name).table;
      return { table, row: found.study, epochs: STUDY_EPOCHS[`${name}/${found.spec.name}`] };
    }
  }
  return undefined;
}

/** What an experiment produced. */
export interface ExperimentResult {
  /** The experiment. */
  experiment: Experiment;
  /** Its folder. */
  dir: string;
  /** One result per run that started, in order. */
  results: RunResult[];
  /** Runs whose result was taken from an identical earlier run: name → that run's folder. */
  reused: Record<string, string>;
  /** True when Ctrl-C stopped it. */
  interrupted: boolean;
}

/** The file name of a run's figure panel, e.g. `fig6a_mlp.svg`. */
export function figureFile(run: ExperimentRun): string {
  return `${run.figure}_${run.spec.name}.svg`;
}
