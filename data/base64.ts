/**
 * Base64 encoding (standard alphabet, padded), for data URIs.
 *
 * @module
 */

/** `bytes` as base64 text. */
export function encodeBase64(bytes: Uint8Array): string {
  let binary = "";
  const step = 0x8000;
  for (let i = 0; i < bytes.length; i += step) {
    binary += String.fromCharCode(...bytes.subarray(i, i + step));
  }
  return btoa(binary);
}
