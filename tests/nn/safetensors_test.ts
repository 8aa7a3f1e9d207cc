import assert from "node:assert/strict";
import { join } from "node:path";
import {
  checkStateDictShapes,
  decodeSafetensors,
  encodeSafetensors,
  loadSafetensors,
  saveSafetensors,
} from "../../nn/safetensors.ts";
import { tensor } from "../../nn/tensor.ts";
import { gpuReady } from "../testing.ts";

await gpuReady();

// Byte vectors from the reference implementation's own unit tests
// (huggingface/safetensors, safetensors/src/tensor.rs: test_serialization, test_empty,
// test_serialization_forced_alignement) and its documentation example (an I32 file).
// deno-fmt-ignore
const REFERENCE_ATTN_DOT_0 = [
  64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48,
  34, 58, 123, 34, 100, 116, 121, 112, 101, 34, 58, 34, 70, 51, 50, 34,
  44, 34, 115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 50, 44, 51, 93,
  44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115, 101, 116, 115, 34, 58,
  91, 48, 44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63,
  0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64,
];
const REFERENCE_EMPTY = [8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32];
// deno-fmt-ignore
const REFERENCE_EMPTY_WITH_METADATA = [
  40, 0, 0, 0, 0, 0, 0, 0, 123, 34, 95, 95, 109, 101, 116, 97,
  100, 97, 116, 97, 95, 95, 34, 58, 123, 34, 102, 114, 97, 109, 101, 119,
  111, 114, 107, 34, 58, 34, 112, 116, 34, 125, 125, 32, 32, 32, 32, 32,
];
// deno-fmt-ignore
const REFERENCE_ATTN0_PADDED = [
  72, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 48, 34,
  58, 123, 34, 100, 116, 121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44,
  34, 115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 49, 44, 50, 44, 51,
  93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115, 101, 116, 115, 34,
  58, 91, 48, 44, 50, 52, 93, 125, 125, 32, 32, 32, 32, 32, 32, 32,
  0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64,
  0, 0, 128, 64, 0, 0, 160, 64,
];
const REFERENCE_I32_DOC_EXAMPLE = new Uint8Array([
  60,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  ...new TextEncoder().encode(`{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}`),
  ...new Array(16).fill(0),
]);

const ZERO_TO_FIVE = new Float32Array([0, 1, 2, 3, 4, 5]);

/** A file with a hand-written header (padded to 8 bytes) followed by `dataBytes` zero bytes. */
function rawFile(header: string, dataBytes: number): Uint8Array {
  const json = new TextEncoder().encode(header);
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  out.fill(32, 8 + json.length, 8 + padded);
  return out;
}

function bitsOf(data: Float32Array): Uint32Array {
  return new Uint32Array(data.buffer, data.byteOffset, data.length);
}

Deno.test("encodeSafetensors writes the reference implementation's bytes exactly", () => {
  assert.deepEqual(
    [...encodeSafetensors({ "attn.0": { shape: [1, 2, 3], data: ZERO_TO_FIVE } })],
    REFERENCE_ATTN_DOT_0,
  );
  assert.deepEqual(
    [...encodeSafetensors({ attn0: { shape: [1, 1, 2, 3], data: ZERO_TO_FIVE } })],
    REFERENCE_ATTN0_PADDED,
  );
  assert.deepEqual([...encodeSafetensors({})], REFERENCE_EMPTY);
  assert.deepEqual(
    [...encodeSafetensors({}, { framework: "pt" })],
    REFERENCE_EMPTY_WITH_METADATA,
  );
});

