// What runs inside a simulated VM: the guest agent (with its mode), the accounts whose password the
// agent changes, ACPI handling, the boot counter and the serial console. Its disk data lives in
// the VM's root VDI (see disk.ts), reached through the callbacks the world gives it.
import { createHash, randomBytes } from "node:crypto";
import { DH_BASE, DH_PRIME, decryptPassword, dhPrivate, modPow } from "./agent-crypto.js";

/**
 * How the guest agent behaves: `ok` answers; `absent` no agent runs (nothing answers, the plugin
 * times out); `slow` answers after a delay; `rebooting` the domain disappears mid-call (REBOOT:);
 * `broken` answers every request with an error code; `unresponsive` runs but never answers (TIMEOUT:).
 */
export type AgentMode = "ok" | "absent" | "slow" | "rebooting" | "broken" | "unresponsive";

/** The agent's reply as it writes it to xenstore. */
export interface AgentReply {
  readonly returncode: string;
  readonly message: string;
}

/** The test-facing view of one simulated guest. */
export interface SimulatedGuest {
  /** The XAPI VM uuid this guest runs in. */
  readonly vmUuid: string;
  /** How many times the guest has booted (start, reboot, resume does not count). */
  readonly bootCount: number;
  readonly agentMode: AgentMode;
  /** Whether the guest ignores ACPI shutdown/reboot requests. */
  readonly ignoresAcpi: boolean;
  /** Agent requests received (name only, never values), oldest first. */
  readonly agentRequests: readonly string[];
  /** How many times resetnetwork ran. */
  readonly networkResets: number;
  setAgent(mode: AgentMode): void;
  /** Make the guest ignore (or honour again) ACPI power buttons. */
  ignoreAcpi(ignore?: boolean): void;
  /** A guest login: does this password open this account? */
  verifyPassword(user: string, password: string): boolean;
  /** Write a key/value on the VM's root disk. Throws when the VM has no disk. */
  writeData(key: string, value: string): void;
  /** Read a key/value from the VM's root disk. */
  readData(key: string): string | undefined;
  /** Files the agent injected (path -> contents). */
  readonly files: ReadonlyMap<string, Buffer>;
  /** Lines written to the serial console since the VM was created. */
  consoleLines(): readonly string[];
  /** Write a line to the serial console (as the guest would). */
  writeConsole(line: string): void;
  /**
   * The domain crashes. XAPI then applies the VM's actions_after_crash as xenopsd does:
   * preserve -> the domain is kept paused (power_state Paused); restart, rename_restart,
   * coredump_and_restart -> it boots again; destroy, coredump_and_destroy -> Halted.
   */
  crash(): void;
}

/** Access the world gives a guest to its VM: its root disk and its platform. */
export interface GuestDisk {
  read(): Record<string, string>;
  write(data: Record<string, string>): void;
}

/** What the world lets a guest do to its VM. */
export interface GuestHooks {
  disk(): GuestDisk;
  /** Windows guests (platform viridian=true): the agent sets Administrator, not root. */
  isWindows(): boolean;
  crash(): void;
}

function hashPassword(salt: Buffer, password: string): string {
  return createHash("sha256").update(salt).update(password, "utf8").digest("hex");
}

/** A simulated guest. */
export class Guest implements SimulatedGuest {
  bootCount = 0;
  agentMode: AgentMode = "ok";
  ignoresAcpi = false;
  networkResets = 0;
  readonly agentRequests: string[] = [];
  readonly files = new Map<string, Buffer>();
  agentVersion = "1.0.0";
  agentUpdate: { url: string; md5sum: string } | undefined;
  private readonly accounts = new Map<string, { salt: Buffer; hash: string }>();
  private readonly console: string[] = [];
  private aesSecret: string | undefined;

  constructor(
    readonly vmUuid: string,
    private readonly hooks: GuestHooks,
  ) {
    // The image's passwords are unknown to everyone until the agent sets one.
    this.setPassword("root", randomBytes(24).toString("base64"));
    this.setPassword("Administrator", randomBytes(24).toString("base64"));
  }

  crash(): void {
    this.writeConsole("Kernel panic - not syncing: simulated crash");
    this.hooks.crash();
  }

  setAgent(mode: AgentMode): void {
    this.agentMode = mode;
  }

  ignoreAcpi(ignore = true): void {
    this.ignoresAcpi = ignore;
  }

  verifyPassword(user: string, password: string): boolean {
    const account = this.accounts.get(user);
    return account !== undefined && account.hash === hashPassword(account.salt, password);
  }

  private setPassword(user: string, password: string): void {
    const salt = randomBytes(16);
    this.accounts.set(user, { salt, hash: hashPassword(salt, password) });
  }

  writeData(key: string, value: string): void {
    const d = this.hooks.disk();
    const data = d.read();
    data[key] = value;
    d.write(data);
  }

  readData(key: string): string | undefined {
    return this.hooks.disk().read()[key];
  }

  consoleLines(): readonly string[] {
    return [...this.console];
  }

  writeConsole(line: string): void {
    this.console.push(line);
    if (this.console.length > 2000) this.console.splice(0, this.console.length - 2000);
  }

  /** Called when the domain boots. */
  booted(domid: number): void {
    this.bootCount++;
    this.aesSecret = undefined;
    this.writeConsole(`[    0.000000] Linux version 6.1.0-virtkit-sim (simulated guest ${this.vmUuid})`);
    this.writeConsole(`[    0.412000] xen: domain ${domid} booting (boot ${this.bootCount})`);
    this.writeConsole("Debian GNU/Linux 12 virtkit-sim hvc0");
    this.writeConsole("virtkit-sim login:");
  }

  /** The agent handles one request (the JSON it would write to xenstore data/guest/<id>). */
  handle(name: string, value: unknown): AgentReply {
    this.agentRequests.push(name);
    if (this.agentMode === "broken") return { returncode: "500", message: "agent internal error" };
    switch (name) {
      case "version":
        return { returncode: "0", message: this.agentVersion };
      case "features":
        return { returncode: "0", message: "version,key_init,password,resetnetwork,file_inject,agentupdate" };
      case "keyinit": {
        let remote: bigint;
        try {
          remote = BigInt(String(value));
        } catch {
          return { returncode: "500", message: "invalid public key" };
        }
        const mine = dhPrivate();
        this.aesSecret = modPow(remote, mine, DH_PRIME).toString();
        return { returncode: "D0", message: modPow(DH_BASE, mine, DH_PRIME).toString() };
      }
      case "password": {
        if (this.aesSecret === undefined) return { returncode: "500", message: "Password without key exchange" };
        let password: string;
        try {
          password = decryptPassword(String(value), this.aesSecret);
        } catch (e) {
          return { returncode: "500", message: (e as Error).message };
        }
        this.setPassword(this.hooks.isWindows() ? "Administrator" : "root", password.replace(/\n+$/, ""));
        this.aesSecret = undefined;
        return { returncode: "0", message: "" };
      }
      case "resetnetwork":
        this.networkResets++;
        return { returncode: "0", message: "" };
      case "file_inject": {
        const v = value as { b64_path?: string; b64_file?: string };
        const path = Buffer.from(v.b64_path ?? "", "base64").toString("utf8");
        this.files.set(path, Buffer.from(v.b64_file ?? "", "base64"));
        return { returncode: "0", message: "" };
      }
      case "agentupdate": {
        const [url = "", md5sum = ""] = String(value).split(",");
        this.agentUpdate = { url, md5sum };
        return { returncode: "0", message: "" };
      }
      default:
        return { returncode: "404", message: `unknown command ${name}` };
    }
  }
}
