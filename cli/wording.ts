/**
 * The library's errors speak of its options (`dataDir`, `verify: false`, `mirrors`); the command
 * line re-words them with the flags that set those options.
 *
 * @module
 */

/** Each library phrase and the command line's words for it. */
const FLAG_WORDING: readonly (readonly [string, string])[] = [
  ["load it with `verify: false`", "add --no-verify (the training commands)"],
  ["with the `dataDir` option or WGTORCH_DATA_DIR", "with --data-dir or WGTORCH_DATA_DIR"],
  ["with the `mirrors` option or WGTORCH_MIRRORS", "with --mirror URL or WGTORCH_MIRRORS"],
  ["Fix this `mirrors` entry.", "Fix the --mirror value."],
];

/** `message` with the library's option names replaced by the flags that set them. */
export function flagWording(message: string): string {
  let text = message;
  for (const [library, cli] of FLAG_WORDING) text = text.replaceAll(library, cli);
  return text;
}
