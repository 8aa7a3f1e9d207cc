/** The journal: fsynced lines, a torn last line tolerated and truncated, NaN metrics kept. */

import assert from "node:assert/strict";
import { join } from "node:path";
import { Journal, parseJournal, readJournal } from "../../train/tune/journal.ts";

const encode = (text: string) => new TextEncoder().encode(text);

Deno.test("parseJournal keeps complete lines and drops a torn tail", () => {
  const good = '{"type":"start","trial":"t0","slot":0}\n' +
    '{"type":"end","trial":"t0","status":"TERMINATED","seconds":1}\n';
  for (const tail of ['{"type":"res', '{"type":"start","trial":"t1","slot":0}', "\0\0\0", ""]) {
    const { events, validBytes } = parseJournal(encode(good + tail));
    assert.equal(events.length, 2, JSON.stringify(tail));
    assert.equal(validBytes, encode(good).length);
  }
  // Garbage ending in a newline at the very end is a torn write too.
  assert.equal(parseJournal(encode(good + "garbage\n\0")).events.length, 2);
  // ...but not in the middle.
  assert.throws(() => parseJournal(encode("garbage\n" + good)), /corrupt/);
});

Deno.test("Journal.open truncates a torn tail, appends cleanly, and keeps NaN metrics", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tune_journal_" });
  try {
    const path = join(dir, "journal.jsonl");
    let { journal, events } = await Journal.open(path);
    assert.deepEqual(events, []);
    await journal.append({ type: "start", trial: "t0", slot: 0 });
    await journal.append({
      type: "result",
      trial: "t0",
      result: { training_iteration: 1, loss: NaN, top: Infinity, low: -Infinity, acc: 0.5 },
      decision: "CONTINUE",
    });
    journal.close();
    await Deno.writeTextFile(path, '{"type":"end","tri', { append: true });
    ({ journal, events } = await Journal.open(path));
    assert.equal(events.length, 2);
    assert.deepEqual(events[1], {
      type: "result",
      trial: "t0",
      result: { training_iteration: 1, loss: NaN, top: Infinity, low: -Infinity, acc: 0.5 },
      decision: "CONTINUE",
    });
    await journal.append({ type: "end", trial: "t0", status: "TERMINATED", seconds: 2 });
    journal.close();
    const again = await readJournal(path);
    assert.equal(again.length, 3);
    assert.equal(again[2].type, "end");
    assert.ok((await Deno.readTextFile(path)).endsWith('"seconds":2}\n'));
    assert.deepEqual(await readJournal(join(dir, "missing.jsonl")), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
