/**
 * What runs inside a fake instance: its disk, its account database (password hashes only), its
 * serial console and its guest agent. The environment (tests, the conformance kit) reads and
 * provokes the guest directly through {@link FakeCloud.guest}, never through the driver.
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from "node:crypto";
import { inspect } from "node:util";
import { isSecret, type GuestAgentMode, type Secret } from "@virtkit/core";
import type { DiskFiles } from "./fake-disk.js";

/** How the guest agent behaves: answering (`ok`), not running (`absent`) or hanging (`unresponsive`). */
export type FakeAgentMode = GuestAgentMode;

/** How the guest last went down or rebooted. */
export type FakeShutdownKind = "clean" | "hard";

// Cheap scrypt parameters: this is a test double, the point is that no plain text is stored.
const SCRYPT_LOG_N = 12;
const SCRYPT_R = 8;
const SCRYPT_P = 1;
const SCRYPT_KEYLEN = 32;
// Keep roughly what Nova reads back at most (MAX_CONSOLE_BYTES = 100 KiB).
const CONSOLE_MAX_CHARS = 100 * 1024;

function scrypt(password: string, salt: Buffer, keylen: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCb(password, salt, keylen, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

function timestamp(uptimeMs: number): string {
  return `[${(uptimeMs / 1000).toFixed(6).padStart(12, " ")}]`;
}

/** What a guest is created from. */
export interface FakeGuestInit {
  readonly hostname: string;
  readonly memoryMb: number;
  readonly vcpus: number;
  /** `windows` adds the `Administrator` account. */
  readonly osType?: string;
  /** The image's `os_admin_user`, created by "cloud-init". */
  readonly adminUser?: string;
}

/** The inside of one fake instance. */
export class FakeGuest {
  readonly #init: FakeGuestInit;
  #disk: DiskFiles;
  readonly #shadow = new Map<string, string>();
  readonly #rescueShadow = new Map<string, string>();
  readonly #users: Set<string>;
  #console: string[] = [];
  #consoleChars = 0;
  #bootedAt = 0;

  /** The guest agent's behaviour (fault injection). */
  agent: FakeAgentMode = "ok";
  /** When true the guest ignores ACPI power-button presses, so a clean shutdown times out. */
  ignoresAcpi = false;
  /** How the guest last went down (`clean` = ACPI, `hard` = pulled the plug). */
  lastShutdown: FakeShutdownKind | undefined;
  /** How the guest last rebooted. */
  lastReboot: FakeShutdownKind | undefined;
  /** ACPI power-button presses the guest received (clean shutdown and soft reboot requests). */
  acpiRequests = 0;
  /** Boots so far (spawn, power on, reboots, resume from a cold state, ...). */
  boots = 0;

  constructor(init: FakeGuestInit, disk?: DiskFiles) {
    this.#init = init;
    this.#users = new Set(["root"]);
    if (init.osType === "windows") this.#users.add("Administrator");
    if (init.adminUser) this.#users.add(init.adminUser);
    this.#disk = disk ?? new Map([["/etc/hostname", Buffer.from(`${init.hostname}\n`)]]);
  }

  /** The guest's hostname. */
  get hostname(): string {
    return this.#init.hostname;
  }

  // -- disk --

  /** Writes a file on the guest's disk (a copy of `data`). */
  writeFile(path: string, data: string | Uint8Array): void {
    if (typeof path !== "string" || !path.startsWith("/")) throw new RangeError("guest paths are absolute");
    this.#disk.set(path, typeof data === "string" ? Buffer.from(data, "utf8") : new Uint8Array(data));
  }

  /** A file's content, or undefined when absent. */
  readFile(path: string): Uint8Array | undefined {
    const v = this.#disk.get(path);
    return v === undefined ? undefined : new Uint8Array(v);
  }

  /** A file's content as UTF-8, or undefined when absent. */
  readTextFile(path: string): string | undefined {
    const v = this.#disk.get(path);
    return v === undefined ? undefined : Buffer.from(v).toString("utf8");
  }

  /** Removes a file; true when it existed. */
  deleteFile(path: string): boolean {
    return this.#disk.delete(path);
  }

  /** Paths on the disk, sorted. */
  listFiles(): string[] {
    return [...this.#disk.keys()].sort();
  }

  /** @internal A copy of the disk (values are shared: they are never mutated in place). */
  cloneDisk(): DiskFiles {
    return new Map(this.#disk);
  }

  /** @internal Replaces the disk (instance snapshot revert). */
  restoreDisk(files: ReadonlyMap<string, Uint8Array>): void {
    this.#disk = new Map(files);
  }

  /** @internal The live disk, read-only (image snapshot serialisation). */
  get disk(): ReadonlyMap<string, Uint8Array> {
    return this.#disk;
  }

  // -- accounts --

  /** Accounts that exist in the guest. */
  users(): string[] {
    return [...this.#users].sort();
  }

  /** Adds an account (environment side). */
  addUser(user: string): void {
    this.#users.add(user);
  }

  /** Removes an account and its password (environment side), e.g. to make a password change fail. */
  removeUser(user: string): void {
    this.#users.delete(user);
    this.#shadow.delete(user);
  }

  /** True when `user` exists. */
  hasUser(user: string): boolean {
    return this.#users.has(user);
  }

  /** Users that have a password set. */
  usersWithPassword(): string[] {
    return [...this.#shadow.keys()].sort();
  }

  /** @internal A salted scrypt hash of `password` in a `$scrypt$...` string; the plain value is not kept. */
  static async hashPassword(password: Secret): Promise<string> {
    const salt = randomBytes(16);
    const key = await scrypt(password.reveal(), salt, SCRYPT_KEYLEN, { N: 2 ** SCRYPT_LOG_N, r: SCRYPT_R, p: SCRYPT_P });
    return `$scrypt$ln=${SCRYPT_LOG_N},r=${SCRYPT_R},p=${SCRYPT_P}$${salt.toString("base64")}$${key.toString("base64")}`;
  }

  /** @internal Records a hash made by {@link FakeGuest.hashPassword} for `user`. */
  setPasswordHash(user: string, hash: string, options: { rescue?: boolean } = {}): void {
    (options.rescue ? this.#rescueShadow : this.#shadow).set(user, hash);
  }

  /** Sets `user`'s password (environment side, e.g. to prepare a guest): only its hash is stored. */
  async setPassword(user: string, password: Secret, options: { rescue?: boolean } = {}): Promise<void> {
    this.setPasswordHash(user, await FakeGuest.hashPassword(password), options);
  }

  /**
   * The environment's own check (a guest login): does `user`'s stored hash match `password`?
   * `rescue` checks the rescue image's root account instead.
   */
  async checkPassword(user: string, password: string | Secret, options: { rescue?: boolean } = {}): Promise<boolean> {
    const entry = (options.rescue ? this.#rescueShadow : this.#shadow).get(user);
    if (entry === undefined) return false;
    const [, , params, saltB64, keyB64] = entry.split("$");
    const m = /^ln=(\d+),r=(\d+),p=(\d+)$/.exec(params ?? "");
    if (!m || saltB64 === undefined || keyB64 === undefined) return false;
    const expected = Buffer.from(keyB64, "base64");
    const plain = isSecret(password) ? password.reveal() : password;
    const actual = await scrypt(plain, Buffer.from(saltB64, "base64"), expected.byteLength, {
      N: 2 ** Number(m[1]),
      r: Number(m[2]),
      p: Number(m[3]),
    });
    return timingSafeEqual(actual, expected);
  }

  // -- console --

  /** The serial console so far. */
  consoleOutput(): string {
    return this.#console.join("");
  }

  /** @internal Appends guest output (one or more complete lines). */
  print(nowMs: number, ...lines: string[]): void {
    const ts = timestamp(Math.max(0, nowMs - this.#bootedAt));
    let text = "";
    for (const l of lines) text += `${ts} ${l}\n`;
    this.#append(text);
  }

  #append(text: string): void {
    this.#console.push(text);
    this.#consoleChars += text.length;
    while (this.#consoleChars > CONSOLE_MAX_CHARS && this.#console.length > 1) {
      this.#consoleChars -= this.#console.shift()!.length;
    }
  }

  /** @internal A kernel boot log: the guest boots (spawn, power on, reboot, rescue). */
  boot(nowMs: number, options: { rescue?: boolean } = {}): void {
    this.#bootedAt = nowMs;
    this.boots++;
    const { hostname, memoryMb, vcpus } = this.#init;
    const root = options.rescue ? "/dev/vdb1" : "/dev/vda1";
    this.#append(
      `[    0.000000] Linux version 6.1.0-virtkit-fake (virtkit@fake) #1 SMP PREEMPT_DYNAMIC\n` +
        `[    0.000000] Command line: root=${root} ro console=tty0 console=ttyS0,115200n8\n` +
        `[    0.000000] Memory: ${memoryMb * 1024}K available\n` +
        `[    0.012000] smp: Brought up 1 node, ${vcpus} CPU${vcpus === 1 ? "" : "s"}\n` +
        `[    0.431000] virtio_blk virtio1: [vda] ${options.rescue ? "rescue image, original disk as vdb" : "root disk"}\n` +
        `[    1.104000] EXT4-fs (${root.slice(5)}): mounted filesystem with ordered data mode\n` +
        `[    1.870000] systemd[1]: Reached target Multi-User System.\n` +
        `[    2.310000] cloud-init[412]: Cloud-init finished, datasource DataSourceConfigDrive\n` +
        `\n${hostname} login: \n`,
    );
  }

  /** Guest-side view for `util.inspect`: no hashes. */
  [inspect.custom](): string {
    return `FakeGuest(${this.#init.hostname}, users=${this.users().join(",")}, agent=${this.agent})`;
  }

  /** A debug view: files, accounts and which have a password; never a hash or a password. */
  toJSON(): Record<string, unknown> {
    return {
      hostname: this.#init.hostname,
      files: this.listFiles(),
      users: this.users(),
      usersWithPassword: this.usersWithPassword(),
      agent: this.agent,
      ignoresAcpi: this.ignoresAcpi,
      boots: this.boots,
    };
  }
}
