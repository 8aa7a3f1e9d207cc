/**
 * Search-space domains, with Ray Tune's semantics (`ray/tune/search/sample.py`):
 *
 * | here | Ray | samples |
 * | --- | --- | --- |
 * | `choice(values)` | `tune.choice` | one of `values`, each with probability 1/n |
 * | `uniform(lo, hi)` | `tune.uniform` | a float in [lo, hi) |
 * | `loguniform(lo, hi)` | `tune.loguniform` | `exp(uniform(log lo, log hi))`, lo > 0 |
 * | `randint(lo, hi)` | `tune.randint` | an integer in [lo, hi): the upper bound is excluded |
 * | `qrandint(lo, hi, { q })` | `tune.qrandint` | `q * k` for an integer k uniform in [ceil(lo/q), floor(hi/q)]: both bounds included |
 * | `gridSearch(values)` | `tune.grid_search` | every value: the grid is a cross product, repeated `numSamples` times |
 *
 * Notes on Ray's behaviour:
 * - `loguniform`'s `base` argument is deprecated in Ray and has no effect (the distribution is
 *   uniform in log space whatever the base), so it is not offered here.
 * - `qrandint`: Ray's docstring promises an inclusive upper bound; older Ray code missed it (q = 1
 *   fell through to `randint`, q > 1 rounded an exclusive draw, giving non-uniform end points,
 *   ray-project/ray#28045). Ray PR #65864 made it `q * randint(ceil(lo/q), floor(hi/q) + 1)`,
 *   which is what this implements.
 *
 * Values are drawn from the project's seeded `Rng` (nn/random.ts), so they are reproducible but not
 * the same numbers numpy would draw.
 *
 * @module
 */

import type { Json } from "./types.ts";

/**
 * Where domains draw from: wgtorch's seeded `Rng` fits (any source of uniform [0, 1) floats and
 * integers in [0, n) does).
 */
export interface RandomSource {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [0, n). */
  int(n: number): number;
}

/** A JSON description of a domain, as stored in `experiment.json`. */
export type DomainJson =
  | { $domain: "choice"; values: Json[] }
  | { $domain: "grid_search"; values: Json[] }
  | { $domain: "uniform"; lower: number; upper: number }
  | { $domain: "loguniform"; lower: number; upper: number }
  | { $domain: "randint"; lower: number; upper: number }
  | { $domain: "qrandint"; lower: number; upper: number; q: number };

/** A hyperparameter domain: sampled per trial (or enumerated, for a grid). */
export abstract class Domain {
  /** Draws one value. Grid domains are enumerated by the variant generator instead. */
  abstract sample(rng: RandomSource): Json;
  /** The domain as JSON, for `experiment.json`. */
  abstract toJSON(): DomainJson;
}

/** A random choice among fixed values (Ray's `tune.choice`). */
export class Choice extends Domain {
  /** The values to choose from. */
  readonly values: readonly Json[];
  /** A choice among `values` (at least one). */
  constructor(values: readonly Json[]) {
    super();
    if (values.length === 0) throw new RangeError("choice: needs at least one value");
    this.values = [...values];
  }
  /** One of the values, uniformly. */
  sample(rng: RandomSource): Json {
    return this.values[rng.int(this.values.length)];
  }
  /** `{ $domain: "choice", values }`. */
  toJSON(): DomainJson {
    return { $domain: "choice", values: [...this.values] };
  }
}

/** Every value, one trial each, crossed with the other grids (Ray's `tune.grid_search`). */
export class GridSearch extends Domain {
  /** The values of the grid, in order. */
  readonly values: readonly Json[];
  /** A grid over `values` (at least one). */
  constructor(values: readonly Json[]) {
    super();
    if (values.length === 0) throw new RangeError("gridSearch: needs at least one value");
    this.values = [...values];
  }
  /** Grids are enumerated, never sampled. */
  sample(_rng: RandomSource): Json {
    throw new Error("gridSearch values are enumerated by generateConfigs, not sampled");
  }
  /** `{ $domain: "grid_search", values }`. */
  toJSON(): DomainJson {
    return { $domain: "grid_search", values: [...this.values] };
  }
}

function checkFinite(name: string, lower: number, upper: number): void {
  if (!Number.isFinite(lower) || !Number.isFinite(upper)) {
    throw new RangeError(`${name}: bounds must be finite, got [${lower}, ${upper}]`);
  }
  if (!(lower < upper)) {
    throw new RangeError(`${name}: needs lower < upper, got [${lower}, ${upper}]`);
  }
}

/** A float uniform in [lower, upper) (Ray's `tune.uniform`). */
export class Uniform extends Domain {
  /** Inclusive lower bound. */
  readonly lower: number;
  /** Exclusive upper bound. */
  readonly upper: number;
  /** Floats in [lower, upper). */
  constructor(lower: number, upper: number) {
    super();
    checkFinite("uniform", lower, upper);
    this.lower = lower;
    this.upper = upper;
  }
  /** `lower + (upper - lower) * u`, u uniform in [0, 1). */
  sample(rng: RandomSource): number {
    const value = this.lower + (this.upper - this.lower) * rng.next();
    return value < this.upper ? value : this.lower; // rounding can only reach upper when lower ≈ upper
  }
  /** `{ $domain: "uniform", lower, upper }`. */
  toJSON(): DomainJson {
    return { $domain: "uniform", lower: this.lower, upper: this.upper };
  }
}

