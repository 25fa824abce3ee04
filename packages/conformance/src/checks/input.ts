/**
 * Bad input (the project's rule: "bad input gets a clear typed error and loses nothing"): every
 * malformed call rejects with `InvalidInputError` itself (not a cause), naming the argument at
 * fault in `field`, and changes nothing: no instance made, the state, rescue mode, events and the
 * guest's boots as before. And the other side: every `options` argument may be left out.
 */
import { InvalidInputError, PowerState, Secret, type ImageMeta, type Instance } from "@virtkit/core";
import { check, checkEqual, expectGone, expectRejects, expectState, fail } from "../assertions.js";
import type { ScenarioContext } from "../scenario.js";
import { DriverEvents, hasControl, settle } from "./depth-support.js";

/** Calls the contract with what its types forbid (a driver sees such input from JavaScript callers). */
type Loose = never;

/** A malformed call must reject with InvalidInputError itself whose `field` names `hint`. */
async function refused(
  ctx: ScenarioContext,
  what: string,
  hint: string,
  call: () => Promise<unknown>,
  /** A value too big to echo: the refusal's message must not carry it back. */
  huge?: string,
): Promise<void> {
  ctx.step(what);
  const err = await expectRejects(ctx, call(), [InvalidInputError.CODE], what);
  const { field, reason } = err as InvalidInputError;
  if (huge !== undefined) {
    check(!(err as Error).message.includes(huge.slice(0, 1024)), `${what}: the refusal's message echoes the ${huge.length}-character value`);
  }
  check(
    typeof field === "string" && field.toLowerCase().includes(hint.toLowerCase()),
    `${what}: InvalidInputError.field is ${JSON.stringify(field)}, which does not name the argument at fault (${hint})`,
  );
  check(typeof reason === "string" && reason.trim().length > 0, `${what}: InvalidInputError gives no reason (what is wrong with ${hint})`);
}

/** A password handed over as plain text: tracked, so it may appear in no error or log. */
function plainPassword(ctx: ScenarioContext): string {
  const plain = `Vk-plain-${Math.random().toString(36).slice(2, 10)}!`;
  ctx.trackSecret(new Secret(plain));
  return plain;
}

