import { fileURLToPath } from "node:url";

/**
 * Absolute path of the k3s stand-in executable (`standin/k3s-standin`, a Node script), for tests
 * and demos where no k3s binary can be obtained. NOT k3s: see the README's "The k3s stand-in".
 * It needs this package's `dist/` to be built.
 */
export function standinPath(): string {
  return fileURLToPath(new URL("../standin/k3s-standin", import.meta.url));
}
