/**
 * The statistics over seeds: mean, sample sd (n - 1), min/max, the Student t quantile against
 * known values, and the paired t interval worked by hand.
 */

import { equal, ok, throws } from "node:assert/strict";
import { pairedTInterval, spread, studentTCdf, tQuantile } from "../../cli/seed_stats.ts";

function near(actual: number | null, expected: number, tolerance: number, what: string): void {
  ok(
    actual !== null && Math.abs(actual - expected) <= tolerance,
    `${what}: ${actual}, expected ${expected}`,
  );
}

Deno.test("spread: mean, sample sd (n - 1), min, max", () => {
  const s = spread([0.8416, 0.85, 0.8473]);
  near(s.mean, (0.8416 + 0.85 + 0.8473) / 3, 1e-15, "mean");
  const m = s.mean;
  const sd = Math.sqrt(((0.8416 - m) ** 2 + (0.85 - m) ** 2 + (0.8473 - m) ** 2) / 2);
  near(s.sd, sd, 1e-15, "sd");
  equal(s.min, 0.8416);
  equal(s.max, 0.85);
  equal(s.n, 3);
  equal(spread([2, 4, 4, 4, 5, 5, 7, 9]).sd, Math.sqrt(32 / 7));
  equal(spread([0.5]).sd, null, "one seed has no sd");
  throws(() => spread([]), /no values/);
});

Deno.test("tQuantile matches the tables", () => {
  const known: [number, number, number][] = [
    [0.975, 1, 12.706205],
    [0.975, 2, 4.302653],
    [0.975, 3, 3.182446],
    [0.975, 4, 2.776445],
    [0.975, 9, 2.262157],
    [0.975, 29, 2.045230],
    [0.975, 120, 1.979930],
    [0.95, 5, 2.015048],
    [0.995, 10, 3.169273],
  ];
  for (const [p, df, t] of known) near(tQuantile(p, df), t, 5e-6, `t(${p}, ${df})`);
  near(tQuantile(0.025, 4), -2.776445, 5e-6, "lower tail");
  equal(tQuantile(0.5, 7), 0);
  near(studentTCdf(0, 3), 0.5, 1e-15, "cdf(0)");
  near(studentTCdf(1, 1), 0.75, 1e-12, "Cauchy cdf(1)");
  throws(() => tQuantile(1, 3), /p must be in \(0, 1\)/);
  throws(() => tQuantile(0.9, 0), /df must be > 0/);
});

Deno.test("pairedTInterval: by hand on three pairs", () => {
  const a = [0.90, 0.91, 0.93], b = [0.88, 0.90, 0.90];
  // d = 0.02, 0.01, 0.03: mean 0.02, sd 0.01, half width 4.302653 * 0.01 / sqrt(3).
  const ci = pairedTInterval(a, b);
  near(ci.difference, 0.02, 1e-12, "difference");
  const half = 4.302653 * 0.01 / Math.sqrt(3);
  near(ci.low, 0.02 - half, 1e-7, "low");
  near(ci.high, 0.02 + half, 1e-7, "high");
  equal(ci.df, 2);
  equal(ci.level, 0.95);
  const one = pairedTInterval([0.9], [0.8]);
  near(one.difference, 0.1, 1e-12, "one pair");
  equal(one.low, null);
  throws(() => pairedTInterval([1, 2], [1]), /as many values in a as in b.*2 and 1/);
});
