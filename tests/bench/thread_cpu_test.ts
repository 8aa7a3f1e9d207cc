// `bench --profile`'s CPU time per thread: the /proc stat parser, and readings that move with work.
import { equal, ok, throws } from "node:assert/strict";
import {
  javascriptThreadId,
  parseTaskStat,
  threadShares,
  threadTimes,
} from "../../bench/thread_cpu.ts";

Deno.test("parseTaskStat: the name between the first ( and the last ), utime + stime in ms", () => {
  // A name with a space and a parenthesis in it; utime 250 and stime 31 ticks.
  const line = "4242 (V8 (Default) Wo) S 1 4242 4242 0 -1 4194368 6 0 0 0 250 31 0 0 20 0 " +
    "9 0 123 0 0";
  const { name, ms } = parseTaskStat(line);
  equal(name, "V8 (Default) Wo");
  equal(ms, 2810);
  throws(() => parseTaskStat("not a stat line"), /not a stat line/);
  throws(() => parseTaskStat("1 (x) S 1"), /no utime and stime/);
});

Deno.test("threadShares: per step, busiest first, new threads from 0, ended ones left out", () => {
  const before = new Map([[1, { name: "a", ms: 100 }], [2, { name: "b", ms: 50 }], [9, {
    name: "gone",
    ms: 10,
  }]]);
  const after = new Map([[1, { name: "a", ms: 120 }], [2, { name: "b", ms: 90 }], [3, {
    name: "new",
    ms: 30,
  }]]);
  const shares = threadShares(before, after, 10);
  equal(shares.map((share) => share.name).join(","), "b,new,a");
  equal(shares[0].msPerStep, 4);
  equal(shares[1].msPerStep, 3);
  equal(shares[2].msPerStep, 2);
});

Deno.test({
  name: "threadTimes: the JavaScript thread's CPU time grows with work done on it (Linux)",
  ignore: Deno.build.os !== "linux",
  fn() {
    const before = threadTimes();
    ok(before, "threadTimes() read /proc/self/task");
    const tid = javascriptThreadId();
    ok(tid !== null && before.has(tid), `the JavaScript thread ${tid} is among the threads`);
    const end = performance.now() + 200;
    let spins = 0;
    while (performance.now() < end) spins++;
    const after = threadTimes()!;
    const main = threadShares(before, after, 1).find((share) => share.main)!;
    // 200 ms of spinning, counted in 10 ms ticks (and the scheduler may take a little).
    ok(main.msPerStep >= 150 && main.msPerStep <= 260, `JavaScript thread: ${main.msPerStep} ms`);
    ok(spins > 0);
  },
});
