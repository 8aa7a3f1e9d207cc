/**
 * The public API, entry point by entry point: every name `deno.json` `exports` publishes, values
 * and types. Each name is a versioning promise on JSR, so growing or shrinking an entry point is
 * a deliberate change: update the list below in the same commit, and say why.
 */
import assert from "node:assert/strict";

/** Each entry point's export names (values and types), sorted. */
const EXPECTED: Record<string, readonly string[]> = {
  ".": [
    "AccumulatorSnapshot",
    "Adam",
    "AdamOptions",
    "AdamW",
    "AdapterReport",
    "BackwardOptions",
    "BatchLoader",
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNormBase",
    "BatchNormLayerOptions",
    "BatchNormOptions",
    "CheckpointInfo",
    "ConfusionAccumulator",
    "Conv2d",
    "Conv2dLayerOptions",
    "Conv2dOptions",
    "CosineAnnealingLR",
    "CosineAnnealingLROptions",
    "CpuTensor",
    "DType",
    "DecodedSafetensors",
    "DescribedModel",
    "Disposable",
    "Dropout",
    "DropoutOptions",
    "EpochEndContext",
    "EpochRecord",
    "EvaluateOptions",
    "EvaluateResult",
    "FiniteWatch",
    "FitOptions",
    "FitProgress",
    "FitResult",
    "Flatten",
    "GpuContext",
    "HISTORY_COLUMNS",
    "Hyperparameters",
    "InitOptions",
    "JsonValue",
    "KernelTime",
    "LRScheduler",
    "LRSchedulerStateDict",
    "Linear",
    "LinearOptions",
    "LoadedCheckpoint",
    "LoadedSafetensors",
    "LoadedWeights",
    "LogSoftmax",
    "LossFunction",
    "LossPhase",
    "LrTarget",
    "MatmulOptions",
    "MaxPool2d",
    "MaxPoolOptions",
    "MemoryStats",
    "Metric",
    "MetricsAccumulator",
    "Module",
    "NonFiniteLossError",
    "NonFiniteTensor",
    "NonFiniteValues",
    "Operand",
    "Optimizer",
    "OptimizerOptions",
    "OptimizerStateDict",
    "ParameterUpdate",
    "RandomOptions",
    "ReLU",
    "ReadPacer",
    "ReadPacerOptions",
    "Rng",
    "SGD",
    "SGDOptions",
    "SafetensorsTensor",
    "Sequential",
    "ShutdownOptions",
    "StateDict",
    "StateDictInput",
    "StepLR",
    "StepLROptions",
    "StepProgress",
    "StreamStats",
    "Tensor",
    "TensorOptions",
    "TidyResult",
    "TrainEpochOptions",
    "TrainEpochResult",
    "TrainingBatch",
    "TrainingState",
    "TypedArray",
    "WatchedNames",
    "accuracy",
    "add",
    "argmax",
    "batchNorm",
    "conv2d",
    "correctCount",
    "crossEntropy",
    "decodeSafetensors",
    "defaultGenerator",
    "describeAdapter",
    "div",
    "dropout",
    "encodeSafetensors",
    "evaluate",
    "fit",
    "flush",
    "formatShape",
    "full",
    "gpu",
    "historyToCsv",
    "init",
    "isGradEnabled",
    "keep",
    "linear",
    "loadCheckpoint",
    "loadSafetensors",
    "loadWeights",
    "logSoftmax",
    "manualSeed",
    "matmul",
    "maxElementsPerTexture",
    "maxPool2d",
    "maxTensorElements",
    "maximum",
    "mean",
    "meanLoss",
    "memoryStats",
    "minimum",
    "mul",
    "nllLoss",
    "noGrad",
    "ones",
    "perClassAccuracy",
    "randNormal",
    "randUniform",
    "relu",
    "restoreCheckpoint",
    "saveCheckpoint",
    "saveSafetensors",
    "saveWeights",
    "scale",
    "shutdown",
    "startProfiling",
    "stopProfiling",
    "streamStats",
    "sub",
    "sum",
    "sync",
    "tensor",
    "tensorFits",
    "textureFits",
    "tidy",
    "trainEpoch",
    "trimPool",
    "writeFileAtomic",
    "zeros",
  ],
  "./data": [
    "Batch",
    "CLASS_NAMES",
    "DATA_DIR_ENV",
    "DataError",
    "DataLoader",
    "DataLoaderOptions",
    "DownloadAttempt",
    "DownloadError",
    "FASHION_MNIST_FILES",
    "FASHION_MNIST_MIRRORS",
    "FashionMnist",
    "FashionMnistLocation",
    "FashionMnistOptions",
    "FileSource",
    "GpuDataset",
    "GpuDatasetOptions",
    "IDX_FILE_KEYS",
    "IdxArray",
    "IdxExpectation",
    "IdxFileKey",
    "IdxFileSet",
    "IdxFileSpec",
    "IdxImages",
    "IdxLabels",
    "ImageSet",
    "LoadFashionMnistOptions",
    "LocatedFile",
    "MIRRORS_ENV",
    "ProgressMode",
    "ProgressReporter",
    "SampleGridInfo",
    "SampleGridOptions",
    "SplitOptions",
    "StatusLine",
    "TrainValSplit",
    "classCounts",
    "defaultDataDir",
    "describeLocation",
    "ensureFashionMnist",
    "formatBar",
    "formatDuration",
    "formatEta",
    "loadFashionMnist",
    "parseIdx",
    "parseImages",
    "parseLabels",
    "pixelsToFloat32",
    "renderSampleGrid",
    "resolveProgressMode",
    "sampleGridPng",
    "sampleGridSvg",
    "splitTrainVal",
    "subset",
  ],
  "./tune": [
    "AdapterFacts",
    "AshaOptions",
    "AshaScheduler",
    "BestOptions",
    "CheckpointSpec",
    "Choice",
    "Domain",
    "DomainJson",
    "FifoOptions",
    "FifoScheduler",
    "GridSearch",
    "JsonValue",
    "LogUniform",
    "MetricMode",
    "MetricsJson",
    "ParamSpace",
    "QRandInt",
    "QRandIntOptions",
    "RandInt",
    "RandomSource",
    "ReportOptions",
    "ResultGrid",
    "ResultScope",
    "ResultTableRow",
    "RungState",
    "SchedulerDecision",
    "SpaceValue",
    "Trainable",
    "TrialCheckpoint",
    "TrialConfig",
    "TrialMetrics",
    "TrialOrdering",
    "TrialResult",
    "TrialScheduler",
    "TrialSession",
    "TrialStatus",
    "TrialStopped",
    "TuneOptions",
    "TuneProgress",
    "Uniform",
    "bestOf",
    "choice",
    "countConfigs",
    "decodeMetrics",
    "encodeMetrics",
    "gridSearch",
    "loguniform",
    "qrandint",
    "randint",
    "suggestMaxConcurrent",
    "tune",
    "uniform",
  ],
  "./models": [
    "BatchNormTrunk",
    "Classifier",
    "Cnn",
    "CnnBn",
    "MODEL_DESCRIPTIONS",
    "MODEL_NAMES",
    "Mlp",
    "ModelName",
    "ModelSizeConfig",
    "TensorSizeLimits",
    "TuningCnn",
    "TuningCnnOptions",
    "cnn",
    "cnnBn",
    "createModel",
    "floatsPerImage",
    "isModelName",
    "maxBatchSize",
    "maxL1",
    "maxTensorFloats",
    "mlp",
    "tuningCnn",
  ],
  "./cli": [
    "COMMANDS",
    "CommandIo",
    "main",
    "usage",
  ],
};

