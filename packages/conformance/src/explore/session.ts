/**
 * One explored sequence: the driver(s) of the environment and the reference model side by side.
 * Every step runs on the driver, is judged against the model (outcome and lifecycle events), and
 * then every view is compared with the model: getInfo, instanceExists, listInstanceUuids,
 * listInstances on every host, the instance snapshots, and the guest's data marker.
 */
import { randomUUID } from "node:crypto";
import { inspect } from "node:util";
import {
  DEFAULT_MIGRATION_POLICY,
  InstanceNotFoundError,
  InvalidStateError,
  LiveMigrationFailedError,
  MigrationPreCheckError,
  PowerState,
  Secret,
  powerStateName,
  type Capability,
  type ComputeDriver,
  type ConformanceEnvironment,
  type Instance,
  type LifecycleEvent,
  type LifecycleTransition,
  type MigrateData,
  type OperationOptions,
} from "@virtkit/core";
import { ConformanceFailure, describeError } from "../assertions.js";
import { withoutTransients } from "../checks/event-log.js";
import { OPERATION_CAPABILITY, type EventSequence } from "../expected-transitions.js";
import { SecretScan } from "../secret-scan.js";
import {
  UNKNOWN_SNAPSHOT,
  configPower,
  expectationsFor,
  judge,
  unsupportedExpectations,
  type Config,
  type Expectation,
  type ModelOperation,
  type Observation,
} from "./model.js";

/** What an exploration runs against: an environment, its drivers, and fresh instances. */
export interface ExploreTarget {
  readonly env: ConformanceEnvironment;
  /** The driver of `host` (created once per target, cleaned up by whoever made the target). */
  driverFor(host: string): Promise<ComputeDriver>;
  /** A new, not yet spawned instance with a unique name (tracked for cleanup by the caller). */
  newInstance(): Instance;
  /** Registers a password used (it must appear in no error). */
  trackSecret?(secret: Secret): void;
  /** Aborts every call. */
  readonly signal?: AbortSignal;
}

/** Limits and pacing of one sequence. */
export interface SessionSettings {
  /** Instances alive at once (default 3). */
  readonly maxInstances: number;
  /** How long events already due may take to arrive, in ms (default 500). */
  readonly eventWaitMs: number;
  /** Quiet time after the expected events, so a late duplicate still shows, in ms (default 2). */
  readonly eventSettleMs: number;
  /** Deadline of each driver call, in ms (default 30 000). */
  readonly callTimeoutMs: number;
}

/** One instance as the model holds it. */
export interface ModelInstance {
  /** `i1`, `i2`, ... in spawn order: the name the step list uses. */
  readonly label: string;
  readonly instance: Instance;
  host: string;
  configs: Set<Config>;
  gone: boolean;
  /** Oldest first, as listInstanceSnapshots returns them. */
  snapshots: ModelSnapshot[];
  /** The guest data marker the disk holds now (undefined: none written). */
  marker: string | undefined;
}

/** An instance snapshot as the model holds it. */
export interface ModelSnapshot {
  readonly label: string;
  readonly id: string;
  /** The configurations the instance may have been in when it was taken. */
  readonly captured: readonly Config[];
  readonly marker: string | undefined;
}

/** One step of a sequence, as generated (targets are indices, resolved against the live instances). */
export type StepSpec =
  | { readonly kind: "spawn" }
  | { readonly kind: "op"; readonly op: ModelOperation; readonly target: number; readonly snapshot: number }
  | { readonly kind: "destroy-gone"; readonly target: number }
  | { readonly kind: "migrate"; readonly target: number }
  | { readonly kind: "write"; readonly target: number; readonly value: number };

/** A divergence between the driver and the model. */
export class ExploreDivergence extends ConformanceFailure {
  override name = "ExploreDivergence";
}

const MARKER_KEY = "virtkit-explore-marker";
const MIGRATION_NOTICES: readonly LifecycleTransition[] = ["MIGRATION_COMPLETED", "POSTCOPY_STARTED"];

