/**
 * The command line: download FashionMNIST, train, evaluate, and run every experiment of the study.
 *
 * @module
 */

if (import.meta.main) {
  console.error("cli.ts: not implemented yet");
  Deno.exit(1);
}