/** A float whose logarithm is uniform (Ray's `tune.loguniform`): for rates spanning decades. */
export class LogUniform extends Domain {
  /** Lower bound, > 0. */
  readonly lower: number;
  /** Upper bound. */
  readonly upper: number;
  /** Floats between lower > 0 and upper, uniform in log space. */
  constructor(lower: number, upper: number) {
    super();
    checkFinite("loguniform", lower, upper);
    if (!(lower > 0)) throw new RangeError(`loguniform: lower bound must be > 0, got ${lower}`);
    this.lower = lower;
    this.upper = upper;
  }
  /** `exp(log(lower) + (log(upper) - log(lower)) * u)`, clamped into [lower, upper]. */
  sample(rng: RandomSource): number {
    const logLower = Math.log(this.lower), logUpper = Math.log(this.upper);
    const value = Math.exp(logLower + (logUpper - logLower) * rng.next());
    return Math.min(Math.max(value, this.lower), this.upper);
  }
  /** `{ $domain: "loguniform", lower, upper }`. */
  toJSON(): DomainJson {
    return { $domain: "loguniform", lower: this.lower, upper: this.upper };
  }
}

function checkInteger(name: string, ...values: number[]): void {
  for (const value of values) {
    if (!Number.isSafeInteger(value)) throw new RangeError(`${name}: ${value} is not an integer`);
  }
}

/** An integer uniform in [lower, upper): upper excluded (Ray's `tune.randint`). */
export class RandInt extends Domain {
  /** Inclusive lower bound. */
  readonly lower: number;
  /** Exclusive upper bound. */
  readonly upper: number;
  /** Integers in [lower, upper). */
  constructor(lower: number, upper: number) {
    super();
    checkInteger("randint", lower, upper);
    if (!(lower < upper)) {
      throw new RangeError(`randint: needs lower < upper, got [${lower}, ${upper})`);
    }
    this.lower = lower;
    this.upper = upper;
  }
  /** `lower + k`, k uniform in [0, upper - lower). */
  sample(rng: RandomSource): number {
    return this.lower + rng.int(this.upper - this.lower);
  }
  /** `{ $domain: "randint", lower, upper }`. */
  toJSON(): DomainJson {
    return { $domain: "randint", lower: this.lower, upper: this.upper };
  }
}

/** Options of {@linkcode qrandint}. */
export interface QRandIntOptions {
  /** The step: values are multiples of it. A positive integer, default 1. */
  q?: number;
}

/** A multiple of q, uniform over the multiples in [lower, upper], both included (`tune.qrandint`). */
export class QRandInt extends Domain {
  /** Lower bound (inclusive). */
  readonly lower: number;
  /** Upper bound (inclusive). */
  readonly upper: number;
  /** The step. */
  readonly q: number;
  /** Multiples of the positive integer `options.q` (default 1) in [lower, upper]. */
  constructor(lower: number, upper: number, options: QRandIntOptions = {}) {
    super();
    const q = options.q ?? 1;
    checkInteger("qrandint", lower, upper, q);
    if (!(q > 0)) throw new RangeError(`qrandint: q must be positive, got ${q}`);
    if (Math.ceil(lower / q) > Math.floor(upper / q)) {
      throw new RangeError(`qrandint: no multiple of ${q} in [${lower}, ${upper}]`);
    }
    this.lower = lower;
    this.upper = upper;
    this.q = q;
  }
  /** `q * k`, k uniform among the integers in [ceil(lower/q), floor(upper/q)]. */
  sample(rng: RandomSource): number {
    const first = Math.ceil(this.lower / this.q), last = Math.floor(this.upper / this.q);
    return this.q * (first + rng.int(last - first + 1));
  }
  /** `{ $domain: "qrandint", lower, upper, q }`. */
  toJSON(): DomainJson {
    return { $domain: "qrandint", lower: this.lower, upper: this.upper, q: this.q };
  }
}

/** One of `values`, uniformly at random (Ray's `tune.choice`). */
export function choice(values: readonly Json[]): Choice {
  return new Choice(values);
}

/** A float uniform in [lower, upper) (Ray's `tune.uniform`). */
export function uniform(lower: number, upper: number): Uniform {
  return new Uniform(lower, upper);
}

/** A float uniform in log space between lower > 0 and upper (Ray's `tune.loguniform`). */
export function loguniform(lower: number, upper: number): LogUniform {
  return new LogUniform(lower, upper);
}

/** An integer in [lower, upper), the upper bound excluded (Ray's `tune.randint`). */
export function randint(lower: number, upper: number): RandInt {
  return new RandInt(lower, upper);
}

/**
 * A multiple of `q` in [lower, upper], both bounds included, each multiple equally likely
 * (Ray's `tune.qrandint(lower, upper, q)`; `q` defaults to 1, as in Ray).
 */
export function qrandint(lower: number, upper: number, options: QRandIntOptions = {}): QRandInt {
  return new QRandInt(lower, upper, options);
}

/** Every one of `values` (Ray's `tune.grid_search`): grids are crossed, then repeated. */
export function gridSearch(values: readonly Json[]): GridSearch {
  return new GridSearch(values);
}

/** Rebuilds a domain from its JSON form (`experiment.json`). */
export function domainFromJSON(json: DomainJson): Domain {
  switch (json.$domain) {
    case "choice":
      return new Choice(json.values);
    case "grid_search":
      return new GridSearch(json.values);
    case "uniform":
      return new Uniform(json.lower, json.upper);
    case "loguniform":
      return new LogUniform(json.lower, json.upper);
    case "randint":
      return new RandInt(json.lower, json.upper);
    case "qrandint":
      return new QRandInt(json.lower, json.upper, { q: json.q });
    default:
      throw new Error(`unknown domain ${JSON.stringify(json)}`);
  }
}