/** Every malformed call is refused typed, names its argument, and changes nothing. */
export async function checkBadArguments(ctx: ScenarioContext): Promise<void> {
  const d = ctx.driver;
  const inst = await ctx.spawn();
  const events = new DriverEvents(d);
  const boots = hasControl(ctx, "bootCount") ? await ctx.env.guestControls!.bootCount!(inst) : undefined;
  try {
    // spawn: nothing may be created.
    await refused(ctx, "spawn(null)", "request", () => d.spawn(null as Loose, ctx.opts()));
    await refused(ctx, "spawn(42)", "request", () => d.spawn(42 as Loose, ctx.opts()));
    await refused(ctx, "spawn with instance null", "instance", () => d.spawn({ instance: null as Loose }, ctx.opts()));
    const fresh = ctx.newInstance();
    await refused(ctx, "spawn with imageMeta 42", "imageMeta", () =>
      d.spawn({ instance: fresh, imageMeta: 42 as Loose }, ctx.opts()),
    );
    await expectGone(ctx, fresh, "the refused spawn with a malformed imageMeta");
    await refused(ctx, "spawn with adminPassword as plain text", "adminPassword", () =>
      d.spawn({ instance: fresh, adminPassword: plainPassword(ctx) as Loose }, ctx.opts()),
    );
    await expectGone(ctx, fresh, "the refused spawn with a plain-text adminPassword");

    // reboot and power off: the instance stays RUNNING, the guest is not touched.
    // A type left out is not a HARD reboot by default: the contract has no default type.
    for (const [what, type] of [
      ['reboot with type "WARM"', "WARM"],
      // The contract's types are SOFT and HARD, exactly: a lower-case one is another type.
      ['reboot with type "soft"', "soft"],
      ["reboot with no type", undefined],
    ] as const) {
      await refused(ctx, what, "type", () => d.reboot(inst, type as Loose, ctx.opts()));
      await expectState(ctx, inst, PowerState.RUNNING, `the refused ${what}`);
    }
    for (const [what, hint, opts] of [
      ["power off with cleanShutdownTimeoutSec -1", "cleanShutdownTimeoutSec", { cleanShutdownTimeoutSec: -1 }],
      ["power off with cleanShutdownTimeoutSec NaN", "cleanShutdownTimeoutSec", { cleanShutdownTimeoutSec: Number.NaN }],
      ["power off with cleanShutdownTimeoutSec Infinity", "cleanShutdownTimeoutSec", { cleanShutdownTimeoutSec: Number.POSITIVE_INFINITY }],
      ['power off with cleanShutdownTimeoutSec "5"', "cleanShutdownTimeoutSec", { cleanShutdownTimeoutSec: "5" as Loose }],
      ["power off with retryIntervalSec -1", "retryIntervalSec", { cleanShutdownTimeoutSec: 1, retryIntervalSec: -1 }],
    ] as const) {
      await refused(ctx, what, hint, () => d.powerOff(inst, ctx.opts(opts)));
      await expectState(ctx, inst, PowerState.RUNNING, `the refused ${what}`);
    }

    // The options every call takes: a deadline that is no positive number of ms would mean no
    // deadline at all (NaN never fires), a signal that is no AbortSignal could never abort.
    for (const [what, hint, opts] of [
      ["timeoutMs NaN", "timeoutMs", { timeoutMs: Number.NaN }],
      ["timeoutMs -1", "timeoutMs", { timeoutMs: -1 }],
      ["timeoutMs 0", "timeoutMs", { timeoutMs: 0 }],
      ['timeoutMs "5"', "timeoutMs", { timeoutMs: "5" as Loose }],
      ['signal "nope"', "signal", { signal: "nope" as Loose }],
    ] as const) {
      await refused(ctx, `getInfo with ${what}`, hint, () => d.getInfo(inst, opts));
      await refused(ctx, `power off with ${what}`, hint, () => d.powerOff(inst, { cleanShutdownTimeoutSec: 0, ...opts }));
      await expectState(ctx, inst, PowerState.RUNNING, `the refused power off with ${what}`);
    }

    // rescue: not rescued afterwards (unrescue is refused as for any instance not in rescue).
    if (d.capabilities.rescue) {
      await refused(ctx, "rescue with rescueImageMeta null", "imageMeta", () => d.rescue(inst, null as Loose, ctx.opts()));
      await refused(ctx, "rescue with rescuePassword as plain text", "rescuePassword", () =>
        d.rescue(inst, inst.imageMeta, ctx.opts({ rescuePassword: plainPassword(ctx) as Loose })),
      );
      await expectState(ctx, inst, PowerState.RUNNING, "the refused rescues");
      ctx.step("unrescue (probe: the refused rescues left the instance out of rescue)");
      await expectRejects(ctx, d.unrescue(inst, ctx.opts()), ["VIRTKIT_INVALID_STATE"], "unrescue after the refused rescues");
    }

    // Snapshots and passwords: nothing made, nothing set.
    if (d.capabilities.imageSnapshot) {
      await refused(ctx, 'image snapshot into imageId ""', "imageId", () => d.snapshot(inst, "", ctx.opts()));
      await expectState(ctx, inst, PowerState.RUNNING, "the refused image snapshot");
    }
    if (d.capabilities.instanceSnapshots) {
      await refused(ctx, 'instance snapshot named ""', "name", () => d.createInstanceSnapshot(inst, "", ctx.opts()));
      await refused(ctx, "instance snapshot named 42", "name", () => d.createInstanceSnapshot(inst, 42 as Loose, ctx.opts()));
      await refused(ctx, "instance snapshot with description 42", "description", () =>
        d.createInstanceSnapshot(inst, `${ctx.prefix}-bad`, ctx.opts({ description: 42 as Loose })),
      );
      // The contract's bounds (core's validateInstanceSnapshotInput): name 1-255, description up to
      // 1,024, no control characters in either.
      await refused(ctx, "instance snapshot named with 256 characters", "name", () =>
        d.createInstanceSnapshot(inst, "n".repeat(256), ctx.opts()),
      );
      await refused(ctx, "instance snapshot named with a newline", "name", () =>
        d.createInstanceSnapshot(inst, `${ctx.prefix}-a\nb`, ctx.opts()),
      );
      const hugeText = "d".repeat(1024 * 1024);
      await refused(
        ctx,
        "instance snapshot with a 1 MiB description",
        "description",
        () => d.createInstanceSnapshot(inst, `${ctx.prefix}-bad`, ctx.opts({ description: hugeText })),
        hugeText,
      );
      // Just past the bound: a check written as > 1025 or on bytes passes the 1 MiB one.
      await refused(ctx, "instance snapshot with a 1,025-character description", "description", () =>
        d.createInstanceSnapshot(inst, `${ctx.prefix}-bad`, ctx.opts({ description: "d".repeat(1025) })),
      );
      await refused(ctx, "instance snapshot with a control character in its description", "description", () =>
        d.createInstanceSnapshot(inst, `${ctx.prefix}-bad`, ctx.opts({ description: "bell\u0007" })),
      );
      await refused(ctx, 'revert to snapshot id ""', "snapshotId", () => d.revertToInstanceSnapshot(inst, "", ctx.opts()));
      await refused(ctx, "revert to snapshot id 42", "snapshotId", () => d.revertToInstanceSnapshot(inst, 42 as Loose, ctx.opts()));
      await refused(ctx, 'delete snapshot id ""', "snapshotId", () => d.deleteInstanceSnapshot(inst, "", ctx.opts()));
      const hugeId = "i".repeat(1024 * 1024);
      await refused(ctx, "delete a 1 MiB snapshot id", "snapshotId", () => d.deleteInstanceSnapshot(inst, hugeId, ctx.opts()), hugeId);
      // Just past the bounds the contract names (255 characters, no control characters): refused as
      // input, not looked up and answered SnapshotNotFoundError.
      await refused(ctx, "revert to a 256-character snapshot id", "snapshotId", () =>
        d.revertToInstanceSnapshot(inst, "i".repeat(256), ctx.opts()),
      );
      await refused(ctx, "delete a snapshot id with a line break", "snapshotId", () =>
        d.deleteInstanceSnapshot(inst, "a\nb", ctx.opts()),
      );
      await refused(ctx, "revert to a snapshot id with a control character", "snapshotId", () =>
        d.revertToInstanceSnapshot(inst, "snap\u0000", ctx.opts()),
      );
      ctx.step("listInstanceSnapshots (the refused calls made none)");
      const made = await d.listInstanceSnapshots(inst, ctx.opts());
      if (made.length > 0) fail(`the refused instance snapshot calls left ${made.length} snapshot(s)`);
      await expectState(ctx, inst, PowerState.RUNNING, "the refused instance snapshot calls");
    }
    if (d.capabilities.setAdminPassword) {
      await refused(ctx, "setAdminPassword with the password as plain text", "password", () =>
        d.setAdminPassword(inst, plainPassword(ctx) as Loose, ctx.opts()),
      );
      await refused(ctx, "setAdminPassword with an empty password", "password", () =>
        d.setAdminPassword(inst, new Secret(""), ctx.opts()),
      );
      await expectState(ctx, inst, PowerState.RUNNING, "the refused setAdminPassword calls");
    }

    await settle(5);
    const seen = events.of(inst.uuid).map((e) => e.transition);
    if (seen.length > 0) fail(`the refused calls announced events for the instance: ${seen.join(", ")}`);
    if (boots !== undefined) {
      const now = await ctx.env.guestControls!.bootCount!(inst);
      if (now !== boots) fail(`the refused calls rebooted the guest (${boots} boot(s) before, ${now} after)`);
    }

    // A stopped instance: malformed input is still InvalidInputError, never InvalidStateError
    // (starting the instance would not make the call right).
    ctx.step("power off (hard), to send malformed calls to a stopped instance");
    await d.powerOff(inst, ctx.opts({ cleanShutdownTimeoutSec: 0 }));
    await expectState(ctx, inst, PowerState.SHUTDOWN, "power off");
    await refused(ctx, 'reboot of a stopped instance with type "WARM"', "type", () => d.reboot(inst, "WARM" as Loose, ctx.opts()));
    if (d.capabilities.rescue) {
      await refused(ctx, "rescue of a stopped instance with rescueImageMeta 42", "imageMeta", () => d.rescue(inst, 42 as Loose, ctx.opts()));
    }
    if (d.capabilities.instanceSnapshots) {
      await refused(ctx, "instance snapshot of a stopped instance named 42", "name", () =>
        d.createInstanceSnapshot(inst, 42 as Loose, ctx.opts()),
      );
    }
    if (d.capabilities.setAdminPassword) {
      await refused(ctx, "setAdminPassword of a stopped instance with the password as plain text", "password", () =>
        d.setAdminPassword(inst, plainPassword(ctx) as Loose, ctx.opts()),
      );
    }
    await expectState(ctx, inst, PowerState.SHUTDOWN, "the refused calls to the stopped instance");
  } finally {
    events.stop();
  }
}

