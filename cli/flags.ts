/**
 * The flags shared by the commands: data, run and training settings.
 *
 * @module
 */

import { MODEL_NAMES } from "../models/mod.ts";
import type { FlagSpec } from "./args.ts";

/**
 * Seeds are 32-bit: larger ones would collide with small ones (2^32 + 1 seeding like 1), so
 * `--seed` and `--split-seed` accept [0, 2^32).
 */
export const SEED_LIMIT = 2 ** 32;

/** `-h, --help`. */
export const HELP_FLAG: FlagSpec = {
  name: "help",
  short: "h",
  kind: "boolean",
  help: "show this help",
};

/** Where the data comes from and how it is split. */
export const DATA_FLAGS: readonly FlagSpec[] = [
  {
    name: "data-dir",
    kind: "string",
    metavar: "DIR",
    help: "FashionMNIST cache folder",
    defaultText:
      "$WGTORCH_DATA_DIR, else ~/.cache/wgtorch/fashion-mnist; system copy used if present",
  },
  {
    name: "offline",
    kind: "boolean",
    help: "never download: use only the cache folder and system copies",
  },
  {
    name: "no-verify",
    kind: "boolean",
    help: "read the four IDX .gz files in --data-dir as they are, without checksums " +
      "(custom or generated data, tests)",
  },
  {
    name: "limit",
    kind: "integer",
    min: 1,
    metavar: "N",
    help: "use only the first N of the training images (then split as usual): quick runs",
  },
  {
    name: "test-limit",
    kind: "integer",
    min: 1,
    metavar: "N",
    help: "evaluate on only the first N test images: quick runs",
  },
  {
    name: "val-split",
    kind: "number",
    min: 0,
    max: 1,
    maxExclusive: true,
    default: 0.2,
    metavar: "F",
    help: "fraction of the training images held out for validation (0: none)",
  },
  {
    name: "swap-split",
    kind: "boolean",
    help: "train on the small part and validate on the large one, as the study's notebook did",
  },
  {
    name: "split-seed",
    kind: "integer",
    min: 0,
    max: SEED_LIMIT,
    maxExclusive: true,
    default: 0,
    help: "seed of the shuffle that chooses the validation images",
  },
];

/** Run settings: seed, output folder, progress. */
export const RUN_FLAGS: readonly FlagSpec[] = [
  {
    name: "seed",
    kind: "integer",
    min: 0,
    max: SEED_LIMIT,
    maxExclusive: true,
    default: 0,
    help: "seed of the weights, dropout and batch order",
  },
  {
    name: "out",
    kind: "string",
    metavar: "DIR",
    help: "output folder, new or empty (see --overwrite); one that a live run is using is refused",
    defaultText: "a new results/<command>/<timestamp>",
  },
  {
    name: "overwrite",
    kind: "boolean",
    help: "allow an --out folder that already holds other files: ours (report.md, " +
      "summary.json...) are written beside them and replace files of the same name; nothing " +
      "else is deleted",
  },
  {
    name: "progress",
    kind: "choice",
    choices: ["auto", "bar", "lines", "none"],
    default: "auto",
    help: "progress on stderr: a bar on a terminal (auto), one line per epoch, or nothing",
  },
  {
    name: "eval-batch-size",
    kind: "integer",
    min: 1,
    default: 1000,
    help: "batch size of validation and test passes",
  },
];

/** Model and optimizer settings of `train`. */
export const TRAIN_FLAGS: readonly FlagSpec[] = [
  {
    name: "model",
    kind: "choice",
    choices: MODEL_NAMES,
    default: "cnn-bn",
    help: "architecture (see docs/STUDY.md)",
  },
  {
    name: "l1",
    kind: "integer",
    min: 1,
    default: 64,
    help: "hidden width of tuning-cnn",
  },
  {
    name: "optimizer",
    kind: "choice",
    choices: ["adam", "sgd"],
    default: "adam",
    help: "optimizer",
  },
  {
    name: "lr",
    kind: "number",
    min: 0,
    minExclusive: true,
    default: 0.01,
    help: "learning rate",
  },
  {
    name: "momentum",
    kind: "number",
    min: 0,
    max: 1,
    maxExclusive: true,
    default: 0,
    help: "SGD momentum",
  },
  {
    name: "batch-size",
    kind: "integer",
    min: 1,
    default: 128,
    help: "training batch size",
  },
  {
    name: "epochs",
    kind: "integer",
    min: 1,
    default: 10,
    help: "epochs",
  },
  {
    name: "step-size",
    kind: "integer",
    min: 0,
    default: 0,
    help: "StepLR: multiply the lr by --gamma every N epochs (0: constant lr)",
  },
  {
    name: "gamma",
    kind: "number",
    min: 0,
    minExclusive: true,
    max: 1,
    default: 0.1,
    help: "StepLR decay factor",
  },
];

/** `--epochs` for experiments: overrides every run's epoch count. */
export const EPOCHS_OVERRIDE: FlagSpec = {
  name: "epochs",
  kind: "integer",
  min: 1,
  metavar: "N",
  help: "train every run for N epochs instead of the study's count (quick runs)",
  defaultText: "the study's",
};
