import { deepEqual, notDeepEqual, ok, throws } from "node:assert/strict";
import { gatherReference } from "./reference.ts";
import type { ImageSet } from "../../data/dataset.ts";
import { type Batch, DataLoader, GpuDataset } from "../../data/loader.ts";
import { tidy } from "../../nn/scope.ts";
import { streamStats, sync } from "../../nn/gpu/stream.ts";
import { createModel } from "../../nn/models.ts";
import { memoryStats } from "../../nn/gpu/buffer_pool.ts";
import { assertClose, gpuReady } from "../testing.ts";
import { Rng } from "../../nn/random.ts";
import { Tensor, tensor } from "../../nn/tensor.ts";
import { gatherBatch } from "./legacy_gather.ts";

await gpuReady();

/** Examples of the synthetic sets: odd, so that most batch sizes leave a partial batch. */
const COUNT = 21;

function syntheticSet(count: number, rows: number, cols: number, seed: number): ImageSet {
  const rng = new Rng(seed);
  const images = Uint8Array.from({ length: count * rows * cols }, () => rng.int(256));
  images[0] = 255; // the extremes map to exactly 0 and 1
  images[1] = 0;
  const labels = Uint8Array.from({ length: count }, () => rng.int(10));
  return { images, labels, count, rows, cols };
}

async function checkEpoch(
  set: ImageSet,
  loader: DataLoader,
  epoch: number,
): Promise<number[]> {
  const order = loader.epochOrder(epoch);
  const sizes: number[] = [];
  for (const batch of loader.batches(epoch)) {
    const start = batch.index * loader.batchSize;
    const expected = gatherReference(set, order, { start, size: batch.size });
    deepEqual(batch.x.shape, [batch.size, 1, set.rows, set.cols]);
    deepEqual(batch.x.dtype, "f32");
    deepEqual(batch.y.shape, [batch.size]);
    deepEqual(batch.y.dtype, "i32");
    assertClose(await batch.x.toArray(), expected.x, { atol: 1e-7, rtol: 1e-6 }, "x");
    deepEqual(Array.from(await batch.y.toTypedArray()), Array.from(expected.y));
    sizes.push(batch.size);
  }
  deepEqual(sizes.length, loader.length);
  return sizes;
}

for (
  const [rows, cols, dtype] of [[28, 28, "u8"], [3, 5, "u8"], [28, 28, "f32"], [
    3,
    5,
    "f32",
  ]] as const
) {
  Deno.test(`gather matches the CPU reference: ${rows}x${cols} ${dtype}, batch 1, partial last batch`, async () => {
    const set = syntheticSet(COUNT, rows, cols, rows * cols);
    const dataset = new GpuDataset(set, { dtype });
    for (const batchSize of [1, 8, COUNT, 64]) {
      const loader = new DataLoader(dataset, { batchSize, seed: 5 });
      const sizes = await checkEpoch(set, loader, 0);
      const full = Math.floor(COUNT / batchSize);
      deepEqual(sizes, [
        ...Array(full).fill(batchSize),
        ...(COUNT % batchSize ? [COUNT % batchSize] : []),
      ]);
      loader.dispose();
    }
    dataset.dispose();
  });
}

Deno.test("shuffle: same seed and epoch, same order; each epoch differs; no shuffle keeps order", async () => {
  const set = syntheticSet(50, 4, 4, 1);
  const dataset = new GpuDataset(set);
  const a = new DataLoader(dataset, { batchSize: 16, seed: 3 });
  const b = new DataLoader(dataset, { batchSize: 16, seed: 3 });
  const c = new DataLoader(dataset, { batchSize: 16, seed: 4 });
  deepEqual(a.epochOrder(2), b.epochOrder(2));
  notDeepEqual(a.epochOrder(0), a.epochOrder(1));
  notDeepEqual(a.epochOrder(0), c.epochOrder(0));
  for (const epoch of [0, 1, 2]) {
    const order = a.epochOrder(epoch);
    deepEqual([...order].sort((p, q) => p - q), Array.from({ length: 50 }, (_, i) => i));
    await checkEpoch(set, a, epoch);
  }
  const plain = new DataLoader(dataset, { batchSize: 16, shuffle: false });
  deepEqual(Array.from(plain.epochOrder(7)), Array.from({ length: 50 }, (_, i) => i));
  await checkEpoch(set, plain, 0);
  await checkEpoch(set, plain, 1);
  for (const loader of [a, b, c, plain]) loader.dispose();
  dataset.dispose();
});

Deno.test("dropLast and limit", async () => {
  const set = syntheticSet(30, 2, 2, 2);
  const dataset = new GpuDataset(set);
  const dropping = new DataLoader(dataset, { batchSize: 8, dropLast: true, seed: 1 });
  deepEqual(dropping.length, 3);
  deepEqual(await checkEpoch(set, dropping, 0), [8, 8, 8]);
  const limited = new DataLoader(dataset, { batchSize: 4, limit: 10, seed: 1 });
  deepEqual(limited.count, 10);
  deepEqual(await checkEpoch(set, limited, 0), [4, 4, 2]);
  ok(Array.from(limited.epochOrder(0)).every((i) => i < 10));
  const empty = new DataLoader(dataset, { batchSize: 4, limit: 0 });
  deepEqual([...empty.batches(0)].length, 0);
  throws(() => new DataLoader(dataset, { batchSize: 0 }), RangeError);
  for (const loader of [dropping, limited]) loader.dispose();
  dataset.dispose();
});

