/** The model registry of `./models`: one list of names, a description and a builder for each. */
import { deepEqual, equal, ok, throws } from "node:assert/strict";
import { init, Rng } from "../../mod.ts";
import {
  createModel,
  isModelName,
  MODEL_DESCRIPTIONS,
  MODEL_NAMES,
  type ModelName,
} from "../../models/mod.ts";

await init();

Deno.test("MODEL_NAMES lists the study's four models, each described", () => {
  deepEqual([...MODEL_NAMES], ["mlp", "cnn", "cnn-bn", "tuning-cnn"]);
  deepEqual(Object.keys(MODEL_DESCRIPTIONS).sort(), [...MODEL_NAMES].sort());
  for (const name of MODEL_NAMES) ok(MODEL_DESCRIPTIONS[name].length > 10, name);
});

Deno.test("createModel builds every registered name, and the model says its name", () => {
  for (const name of MODEL_NAMES) {
    const model = createModel(name, { rng: new Rng(0) });
    equal(model.config.model, name);
    ok(model.parameters().length > 0, name);
  }
});

Deno.test("isModelName accepts exactly the registered names; createModel refuses others", () => {
  for (const name of MODEL_NAMES) ok(isModelName(name), name);
  for (const name of ["", "MLP", "cnn_bn", "resnet"]) ok(!isModelName(name), name);
  throws(
    () => createModel("resnet" as ModelName),
    /^Error: Unknown model "resnet": expected one of mlp, cnn, cnn-bn, tuning-cnn$/,
  );
});