const showSeq = (s: EventSequence) => `[${s.join(", ")}]`;
const showConfigs = (cs: Iterable<Config>) => [...cs].join("|");

function describeObservation(obs: Observation): string {
  switch (obs.kind) {
    case "refused":
      return `refused with ${describeError(obs.error)}`;
    case "gone":
      return "gone";
    case "state":
      return obs.power;
  }
}

/** The model and the driver side by side for one sequence. */
export class ExploreSession {
  /** The readable step list so far: `pause i1 -> PAUSED [PAUSED]`. */
  readonly trace: string[] = [];
  readonly instances: ModelInstance[] = [];
  readonly #drivers = new Map<string, ComputeDriver>();
  readonly #events = new Map<string, LifecycleEvent[]>();
  readonly #offs: (() => void)[] = [];
  readonly #images: string[] = [];
  #snapshotCount = 0;

  private constructor(
    readonly target: ExploreTarget,
    readonly hosts: readonly string[],
    readonly settings: SessionSettings,
  ) {}

  /** Spawns the first instance: every sequence starts with one (step 1 of every step list). */
  async begin(): Promise<void> {
    await this.#spawn();
  }

  /** Opens a session on the target's first host (and its second, when migration is explored). */
  static async open(target: ExploreTarget, settings: SessionSettings, migrate: boolean): Promise<ExploreSession> {
    const hosts = target.env.hosts.slice(0, migrate ? 2 : 1);
    const session = new ExploreSession(target, hosts.length > 0 ? hosts : ["localhost"], settings);
    for (const host of session.hosts) {
      const driver = await target.driverFor(host);
      session.#drivers.set(host, driver);
      const log: LifecycleEvent[] = [];
      session.#events.set(host, log);
      if (driver.capabilities.lifecycleEvents) session.#offs.push(driver.registerEventListener((e) => log.push(e)));
    }
    return session;
  }

  get primary(): ComputeDriver {
    return this.#driver(this.hosts[0]!);
  }

  /** Instances not destroyed. */
  live(): ModelInstance[] {
    return this.instances.filter((m) => !m.gone);
  }

  /** Whether `spec` can run now (fast-check skips the steps that cannot). */
  applies(spec: StepSpec): boolean {
    const live = this.live();
    switch (spec.kind) {
      case "spawn":
        return live.length < this.settings.maxInstances;
      case "op":
      case "write":
        return live.length > 0;
      case "destroy-gone":
        return this.instances.some((m) => m.gone);
      case "migrate": {
        const m = live[spec.target % Math.max(1, live.length)];
        // Whether instance snapshots travel with a live migration is not in the contract.
        return this.hosts.length > 1 && m !== undefined && m.snapshots.length === 0;
      }
    }
  }

  /** Runs one step on the driver and the model, then compares every view. */
  async run(spec: StepSpec): Promise<void> {
    switch (spec.kind) {
      case "spawn":
        return this.#spawn();
      case "op":
        return this.#operation(spec.op, this.#pick(spec.target), spec.snapshot);
      case "destroy-gone":
      {
        const gone = this.instances.filter((m) => m.gone);
        return this.#destroyGone(gone[spec.target % gone.length]!);
      }
      case "migrate":
        return this.#migrate(this.#pick(spec.target));
      case "write":
        return this.#write(this.#pick(spec.target), spec.value);
    }
  }