Deno.test("an epoch is one upload and one dispatch per tensor per batch, with no readback and no leak", () => {
  const set = syntheticSet(300, 28, 28, 3);
  const dataset = new GpuDataset(set);
  const loader = new DataLoader(dataset, { batchSize: 64, seed: 9 });
  for (const batch of loader.batches(0)) batch.dispose(); // warm-up: compile, pool
  const before = streamStats();
  const memory = memoryStats();
  let batches = 0;
  for (const batch of loader.batches(1)) {
    tidy(() => batch); // batches may be handed to tidy like any tensors
    batch.dispose();
    batches++;
  }
  const after = streamStats();
  deepEqual(batches, 5);
  deepEqual(after.dispatches - before.dispatches, 10, "images and labels: one dispatch each");
  deepEqual(after.readbacks, before.readbacks);
  deepEqual(memoryStats().liveBuffers, memory.liveBuffers, "every batch given back");
  deepEqual(memoryStats().buffersCreated, memory.buffersCreated, "no new GPU buffer after warm-up");
  loader.dispose();
  dataset.dispose();
});

Deno.test("a batch is freed when the loop moves on or breaks; keepBatches hands it over", async () => {
  const set = syntheticSet(20, 2, 2, 6);
  const dataset = new GpuDataset(set);
  const loader = new DataLoader(dataset, { batchSize: 4, seed: 1 });
  const seen: Batch[] = [];
  for (const batch of loader.batches(0)) {
    ok(!batch.x.isDisposed && !batch.y.isDisposed, "alive during its turn");
    if (seen.length) ok(seen.at(-1)!.x.isDisposed && seen.at(-1)!.y.isDisposed, "previous freed");
    seen.push(batch);
    if (seen.length === 3) break;
  }
  ok(seen[2].x.isDisposed, "break frees the current batch");
  seen[0].dispose(); // disposing again is harmless
  const kept = new DataLoader(dataset, { batchSize: 4, seed: 1, keepBatches: true });
  const all: Batch[] = [...kept.batches(0)];
  deepEqual(all.length, 5);
  ok(all.every((b) => !b.x.isDisposed), "keepBatches: the caller's");
  deepEqual(
    Array.from(await all[4].y.toTypedArray()),
    Array.from(gatherReference(set, kept.epochOrder(0), { start: 16, size: 4 }).y),
  );
  for (const batch of all) batch.dispose();
  for (const l of [loader, kept]) l.dispose();
  dataset.dispose();
});

Deno.test("a loop that never disposes its batches holds GPU memory steady over epochs", async () => {
  const set = syntheticSet(300, 28, 28, 7);
  const dataset = new GpuDataset(set);
  const loader = new DataLoader(dataset, { batchSize: 64, seed: 2 });
  const model = createModel("mlp");
  const live: number[] = [], textures: number[] = [];
  for (let epoch = 0; epoch < 3; epoch++) {
    for (const batch of loader.batches(epoch)) tidy(() => void model.forward(batch.x));
    await sync();
    live.push(memoryStats().liveBytes);
    textures.push(memoryStats().textureBytes);
  }
  deepEqual(live.slice(1), [live[0], live[0]], `live bytes per epoch: ${live.join(", ")}`);
  deepEqual(textures.slice(1), [textures[0], textures[0]], `texture bytes: ${textures.join(", ")}`);
  model.dispose();
  loader.dispose();
  dataset.dispose();
});

Deno.test("starting another epoch before one finishes is an error, not silent corruption", () => {
  const set = syntheticSet(20, 2, 2, 4);
  const dataset = new GpuDataset(set);
  const loader = new DataLoader(dataset, { batchSize: 4 });
  const first = loader.batches(0);
  first.next().value?.dispose();
  for (const batch of loader.batches(1)) batch.dispose();
  throws(() => first.next(), /one epoch at a time/);
  loader.dispose();
  dataset.dispose();
});

Deno.test("a batch of more than 65,535 examples (a 2-D dispatch grid) is gathered right", async () => {
  const set = syntheticSet(70_000, 2, 2, 6);
  const dataset = new GpuDataset(set);
  const loader = new DataLoader(dataset, { batchSize: 70_000, seed: 2 });
  await checkEpoch(set, loader, 0);
  loader.dispose();
  dataset.dispose();
});

Deno.test("GpuDataset's batches are bit for bit those of the gather before TensorDataset (u8 and f32, aligned and odd rows)", async () => {
  for (
    const [rows, cols, dtype] of [[28, 28, "u8"], [3, 5, "u8"], [28, 28, "f32"], [
      3,
      5,
      "f32",
    ]] as const
  ) {
    const set = syntheticSet(COUNT, rows, cols, rows + cols);
    const dataset = new GpuDataset(set, { dtype });
    const loader = new DataLoader(dataset, { batchSize: 8, seed: 17 });
    for (const epoch of [0, 1]) {
      const order = tensor(loader.epochOrder(epoch), [COUNT], { dtype: "i32" });
      for (const batch of loader.batches(epoch)) {
        const x = Tensor.empty([batch.size, 1, rows, cols]);
        const y = Tensor.empty([batch.size], "i32");
        gatherBatch(
          { images: dataset.images, labels: dataset.labels, order },
          { x, y },
          batch.index * loader.batchSize,
        );
        const what = `${rows}x${cols} ${dtype}, epoch ${epoch}, batch ${batch.index}`;
        deepEqual(await batch.x.toTypedArray(), await x.toTypedArray(), what);
        deepEqual(await batch.y.toTypedArray(), await y.toTypedArray(), what);
        x.dispose();
        y.dispose();
      }
      order.dispose();
    }
    loader.dispose();
    dataset.dispose();
  }
});
