/**
 * A small, fast, seeded random generator (xoshiro128**), so that runs are reproducible.
 *
 * @module
 */

function splitmix32(state: number): () => number {
  return () => {
    state = (state + 0x9e3779b9) | 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** A seeded generator of uniform floats, integers and normal deviates. */
export class Rng {
  #s: Uint32Array;
  #spareNormal: number | null = null;

  /**
   * A generator whose whole sequence is fixed by `seed`: an integer (a safe integer as a number,
   * or a bigint) from -2^63 to 2^64 - 1, like `torch.manual_seed`; a negative seed counts as
   * 2^64 + seed. Every bit is used: seeds 0, 2^32 and -1 give different sequences. Throws a
   * clear error for anything else (fractions, NaN, numbers beyond 2^53 that lost their low bits).
   */
  constructor(seed: number | bigint) {
    const [low, high] = seedHalves(seed);
    const lowWords = splitmix32(low | 0);
    this.#s = new Uint32Array([lowWords(), lowWords(), lowWords(), lowWords()]);
    if (high !== 0) {
      // Seeds below 2^32 keep the sequence they always had; the high half changes every word.
      const highWords = splitmix32((high ^ HIGH_SEED_SALT) | 0);
      for (let i = 0; i < 4; i++) this.#s[i] ^= rotl(highWords(), 13);
      if (this.#s.every((word) => word === 0)) this.#s[0] = 1; // xoshiro's one bad state
    }
  }

  /** The next 32 random bits as an unsigned integer. */
  nextUint32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** A float in [0, 1) with 32 random bits. */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** A standard normal deviate (Box–Muller). */
  normal(): number {
    if (this.#spareNormal !== null) {
      const spare = this.#spareNormal;
      this.#spareNormal = null;
      return spare;
    }
    const u = 1 - this.next(), v = this.next();
    const radius = Math.sqrt(-2 * Math.log(u));
    this.#spareNormal = radius * Math.sin(2 * Math.PI * v);
    return radius * Math.cos(2 * Math.PI * v);
  }

  /** Shuffles `items` in place (Fisher–Yates) and returns it. */
  shuffle<T extends { length: number; [index: number]: unknown }>(items: T): T {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const swap = items[i];
      items[i] = items[j];
      items[j] = swap;
    }
    return items;
  }

  /** A permutation of 0..n-1 as an Int32Array. */
  permutation(n: number): Int32Array {
    const order = new Int32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    return this.shuffle(order);
  }
}

/** Mixed into the high half of a seed so that it never cancels the low half. */
const HIGH_SEED_SALT = 0x6a09e667;

/** The low and high 32 bits of a seed as a 64-bit unsigned integer (negatives wrap). */
function seedHalves(seed: number | bigint): [number, number] {
  const valid = typeof seed === "bigint"
    ? seed >= -(2n ** 63n) && seed < 2n ** 64n
    : Number.isSafeInteger(seed);
  if (!valid) {
    throw new Error(
      `Rng: invalid seed ${seed}: a seed is an integer from -2^63 to 2^64 - 1 (as a number, ` +
        `one from -(2^53 - 1) to 2^53 - 1, which numbers hold exactly; pass a bigint for more)`,
    );
  }
  const bits = BigInt.asUintN(64, BigInt(seed));
  return [Number(bits & 0xffffffffn), Number(bits >> 32n)];
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

let defaultRng = new Rng(0);

/**
 * Seeds the generator that layers and random tensors use when none is given (like
 * `torch.manual_seed`).
 */
export function manualSeed(seed: number): void {
  defaultRng = new Rng(seed);
}

/** The generator layers and random tensors use when none is given. */
export function defaultGenerator(): Rng {
  return defaultRng;
}