const root = new URL("../", import.meta.url);
const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", root))) as {
  exports: Record<string, string>;
};

/** What `deno doc --json` lists as the entry's exports: name → whether it is a value. */
async function documentedExports(file: string): Promise<Map<string, boolean>> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["doc", "--json", file],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  assert.equal(code, 0, `deno doc --json ${file} failed: ${decoder.decode(stderr)}`);
  const doc = JSON.parse(decoder.decode(stdout)) as {
    nodes: Record<string, { symbols: { name: string; declarations: { kind: string }[] }[] }>;
  };
  const result = new Map<string, boolean>();
  for (const node of Object.values(doc.nodes)) {
    for (const symbol of node.symbols) {
      const isValue = symbol.declarations.some((d) =>
        !["interface", "typeAlias", "namespace"].includes(d.kind)
      );
      result.set(symbol.name, (result.get(symbol.name) ?? false) || isValue);
    }
  }
  return result;
}

/** "added: …; removed: …" between two name lists, or "" when they are equal. */
function difference(expected: readonly string[], actual: readonly string[]): string {
  const added = actual.filter((name) => !expected.includes(name));
  const removed = expected.filter((name) => !actual.includes(name));
  const parts = [];
  if (added.length > 0) parts.push(`added: ${added.join(", ")}`);
  if (removed.length > 0) parts.push(`removed: ${removed.join(", ")}`);
  return parts.join("; ");
}

Deno.test("deno.json exports exactly the entry points this test lists", () => {
  assert.deepEqual(Object.keys(config.exports).sort(), Object.keys(EXPECTED).sort());
});

for (const [entry, expected] of Object.entries(EXPECTED)) {
  Deno.test(`the ${JSON.stringify(entry)} entry point exports exactly the reviewed names`, async () => {
    const file = config.exports[entry];
    assert.ok(file, `deno.json has no ${JSON.stringify(entry)} export`);
    assert.deepEqual([...expected].sort(), expected, `the list for ${entry} is not sorted`);
    const documented = await documentedExports(file);
    const actual = [...documented.keys()].sort();
    const change = difference(expected, actual);
    assert.equal(
      change,
      "",
      `${entry} (${file}) changed its public API (${change}): if that is deliberate, update ` +
        "EXPECTED in tests/exports_test.ts",
    );
    // The runtime module exports exactly the value names deno doc lists (types have no keys).
    const module = await import(new URL(file, root).href);
    const values = actual.filter((name) => documented.get(name));
    const runtimeChange = difference(values, Object.keys(module).sort());
    assert.equal(runtimeChange, "", `${entry}: runtime exports differ from the documented values`);
  });
}

Deno.test("difference() names what was added and removed", () => {
  assert.equal(difference(["a", "b"], ["a", "b"]), "");
  assert.equal(difference(["a", "b"], ["b", "c"]), "added: c; removed: a");
});