  /** Destroys what the sequence left (snapshots first) and stops listening. Errors are divergences too. */
  async close(): Promise<void> {
    const problems: string[] = [];
    for (const m of this.live()) {
      const d = this.#driver(m.host);
      try {
        if (d.capabilities.instanceSnapshots) {
          for (const s of await d.listInstanceSnapshots(m.instance, this.#opts())) {
            await d.deleteInstanceSnapshot(m.instance, s.id, this.#opts());
          }
        }
        await d.destroy(m.instance, this.#opts());
        m.gone = true;
      } catch (err) {
        problems.push(`cleanup of ${m.label}: ${describeError(err)}`);
      }
    }
    for (const id of this.#images.splice(0)) await this.target.env.imageService.delete(id).catch(() => undefined);
    for (const off of this.#offs.splice(0)) off();
    if (problems.length > 0) {
      this.trace.push("cleanup: delete every instance's snapshots, destroy every instance");
      throw new ExploreDivergence(problems.join("; "));
    }
  }

  // -- steps --

  #pick(index: number): ModelInstance {
    const live = this.live();
    return live[index % live.length]!;
  }

  #driver(host: string): ComputeDriver {
    const d = this.#drivers.get(host);
    if (!d) throw new Error(`kit error: no driver for ${host}`);
    return d;
  }

  #opts<T extends object>(extra?: T): OperationOptions & T {
    return {
      timeoutMs: this.settings.callTimeoutMs,
      ...(this.target.signal ? { signal: this.target.signal } : {}),
      ...(extra ?? ({} as T)),
    };
  }

  async #spawn(): Promise<void> {
    const instance = this.target.newInstance();
    const m: ModelInstance = {
      label: `i${this.instances.length + 1}`,
      instance,
      host: this.hosts[0]!,
      configs: new Set(),
      gone: true,
      snapshots: [],
      marker: undefined,
    };
    const spawned: Expectation[] = [{ kind: "state", power: "RUNNING", events: [["STARTED"]], next: ["RUNNING"] }];
    // Judged as a step from "nothing": the only acceptable outcome is RUNNING announced by STARTED.
    m.configs = new Set<Config>(["SHUTDOWN"]);
    m.gone = false;
    this.instances.push(m);
    await this.#step(`spawn ${m.label}`, m, () => this.primary.spawn({ instance }, this.#opts()), () => spawned);
  }

  async #destroyGone(m: ModelInstance): Promise<void> {
    const d = this.#driver(m.host);
    const label = `destroy ${m.label} again (already gone)`;
    const marks = this.#marks();
    try {
      await d.destroy(m.instance, this.#opts());
    } catch (err) {
      this.#fail(`${label}: destroy is idempotent, but it rejected with ${describeError(err)}`);
    }
    await this.#settle();
    this.#noOtherEvents(label, marks, undefined);
    await this.#views(label);
    this.trace.push(`${label} -> still gone`);
  }

  async #write(m: ModelInstance, value: number): Promise<void> {
    const controls = this.target.env.guestControls;
    if (!controls?.writeData || !controls.readData) return;
    const text = `v${value}`;
    const label = `write marker ${text} into ${m.label}'s disk`;
    try {
      await controls.writeData(m.instance, MARKER_KEY, text);
    } catch {
      // The environment cannot write in this state (a real guest that is not running): no step.
      return;
    }
    m.marker = text;
    await this.#views(label);
    this.trace.push(`${label} (environment side)`);
  }

  async #operation(op: ModelOperation, m: ModelInstance, snapshotIndex: number): Promise<void> {
    const d = this.#driver(m.host);
    const inst = m.instance;
    const capability: Capability | null =
      op === "instance-snapshot-delete" ? "instanceSnapshots" : OPERATION_CAPABILITY[op];
    const declared = capability === null || d.capabilities[capability] === true;
    let label = `${op} ${m.label}`;
    let expectationsOf = (c: Config): readonly Expectation[] => expectationsFor(c, op);
    let post: (() => Promise<void>) | undefined;
    let onSuccess: (() => void) | undefined;
    let call: () => Promise<unknown>;

