/**
 * Turning a search space into trial configs, as Ray Tune's `BasicVariantGenerator` does
 * (`ray/tune/search/variant_generator.py`, `_generate_variants_internal` and
 * `_grid_search_generator`):
 *
 * - grid values form a cross product; the grid variables are ordered by their key path and the
 *   first one varies fastest;
 * - for each grid point, every random domain is sampled afresh, in the order the keys appear
 *   (depth first through nested objects and arrays);
 * - the whole grid is repeated `numSamples` times, so there are
 *   `numSamples × Π(grid sizes)` trials, sample 0's grid first.
 *
 * All configs are drawn up front from one {@linkcode Rng} seeded with `seed`, so the same space
 * and seed always give the same trials.
 *
 * @module
 */

import { Rng } from "../../nn/random.ts";
import { Domain, GridSearch } from "./search_space.ts";
import type { Config, Json } from "./types.ts";

/** A value in a search space: a domain, a constant, or a nested object/array of those. */
export type SpaceValue = Domain | Json | SpaceValue[] | { [key: string]: SpaceValue };

/** A search space: config keys mapped to domains or constants (nesting allowed). */
export type ParamSpace = { [key: string]: SpaceValue };

/** Options of {@linkcode generateConfigs}. */
export interface GenerateOptions {
  /** Repetitions of the grid (or number of random samples when there is no grid). Default 1. */
  numSamples?: number;
  /** Seed of the random draws. Default 0. */
  seed?: number;
}

type Path = (string | number)[];

interface Slot {
  path: Path;
  domain: Domain;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value) &&
    !(value instanceof Domain);
}

function collect(value: unknown, path: Path, into: Slot[]): void {
  if (value instanceof Domain) {
    into.push({ path, domain: value });
  } else if (Array.isArray(value)) {
    value.forEach((item, index) => collect(item, [...path, index], into));
  } else if (isPlainObject(value)) {
    for (const [key, item] of Object.entries(value)) collect(item, [...path, key], into);
  } else if (typeof value === "function" || typeof value === "symbol" || value === undefined) {
    throw new TypeError(`search space: ${path.join("/")} is not JSON (${typeof value})`);
  } else if (typeof value === "number" && !Number.isFinite(value)) {
    throw new TypeError(`search space: ${path.join("/")} is ${value}, which JSON cannot hold`);
  }
}

function comparePaths(a: Path, b: Path): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] === b[i]) continue;
    return a[i] < b[i] ? -1 : 1;
  }
  return a.length - b.length;
}

function copyConstants(value: unknown): unknown {
  if (value instanceof Domain) return value;
  if (Array.isArray(value)) return value.map(copyConstants);
  if (isPlainObject(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, copyConstants(v)]));
  }
  return value;
}

function assign(target: unknown, path: Path, value: Json): void {
  let node = target as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  node[path[path.length - 1]] = value;
}

/** The number of trials `generateConfigs` makes: `numSamples × Π(grid sizes)` (Ray's count). */
export function countConfigs(space: ParamSpace, numSamples = 1): number {
  const slots: Slot[] = [];
  collect(space, [], slots);
  let count = numSamples;
  for (const { domain } of slots) {
    if (domain instanceof GridSearch) count *= domain.values.length;
  }
  return count;
}

/**
 * All trial configs of a run, in trial order (see the module notes for Ray's ordering).
 *
 * ```ts
 * const configs = generateConfigs(
 *   { l1: choice([64, 128, 256]), lr: loguniform(1e-4, 1e-1), batch: gridSearch([32, 64]) },
 *   { numSamples: 3, seed: 42 },
 * ); // 6 configs
 * ```
 */
export function generateConfigs(space: ParamSpace, options: GenerateOptions = {}): Config[] {
  const { numSamples = 1, seed = 0 } = options;
  if (!Number.isInteger(numSamples) || numSamples < 1) {
    throw new RangeError(`numSamples must be a positive integer, got ${numSamples}`);
  }
  const slots: Slot[] = [];
  collect(space, [], slots);
  const grids = slots.filter((s) => s.domain instanceof GridSearch)
    .sort((a, b) => comparePaths(a.path, b.path));
  const randoms = slots.filter((s) => !(s.domain instanceof GridSearch));
  for (const grid of grids) {
    const inner: Slot[] = [];
    collect((grid.domain as GridSearch).values, [], inner);
    if (inner.length > 0) throw new TypeError("gridSearch values must be constants, not domains");
  }
  const rng = new Rng(seed);
  const configs: Config[] = [];
  for (let sample = 0; sample < numSamples; sample++) {
    const indices = grids.map(() => 0);
    while (true) {
      const config = copyConstants(space) as Config;
      grids.forEach((grid, i) => {
        const value = (grid.domain as GridSearch).values[indices[i]];
        assign(config, grid.path, structuredClone(value));
      });
      for (const { path, domain } of randoms) assign(config, path, domain.sample(rng));
      configs.push(config);
      // Odometer with the first grid variable fastest, as Ray's `increment(0)`.
      let digit = 0;
      while (digit < grids.length) {
        indices[digit]++;
        if (indices[digit] < (grids[digit].domain as GridSearch).values.length) break;
        indices[digit] = 0;
        digit++;
      }
      if (digit === grids.length) break;
    }
  }
  return configs;
}
