// Reading the simulated guest's data back out of an exported image, for test environments.
import { readGuestDataFromImage } from "./disk.js";

/** The value a simulated guest wrote under `key`, found in an exported image's bytes. */
export function readDataFromImage(bytes: Uint8Array, format: "raw" | "vhd", key: string): string | undefined {
  return readGuestDataFromImage(bytes, format)[key];
}