Deno.test("decodeSafetensors reads the reference implementation's files", () => {
  const dot = decodeSafetensors(new Uint8Array(REFERENCE_ATTN_DOT_0));
  assert.deepEqual(Object.keys(dot.tensors), ["attn.0"]);
  assert.deepEqual(dot.tensors["attn.0"].shape, [1, 2, 3]);
  assert.deepEqual([...dot.tensors["attn.0"].data], [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(dot.metadata, {});
  const padded = decodeSafetensors(new Uint8Array(REFERENCE_ATTN0_PADDED));
  assert.deepEqual(padded.tensors.attn0.shape, [1, 1, 2, 3]);
  assert.deepEqual([...padded.tensors.attn0.data], [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(decodeSafetensors(new Uint8Array(REFERENCE_EMPTY)), {
    tensors: {},
    metadata: {},
  });
  assert.deepEqual(decodeSafetensors(new Uint8Array(REFERENCE_EMPTY_WITH_METADATA)), {
    tensors: {},
    metadata: { framework: "pt" },
  });
});

Deno.test("the header: u64 length, metadata first, sorted names, space padding, offsets", () => {
  const bytes = encodeSafetensors({
    "fc.weight": { shape: [2, 3], data: new Float32Array(6) },
    "b": { shape: [1], data: new Float32Array([7]) },
    "conv1.bias": { shape: [3], data: new Float32Array([1, 2, 3]) },
    "Z": { shape: [0], data: new Float32Array(0) },
    "é": { shape: [], data: new Float32Array([9]) },
    // UTF-16 order would put the emoji (a surrogate pair, 0xD83D) before U+FF61; UTF-8 does not.
    "\u{1F600}": { shape: [1], data: new Float32Array([11]) },
    "\uFF61": { shape: [1], data: new Float32Array([10]) },
  }, { z: "last", epoch: "3" });
  const view = new DataView(bytes.buffer);
  const length = Number(view.getBigUint64(0, true));
  assert.equal(length % 8, 0);
  const header = new TextDecoder().decode(bytes.subarray(8, 8 + length));
  const json = header.trimEnd();
  assert.match(header.slice(json.length), /^ {0,7}$/);
  assert.equal(
    json,
    `{"__metadata__":{"epoch":"3","z":"last"},` +
      `"Z":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},` +
      `"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},` +
      `"conv1.bias":{"dtype":"F32","shape":[3],"data_offsets":[4,16]},` +
      `"fc.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[16,40]},` +
      `"é":{"dtype":"F32","shape":[],"data_offsets":[40,44]},` +
      `"\uFF61":{"dtype":"F32","shape":[1],"data_offsets":[44,48]},` +
      `"\u{1F600}":{"dtype":"F32","shape":[1],"data_offsets":[48,52]}}`,
  );
  assert.equal(bytes.length, 8 + length + 52);
  assert.deepEqual([...new Float32Array(bytes.slice(8 + length + 4, 8 + length + 16).buffer)], [
    1,
    2,
    3,
  ]);
});

Deno.test("safetensors round trip is bit-exact (NaN payloads, -0, subnormals, infinities)", () => {
  const bits = new Uint32Array([
    0x7fc00001,
    0xffffffff,
    0x80000000,
    0x00000001,
    0x7f800000,
    0xff800000,
    0x3f800000,
    0x12345678,
    0x007fffff,
  ]);
  const odd = new Float32Array(bits.buffer);
  const big = Float32Array.from({ length: 1001 }, (_, i) => Math.sin(i) * 1e-3);
  const decoded = decodeSafetensors(encodeSafetensors(
    { "layer.odd": { shape: [3, 3], data: odd }, "layer.big": { shape: [7, 11, 13], data: big } },
    { note: 'quotes " and \\ and \n newlines, ünïcödé' },
  ));
  assert.deepEqual([...bitsOf(decoded.tensors["layer.odd"].data)], [...bits]);
  assert.deepEqual([...bitsOf(decoded.tensors["layer.big"].data)], [...bitsOf(big)]);
  assert.deepEqual(decoded.tensors["layer.big"].shape, [7, 11, 13]);
  assert.deepEqual(decoded.metadata, { note: 'quotes " and \\ and \n newlines, ünïcödé' });
});

Deno.test("saveSafetensors / loadSafetensors round trip through a file, atomically", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const weight = tensor(Float32Array.from({ length: 35 }, (_, i) => i / 7 - 2), [5, 7]);
    const bias = tensor(new Float32Array(new Uint32Array([0x7fc00123, 0x80000000]).buffer), [2]);
    const path = join(dir, "model.safetensors");
    await saveSafetensors(path, { "fc.weight": weight, "fc.bias": bias }, { epoch: "4" });
    await saveSafetensors(path, { "fc.weight": weight, "fc.bias": bias }, { epoch: "5" });
    const names = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
    assert.deepEqual(names, ["model.safetensors"]);
    const loaded = await loadSafetensors(path);
    assert.deepEqual(loaded.metadata, { epoch: "5" });
    assert.deepEqual(Object.keys(loaded.tensors), ["fc.bias", "fc.weight"]);
    assert.deepEqual(loaded.tensors["fc.weight"].shape, [5, 7]);
    const expected = bitsOf(await weight.toArray());
    assert.deepEqual([...bitsOf(await loaded.tensors["fc.weight"].toArray())], [...expected]);
    assert.deepEqual(
      [...bitsOf(await loaded.tensors["fc.bias"].toArray())],
      [0x7fc00123, 0x80000000],
    );
    const bytes = await Deno.readFile(path);
    assert.deepEqual(
      decodeSafetensors(bytes).tensors["fc.weight"].data,
      await weight.toArray(),
    );
    await Deno.writeFile(path, bytes.subarray(0, bytes.length - 3));
    await assert.rejects(
      () => loadSafetensors(path),
      (error: Error) => error.message.startsWith(path) && /truncated/.test(error.message),
    );
    for (const item of [weight, bias, ...Object.values(loaded.tensors)]) item.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("saveSafetensors refuses non-f32 tensors and leaves no file behind", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const labels = tensor(new Int32Array([1, 2, 3]));
    await assert.rejects(
      () => saveSafetensors(join(dir, "x.safetensors"), { labels }),
      /"labels" is i32; only f32/,
    );
    assert.deepEqual([...Deno.readDirSync(dir)], []);
    labels.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("decodeSafetensors rejects truncated and corrupt files with clear errors", () => {
  const good = encodeSafetensors({
    a: { shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
    b: { shape: [3], data: new Float32Array([5, 6, 7]) },
  });
  const cases: [Uint8Array, RegExp][] = [
    [new Uint8Array(5), /starts with an 8-byte header length/],
    [good.subarray(0, 20), /header length is \d+ bytes but only 12 follow \(truncated/],
    [good.subarray(0, good.length - 1), /describes 28 bytes of tensor data but 27 .*truncated/],
    [new Uint8Array([...good, 0, 0, 0, 0]), /describes 28 bytes of tensor data but 32 follow/],
    [rawFile(`{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}`, 4), /dtype F16; .*only F32/],
    [rawFile(`{"a":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}}`, 8), /unknown dtype "Q7"/],
    [REFERENCE_I32_DOC_EXAMPLE, /tensor "test" has dtype I32/],
    [
      rawFile(
        `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},` +
          `"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`,
        12,
      ),
      /"b" has data_offsets \[8, 12\]; the data must be contiguous/,
    ],
    [
      rawFile(`{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}`, 12),
      /"a" of shape \[2, 2\] needs 16 bytes but its data_offsets span 12/,
    ],
    [
      rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 4),
      /describes 8 bytes of tensor data but 4 follow/,
    ],
    [rawFile(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}`, 0), /invalid shape/],
    [rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4]}}`, 4), /invalid data_offsets/],
    [rawFile(`{"__metadata__":{"epoch":3}}`, 0), /metadata "epoch" is not a string/],
    [rawFile(`{"a":{"dtype":"F32",`, 0), /not valid JSON/],
    [rawFile(` {}`, 0), /does not start with '\{'/],
    [rawFile(`[1]`, 0), /does not start with '\{'/],
    [rawFile(`{"a":7}`, 0), /header entry of tensor "a" is not an object/],
  ];
  const notUtf8 = good.slice();
  notUtf8[9] = 0xff;
  cases.push([notUtf8, /not valid UTF-8/]);
  const huge = good.slice();
  new DataView(huge.buffer).setBigUint64(0, 1n << 40n, true);
  cases.push([huge, /over the 100000000-byte limit/]);
  for (const [bytes, pattern] of cases) {
    assert.throws(() => decodeSafetensors(bytes), pattern);
  }
  assert.deepEqual(decodeSafetensors(good).tensors.b.data, new Float32Array([5, 6, 7]));
});

Deno.test("encodeSafetensors refuses mismatched shapes, reserved names and non-string metadata", () => {
  assert.throws(
    () => encodeSafetensors({ a: { shape: [2, 2], data: new Float32Array(3) } }),
    /"a" has shape \[2, 2\] \(4 elements\) but 3 values/,
  );
  assert.throws(
    () => encodeSafetensors({ __metadata__: { shape: [1], data: new Float32Array(1) } }),
    /reserved/,
  );
  assert.throws(
    () => encodeSafetensors({}, { epoch: 3 as unknown as string }),
    /metadata "epoch" is a number/,
  );
});

Deno.test("checkStateDictShapes names every missing, unexpected and mis-shaped tensor at once", () => {
  const model = { "conv1.weight": [10, 1, 5, 5], "fc.weight": [10, 320], "fc.bias": [10] };
  checkStateDictShapes(model, { ...model }, "ok");
  assert.throws(
    () =>
      checkStateDictShapes(model, {
        "conv1.weight": [10, 1, 3, 3],
        "fc.weight": [10, 320],
        "fc2.weight": [10, 10],
      }, "Cannot load cnn.safetensors"),
    {
      message: "Cannot load cnn.safetensors: missing: fc.bias; unexpected: fc2.weight; " +
        "wrong shape: conv1.weight is [10, 1, 3, 3] in the file, the model needs [10, 1, 5, 5]",
    },
  );
  assert.throws(
    () => checkStateDictShapes({ a: [10], b: [] }, { a: [10, 1], b: [1] }, "x"),
    {
      message: "x: wrong shape: a is [10, 1] in the file, the model needs [10]; b is [1] in " +
        "the file, the model needs []",
    },
  );
});
