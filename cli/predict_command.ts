/**
 * `predict --weights FILE --index N` (an image of the test or training set) or `--image FILE`
 * (a PNG or PGM, scaled to 28x28): the model's class probabilities.
 *
 * @module
 */

import { noGrad } from "../nn/autograd.ts";
import { CLASS_NAMES } from "../data/fashion_mnist.ts";
import { pixelsToFloat32 } from "../data/dataset.ts";
import { init } from "../nn/gpu/device.ts";
import { tidy } from "../nn/scope.ts";
import { tensor } from "../nn/tensor.ts";
import { type Flags, UsageError } from "./args.ts";
import { dataChoice, prepareData } from "./data.ts";
import { WEIGHTS_FLAGS } from "./evaluate_command.ts";
import { DATA_FLAGS, HELP_FLAG } from "./flags.ts";
import { type CommandIo, type CommandSpec, runCommand } from "./harness.ts";
import { type GreyImage, readImage28 } from "./image.ts";
import { describeModelFile, loadModelFile } from "./model_file.ts";

/** The `predict` command. */
export const PREDICT_COMMAND: CommandSpec = {
  name: "predict",
  description: `
Prints the class probabilities the model gives one image: image N of the test set (--index N,
with --set train for the training set), or a PNG/PGM file (--image FILE, converted to grey and
scaled to 28x28; FashionMNIST images are light objects on black, so pass --invert for dark
objects on a light background).`,
  flags: [
    ...WEIGHTS_FLAGS,
    { name: "index", kind: "integer", min: 0, metavar: "N", help: "which image of the set" },
    {
      name: "set",
      kind: "choice",
      choices: ["test", "train"],
      default: "test",
      help: "the set --index refers to",
    },
    { name: "image", kind: "string", metavar: "FILE", help: "a PNG or PGM image instead" },
    { name: "invert", kind: "boolean", help: "invert the image file's grey levels" },
    { name: "json", kind: "boolean", help: "print the probabilities as JSON" },
    ...DATA_FLAGS.filter((flag) => ["data-dir", "offline", "no-verify"].includes(flag.name)),
    HELP_FLAG,
  ],
};

/** `--image FILE` read as 28x28 grey; a missing or undecodable file is a `UsageError`. */
async function readImageFlag(path: string, flags: Flags): Promise<GreyImage> {
  try {
    return await readImage28(path, flags.boolean("invert"));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new UsageError(`predict: --image ${path}: no such file`);
    }
    const message = error instanceof Error ? error.message : String(error);
    throw new UsageError(
      `predict: --image ${message.startsWith(path) ? message : `${path}: ${message}`}`,
    );
  }
}

/** Runs `predict`; resolves to the exit code. */
export function predictCommand(args: readonly string[], io: CommandIo): Promise<number> {
  return runCommand(PREDICT_COMMAND, args, io, async (flags) => {
    const path = flags.string("weights");
    if (path === undefined) throw new UsageError("predict: --weights FILE is required");
    const image = flags.string("image");
    const index = flags.number("index");
    if ((image === undefined) === (index === undefined)) {
      throw new UsageError("predict: give either --index N or --image FILE");
    }
    if (image === undefined && flags.has("invert")) {
      throw new UsageError("predict: --invert does not apply to --index: it inverts an --image");
    }
    const dataOnly = ["set", "data-dir", "offline", "no-verify"].find((name) => flags.has(name));
    if (image !== undefined && dataOnly !== undefined) {
      throw new UsageError(
        `predict: --${dataOnly} does not apply to --image: it chooses the set of --index`,
      );
    }
    // The image first: a missing or bad file fails before the device and the weights.
    const picture = image === undefined ? undefined : await readImageFlag(image, flags);
    await init();
    const loaded = await loadModelFile("predict", path, {
      model: flags.string("model"),
      l1: flags.number("l1"),
    });
    try {
      let pixels: Uint8Array, label: number | null = null, what: string;
      if (picture !== undefined) {
        pixels = picture.pixels;
        what = `${image}${flags.boolean("invert") ? " (inverted)" : ""}`;
      } else {
        const prepared = await prepareData(
          { ...dataChoice("predict", flags), valSplit: 0 },
          io.err,
        );
        const which = flags.string("set") === "train" ? prepared.train : prepared.test;
        if (index! >= which.count) {
          throw new UsageError(
            `predict: --index ${index}: expected an integer from 0 to ${which.count - 1}`,
          );
        }
        const size = which.rows * which.cols;
        pixels = which.images.slice(index! * size, (index! + 1) * size);
        label = which.labels[index!];
        what = `${flags.string("set")} image #${index}`;
      }
      const logProbs = tidy(() =>
        noGrad(() => loaded.model.forward(tensor(pixelsToFloat32(pixels), [1, 1, 28, 28])))
      );
      const values = await logProbs.toArray();
      logProbs.dispose();
      const probabilities = Array.from(values, Math.exp);
      const ranked = probabilities.map((p, i) => ({ class: CLASS_NAMES[i], index: i, p }))
        .sort((a, b) => b.p - a.p);
      const predicted = ranked[0].index;
      if (flags.boolean("json")) {
        io.out(JSON.stringify(
          {
            image: what,
            label,
            labelName: label === null ? null : CLASS_NAMES[label],
            predicted,
            predictedName: CLASS_NAMES[predicted],
            probabilities: Object.fromEntries(
              CLASS_NAMES.map((name, i) => [name, probabilities[i]]),
            ),
          },
          null,
          2,
        ));
        return 0;
      }
      io.out(`Weights: ${describeModelFile(path, loaded)}`);
      io.out(`Image: ${what}${label === null ? "" : ` (true class: ${CLASS_NAMES[label]})`}`);
      const width = Math.max(...CLASS_NAMES.map((name) => name.length));
      for (const r of ranked) {
        io.out(
          `  ${r.class.padEnd(width)}  ${r.p.toFixed(4)}  ${"#".repeat(Math.round(r.p * 40))}`,
        );
      }
      const verdict = label === null ? "" : predicted === label ? " (correct)" : " (wrong)";
      io.out(`Prediction: ${CLASS_NAMES[predicted]}${verdict}`);
      return 0;
    } finally {
      loaded.model.dispose();
    }
  });
}