/** The image for a rescue: the instance's own, as the other rescue checks use. */
function rescueImage(inst: Instance): ImageMeta {
  return inst.imageMeta;
}

/** Every `options` argument is optional: each call works without it. */
export async function checkOptionsOmitted(ctx: ScenarioContext): Promise<void> {
  const d = ctx.driver;
  const caps = d.capabilities;
  const inst = ctx.newInstance();
  ctx.step("spawn without options");
  await d.spawn({ instance: inst });
  await expectState(ctx, inst, PowerState.RUNNING, "spawn without options");
  const steps: [string, () => Promise<unknown>, PowerState][] = [
    ["getInfo without options", () => d.getInfo(inst), PowerState.RUNNING],
    ["reboot HARD without options", () => d.reboot(inst, "HARD"), PowerState.RUNNING],
    ...(caps.pause
      ? ([
          ["pause without options", () => d.pause(inst), PowerState.PAUSED],
          ["unpause without options", () => d.unpause(inst), PowerState.RUNNING],
        ] as [string, () => Promise<unknown>, PowerState][])
      : []),
    ...(caps.suspend
      ? ([
          ["suspend without options", () => d.suspend(inst), PowerState.SUSPENDED],
          ["resume without options", () => d.resume(inst), PowerState.RUNNING],
        ] as [string, () => Promise<unknown>, PowerState][])
      : []),
    ...(caps.rescue
      ? ([
          ["rescue without options", () => d.rescue(inst, rescueImage(inst)), PowerState.RUNNING],
          ["unrescue without options", () => d.unrescue(inst), PowerState.RUNNING],
        ] as [string, () => Promise<unknown>, PowerState][])
      : []),
    ["power off without options", () => d.powerOff(inst), PowerState.SHUTDOWN],
    ["power on without options", () => d.powerOn(inst), PowerState.RUNNING],
  ];
  for (const [what, call, state] of steps) {
    ctx.step(what);
    await call();
    await expectState(ctx, inst, state, what);
  }
  await snapshotsWithoutOptions(ctx, inst);
  ctx.step("destroy without options");
  await d.destroy(inst);
  await expectGone(ctx, inst, "destroy without options");
}

