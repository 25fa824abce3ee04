/**
 * Reads the guest's power log (`GUEST_POWER_LOG` of guest-layer.ts): what the guest itself recorded of its
 * boots, the ACPI power-button presses it received and which boots it ended by its own clean
 * shutdown. Read by the environment through the agent or off the disk, never from the driver.
 */
/** What the power log says. */
export interface GuestPowerLog {
  /** The last boot the log records (0: none). */
  readonly lastBoot: number;
  /** ACPI power-button presses the guest received, over all its boots. */
  readonly acpiRequests: number;
  /** The boots that ended in the guest's own shutdown; any other ended boot ended hard. */
  readonly cleanEnds: ReadonlySet<number>;
}

/** Parses the log; lines it does not know (a torn write cut off by a hard stop) are skipped. */
export function parseGuestPowerLog(text: string): GuestPowerLog {
  let lastBoot = 0;
  let acpiRequests = 0;
  const cleanEnds = new Set<number>();
  for (const line of text.split("\n")) {
    const m = /^(boot|acpi|clean) (\d+)$/.exec(line.trim());
    if (!m) continue;
    const n = Number(m[2]);
    if (m[1] === "boot") lastBoot = Math.max(lastBoot, n);
    else if (m[1] === "acpi") acpiRequests++;
    else cleanEnds.add(n);
  }
  return { lastBoot, acpiRequests, cleanEnds };
}
