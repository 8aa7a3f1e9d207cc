/**
 * `deno task bench`: throughput and kernel speed.
 *
 * @module
 */

if (import.meta.main) {
  console.error("bench: not implemented yet");
}