/** The snapshot calls without options (RUNNING before and after): the description and task-state callback are optional too. */
async function snapshotsWithoutOptions(ctx: ScenarioContext, inst: Instance): Promise<void> {
  const d = ctx.driver;
  if (d.capabilities.instanceSnapshots) {
    ctx.step("createInstanceSnapshot without options");
    const snap = await d.createInstanceSnapshot(inst, `${ctx.prefix}-no-options`);
    ctx.step("listInstanceSnapshots without options");
    const listed = await d.listInstanceSnapshots(inst);
    check(listed.some((s) => s.id === snap.id), "listInstanceSnapshots without options does not list the new snapshot");
    ctx.step("revertToInstanceSnapshot without options");
    await d.revertToInstanceSnapshot(inst, snap.id);
    await expectState(ctx, inst, PowerState.RUNNING, "revertToInstanceSnapshot without options");
    ctx.step("deleteInstanceSnapshot without options");
    await d.deleteInstanceSnapshot(inst, snap.id);
    check(!(await d.listInstanceSnapshots(inst)).some((s) => s.id === snap.id), "deleteInstanceSnapshot without options left the snapshot listed");
  }
  if (d.capabilities.imageSnapshot) {
    const image = await ctx.env.imageService.create({ name: `${ctx.prefix}-no-options`, status: "queued" });
    ctx.trackImage(image.id);
    ctx.step("snapshot without options");
    await d.snapshot(inst, image.id);
    await expectState(ctx, inst, PowerState.RUNNING, "snapshot without options");
    checkEqual((await ctx.env.imageService.get(image.id)).status, "active", "the image after a snapshot without options");
  }
}

/** 30 days: beyond the 2^31 - 1 ms (24.8 days) a Node timer holds. */
const THIRTY_DAYS_MS = 30 * 24 * 3600 * 1000;

/**
 * `timeoutMs: Infinity` is no deadline, and one longer than a Node timer holds is a long deadline,
 * not an instant one (core's OperationOptions): a driver that hands either to setTimeout as it is
 * gets its timer fired after 1 ms and times the call out at once.
 */
export async function checkUnboundedDeadlines(ctx: ScenarioContext): Promise<void> {
  const d = ctx.driver;
  for (const [label, timeoutMs] of [
    ["Infinity", Number.POSITIVE_INFINITY],
    ["30 days", THIRTY_DAYS_MS],
  ] as const) {
    const inst = ctx.newInstance();
    const opts = ctx.opts({ timeoutMs });
    ctx.step(`spawn with timeoutMs ${label}`);
    await d.spawn({ instance: inst }, opts);
    await expectState(ctx, inst, PowerState.RUNNING, `spawn with timeoutMs ${label}`);
    ctx.step(`getInfo, listInstances, getHostInfo with timeoutMs ${label}`);
    await d.getInfo(inst, opts);
    await d.listInstances(opts);
    await d.getHostInfo(opts);
    ctx.step(`reboot HARD and power off with timeoutMs ${label}`);
    await d.reboot(inst, "HARD", opts);
    await d.powerOff(inst, ctx.opts({ timeoutMs, cleanShutdownTimeoutSec: 0 }));
    await expectState(ctx, inst, PowerState.SHUTDOWN, `power off with timeoutMs ${label}`);
    ctx.step(`power on and destroy with timeoutMs ${label}`);
    await d.powerOn(inst, opts);
    await d.destroy(inst, opts);
    await expectGone(ctx, inst, `destroy with timeoutMs ${label}`);
  }
}
