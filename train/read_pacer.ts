/**
 * When the training loop reads its GPU sums back within an epoch. The loop never waits for the
 * GPU after each step: the CPU encodes steps ahead while the GPU runs them. Every `tick` steps it
 * encodes a copy of the sums (a fence) and awaits the previous fence, which the GPU has usually
 * finished by then. So the CPU stays at most two ticks ahead (Ctrl-C and NaN are noticed within
 * about two ticks), the GPU never idles for a read, and a progress bar gets fresh numbers.
 * `tick` adapts so that a tick is about `targetSeconds` of GPU work.
 *
 * @module
 */

/** Options of `ReadPacer`. */
export interface ReadPacerOptions {
  /** Wanted seconds between two reads (default 0.5). */
  targetSeconds?: number;
  /** Steps between reads before the step time is known (default 2). */
  initialTick?: number;
  /** Most steps between two reads (default 512). */
  maxTick?: number;
}

/** Decides at which steps the loop reads back (see the module notes). */
export class ReadPacer {
  /** Wanted seconds between two reads. */
  readonly targetSeconds: number;
  readonly #maxTick: number;
  #tick: number;
  #nextAt = 0;
  #last: { time: number; step: number } | null = null;

  /** A pacer; keep one per training run so that the learned step time carries over epochs. */
  constructor(options: ReadPacerOptions = {}) {
    this.targetSeconds = options.targetSeconds ?? 0.5;
    this.#tick = Math.max(1, Math.round(options.initialTick ?? 2));
    this.#maxTick = options.maxTick ?? 512;
  }

  /** Steps between two reads, as now learned. */
  get tick(): number {
    return this.#tick;
  }

  /** An epoch starts (the GPU is idle): forget the last timing point. */
  startEpoch(now: number): void {
    this.#last = { time: now, step: 0 };
    this.#nextAt = this.#tick;
  }

  /** Whether the loop should encode a read after `step` (1-based steps done in the epoch). */
  due(step: number): boolean {
    if (step < this.#nextAt) return false;
    this.#nextAt = step + this.#tick;
    return true;
  }

  /** A read made after `step` completed at `now` (ms): learns the time per step. */
  observe(step: number, now: number): void {
    const last = this.#last;
    if (last && step > last.step && now > last.time) {
      const secondsPerStep = (now - last.time) / 1000 / (step - last.step);
      const tick = Math.round(this.targetSeconds / secondsPerStep);
      this.#tick = Math.min(this.#maxTick, Math.max(1, tick));
    }
    this.#last = { time: now, step };
  }
}