    switch (op) {
      case "reboot-soft":
        call = () => d.reboot(inst, "SOFT", this.#opts());
        break;
      case "reboot-hard":
        call = () => d.reboot(inst, "HARD", this.#opts());
        break;
      case "power-off":
        call = () => d.powerOff(inst, this.#opts({ cleanShutdownTimeoutSec: 0 }));
        break;
      case "power-on":
        call = () => d.powerOn(inst, this.#opts());
        break;
      case "pause":
        call = () => d.pause(inst, this.#opts());
        break;
      case "unpause":
        call = () => d.unpause(inst, this.#opts());
        break;
      case "suspend":
        call = () => d.suspend(inst, this.#opts());
        break;
      case "resume":
        call = () => d.resume(inst, this.#opts());
        break;
      case "rescue":
        call = () => d.rescue(inst, inst.imageMeta, this.#opts());
        break;
      case "unrescue":
        call = () => d.unrescue(inst, this.#opts());
        break;
      case "destroy":
        call = () => d.destroy(inst, this.#opts());
        break;
      case "image-snapshot": {
        const image = await this.target.env.imageService.create({ name: `${inst.name}-explore`, status: "queued" });
        this.#images.push(image.id);
        call = () => d.snapshot(inst, image.id, this.#opts());
        post = async () => {
          const got = await this.target.env.imageService.get(image.id);
          if (got.status !== "active") this.#fail(`after ${label}: the image's status is ${got.status}, expected active`);
        };
        break;
      }
      case "instance-snapshot-create": {
        const powerBefore = configPower([...m.configs][0]!);
        const name = `${inst.name}-s${++this.#snapshotCount}`;
        let created: { id: string; powerState: PowerState; instanceUuid: string } | undefined;
        call = async () => {
          created = await d.createInstanceSnapshot(inst, name, this.#opts());
        };
        onSuccess = () => {
          if (!created) return;
          if (created.instanceUuid !== inst.uuid) {
            this.#fail(`${label}: the snapshot names instance ${created.instanceUuid}, expected ${inst.uuid}`);
          }
          if (created.powerState !== PowerState[powerBefore]) {
            this.#fail(
              `${label}: the snapshot records power state ${powerStateName(created.powerState)}, the instance was ${powerBefore}`,
            );
          }
          m.snapshots.push({
            label: `s${this.#snapshotCount}`,
            id: created.id,
            captured: [...m.configs],
            marker: m.marker,
          });
        };
        break;
      }
      case "instance-snapshot-revert":
      case "instance-snapshot-delete": {
        const snap = m.snapshots[snapshotIndex % Math.max(1, m.snapshots.length)];
        const id = snap?.id ?? randomUUID();
        label = snap
          ? `${op} ${m.label} to ${snap.label} (taken ${showConfigs(snap.captured)})`
          : `${op} ${m.label} to an unknown snapshot`;
        if (op === "instance-snapshot-revert") {
          call = () => d.revertToInstanceSnapshot(inst, id, this.#opts());
          if (snap) {
            expectationsOf = (c) => expectationsFor(c, op, snap.captured);
            onSuccess = () => {
              m.marker = snap.marker;
            };
          }
        } else {
          call = () => d.deleteInstanceSnapshot(inst, id, this.#opts());
          if (snap) onSuccess = () => void m.snapshots.splice(m.snapshots.indexOf(snap), 1);
        }
        if (!snap && declared) expectationsOf = () => UNKNOWN_SNAPSHOT;
        break;
      }
      case "set-admin-password": {
        const password = new Secret(`Vk-explore-${randomUUID().slice(0, 8)}!`);
        this.target.trackSecret?.(password);
        call = async () => {
          try {
            await d.setAdminPassword(inst, password, this.#opts());
          } catch (err) {
            const text = `${inspect(err, { depth: 6 })} ${describeError(err)}`;
            if (new SecretScan([password.reveal()]).found(text)) this.#fail(`${label}: the password appears in the error`);
            throw err;
          }
        };
        const verify = this.target.env.verifyAdminPassword;
        if (verify) {
          post = async () => {
            const user = inst.imageMeta.properties.os_admin_user ?? (inst.osType === "windows" ? "Administrator" : "root");
            const ok = await verify.call(this.target.env, inst, String(user), password);
            if (!ok) this.#fail(`after ${label}: the guest does not accept the new password for ${String(user)}`);
          };
        }
        break;
      }
    }
    if (!declared) {
      expectationsOf = (c) => unsupportedExpectations(c, op);
      post = undefined;
    }
    await this.#step(label, m, call, expectationsOf, post, onSuccess);
  }

  async #migrate(m: ModelInstance): Promise<void> {
    const src = this.#driver(m.host);
    const destHost = this.hosts.find((h) => h !== m.host)!;
    const dst = this.#driver(destHost);
    const inst = m.instance;
    const label = `live-migrate ${m.label} from ${m.host} to ${destHost}`;
    const before = configPower([...m.configs][0]!);
    const movable = [...m.configs].every((c) => c === "RUNNING" || c === "PAUSED");
    const marks = this.#marks();
    let data: MigrateData | undefined;
    let prepared = false;
    let refusal: unknown;
    try {
      const srcInfo = await src.getHostInfo(this.#opts());
      try {
        data = await dst.checkCanLiveMigrateDestination(inst, srcInfo, DEFAULT_MIGRATION_POLICY, this.#opts());
      } catch (err) {
        // Nova's block_migration=auto: hosts without shared storage need a block migration.
        if (!(err instanceof MigrationPreCheckError) || !dst.capabilities.blockMigration) throw err;
        const policy = { ...DEFAULT_MIGRATION_POLICY, block: true };
        data = await dst.checkCanLiveMigrateDestination(inst, srcInfo, policy, this.#opts());
      }
      data = await src.checkCanLiveMigrateSource(inst, data, this.#opts());
      data = await dst.preLiveMigration(inst, data, {}, this.#opts());
      prepared = true;
      await src.liveMigration(inst, data, this.#opts());
      await dst.postLiveMigrationAtDestination(inst, data, {}, this.#opts());
    } catch (err) {
      refusal = err;
      if (prepared && data) {
        try {
          await dst.rollbackLiveMigrationAtDestination(inst, data, {}, this.#opts());
        } catch (rollbackErr) {
          this.#fail(`${label}: rollback at the destination failed: ${describeError(rollbackErr)}`);
        }
      }
    }
    await this.#settle();
    const srcEvents = this.#eventsAbout(m.host, inst.uuid, marks);
    const dstEvents = this.#eventsAbout(destHost, inst.uuid, marks);
    if (refusal !== undefined) {
      const typed = [MigrationPreCheckError, LiveMigrationFailedError, InvalidStateError].some(
        (cls) => refusal instanceof cls,
      );
      if (!typed) this.#fail(`${label}: refused untyped: ${describeError(refusal)}`);
      if (movable) {
        this.#fail(`${label}: a ${before} instance must migrate, but it was refused: ${describeError(refusal)}`);
      }
      if (srcEvents.length + dstEvents.length > 0) {
        this.#fail(`${label}: the refused migration announced ${showSeq(srcEvents)} / ${showSeq(dstEvents)}`);
      }
      this.#noOtherEvents(label, marks, inst.uuid);
      await this.#views(label);
      this.trace.push(`${label} -> refused (${describeError(refusal)})`);
      return;
    }
    // Nova reads a STOPPED from the source of a finished migration as "the guest stopped".
    const srcLeft = srcEvents.filter((e) => !MIGRATION_NOTICES.includes(e));
    if (srcLeft.length > 0) this.#fail(`${label}: the source announced ${showSeq(srcEvents)} for the moved instance`);
    const landed = dstEvents.filter((e) => !MIGRATION_NOTICES.includes(e));
    const allowed: EventSequence[] =
      before === "PAUSED" ? [[], ["PAUSED"], ["STARTED", "PAUSED"]] : [[], ["STARTED"], ["RESUMED"]];
    if (!allowed.some((s) => s.length === landed.length && s.every((t, i) => t === landed[i]))) {
      this.#fail(`${label}: the destination announced ${showSeq(dstEvents)}, expected one of ${allowed.map(showSeq).join(" ")}`);
    }
    this.#noOtherEvents(label, marks, inst.uuid);
    m.host = destHost;
    await this.#views(label);
    this.trace.push(`${label} -> ${before} on ${destHost} ${showSeq(dstEvents)}`);
  }

  // -- judging --

  /** Runs `call`, judges it against the model, then compares every view. */
  async #step(
    label: string,
    m: ModelInstance,
    call: () => Promise<unknown>,
    expectationsOf: (c: Config) => readonly Expectation[],
    post?: () => Promise<void>,
    onSuccess?: () => void,
  ): Promise<void> {
    const d = this.#driver(m.host);
    const marks = this.#marks();
    let obs: Observation;
    try {
      await call();
      obs = await this.#observe(d, m.instance);
    } catch (err) {
      if (err instanceof ConformanceFailure) throw err;
      obs = { kind: "refused", error: err };
    }
    const checkEvents = d.capabilities.lifecycleEvents;
    // Without events, the outcome alone is judged: any acceptable event sequence will do.
    const expected = checkEvents ? expectationsOf : (c: Config) => expectationsOf(c).map(anyEvents);
    const eventsNow = (): EventSequence | null =>
      checkEvents ? withoutTransients(this.#eventsAbout(m.host, m.instance.uuid, marks)) : null;
    const verdictNow = () => {
      const events = eventsNow();
      return { events, verdict: judge(m.configs, expected, obs, events ?? []) };
    };
    let { events, verdict } = verdictNow();
    // Events may lag the reply (a daemon's event stream): wait for a match, then for quiet. An
    // outcome no expectation allows whatever the events is judged at once.
    const outcomeFits = judge(m.configs, (c) => expectationsOf(c).map(anyEvents), obs, []).ok;
    if (checkEvents && outcomeFits) {
      const deadline = Date.now() + this.settings.eventWaitMs;
      while (!verdict.ok && Date.now() < deadline && !this.target.signal?.aborted) {
        await new Promise((r) => setTimeout(r, 5));
        ({ events, verdict } = verdictNow());
      }
      await this.#settle();
      ({ events, verdict } = verdictNow());
    }
    const shown = events === null ? "" : ` ${showSeq(events)}`;
    if (!verdict.ok) {
      this.#fail(
        `${label} (model: ${m.label} ${showConfigs(m.configs)}): expected ${verdict.expected}; got ${describeObservation(obs)}${shown}`,
      );
    }
    if (verdict.next === "gone") {
      m.gone = true;
    } else {
      m.configs = new Set(verdict.next);
    }
    this.#noOtherEvents(label, marks, m.instance.uuid);
    if (obs.kind !== "refused") {
      onSuccess?.();
      await post?.();
    }
    await this.#views(label);
    this.trace.push(`${label} -> ${describeObservation(obs)}${shown}`);
  }

  async #observe(d: ComputeDriver, instance: Instance): Promise<Observation> {
    try {
      const info = await d.getInfo(instance, this.#opts());
      return { kind: "state", power: powerStateName(info.state) };
    } catch (err) {
      if (err instanceof InstanceNotFoundError) return { kind: "gone" };
      this.#fail(`getInfo after the step rejected with ${describeError(err)}`);
    }
  }

  #marks(): Map<string, number> {
    return new Map([...this.#events].map(([h, log]) => [h, log.length]));
  }

  #eventsAbout(host: string, uuid: string, marks: Map<string, number>): LifecycleTransition[] {
    const log = this.#events.get(host) ?? [];
    return log
      .slice(marks.get(host) ?? 0)
      .filter((e) => e.instanceUuid === uuid)
      .map((e) => e.transition);
  }

  /** Events about other tracked instances (or about the target on another host), and wrong host fields. */
  #noOtherEvents(label: string, marks: Map<string, number>, uuid: string | undefined): void {
    const target = uuid === undefined ? undefined : this.instances.find((m) => m.instance.uuid === uuid);
    for (const [host, log] of this.#events) {
      for (const e of log.slice(marks.get(host) ?? 0)) {
        const about = this.instances.find((m) => m.instance.uuid === e.instanceUuid);
        if (!about) continue; // another user of a shared hypervisor
        if (e.host !== host) {
          this.#fail(`${label}: the ${e.transition} event of ${about.label} names host ${e.host}, it came from ${host}`);
        }
        if (!Number.isFinite(e.timestamp)) this.#fail(`${label}: the ${e.transition} event has no valid timestamp`);
        const migrating = label.startsWith("live-migrate");
        if (about !== target) this.#fail(`${label}: an unrelated ${e.transition} event about ${about.label}`);
        if (!migrating && host !== about.host) {
          this.#fail(`${label}: a ${e.transition} event about ${about.label} from ${host}, where it does not run`);
        }
      }
    }
  }

  async #settle(): Promise<void> {
    if (this.settings.eventSettleMs > 0) await new Promise((r) => setTimeout(r, this.settings.eventSettleMs));
    await new Promise((r) => setImmediate(r));
  }

  /** Every view of every host against the model; getInfo narrows the model's configurations. */
  async #views(after: string): Promise<void> {
    const readData = this.target.env.guestControls?.readData;
    for (const [host, d] of this.#drivers) {
      const uuids = new Set(await d.listInstanceUuids(this.#opts()));
      const names = new Set(await d.listInstances(this.#opts()));
      for (const m of this.instances) {
        const here = !m.gone && m.host === host;
        const where = `after ${after}: ${m.label} on ${host}`;
        const say = (yes: boolean) => (yes ? "lists" : "does not list");
        if (uuids.has(m.instance.uuid) !== here) this.#fail(`${where}: listInstanceUuids ${say(!here)} it`);
        if (names.has(m.instance.name) !== here) this.#fail(`${where}: listInstances ${say(!here)} it`);
        const exists = await d.instanceExists(m.instance, this.#opts());
        if (exists !== here) this.#fail(`${where}: instanceExists is ${exists}`);
        if (!here) {
          let info: unknown;
          try {
            info = await d.getInfo(m.instance, this.#opts());
          } catch (err) {
            if (!(err instanceof InstanceNotFoundError)) {
              this.#fail(`${where}: getInfo rejected with ${describeError(err)}, expected InstanceNotFoundError`);
            }
            continue;
          }
          this.#fail(`${where}: getInfo reports ${inspect(info)} for an instance that is not there`);
        }
        const info = await d.getInfo(m.instance, this.#opts());
        const power = powerStateName(info.state);
        const narrowed = [...m.configs].filter((c) => configPower(c) === power);
        if (narrowed.length === 0) this.#fail(`${where}: getInfo says ${power}, the model expects ${showConfigs(m.configs)}`);
        m.configs = new Set(narrowed);
        if (d.capabilities.instanceSnapshots) {
          const listed = (await d.listInstanceSnapshots(m.instance, this.#opts())).map((s) => s.id);
          const expected = m.snapshots.map((s) => s.id);
          if (listed.length !== expected.length || listed.some((id, i) => id !== expected[i])) {
            const names = (ids: readonly string[]) =>
              ids.map((id) => m.snapshots.find((s) => s.id === id)?.label ?? `unknown ${id}`).join(", ");
            this.#fail(`${where}: listInstanceSnapshots gives [${names(listed)}], the model has [${names(expected)}]`);
          }
        }
        if (readData && m.marker !== undefined) {
          const got = await readData.call(this.target.env.guestControls, m.instance, MARKER_KEY);
          if (got !== m.marker) {
            this.#fail(`${where}: the guest's disk holds marker ${String(got)}, the model expects ${m.marker}`);
          }
        }
      }
    }
  }

  #fail(message: string): never {
    throw new ExploreDivergence(message);
  }
}

/** The same expectation with its event sequences left unchecked (a driver without events). */
function anyEvents(e: Expectation): Expectation {
  return e.kind === "refused" ? e : { ...e, events: [[]] };
}
