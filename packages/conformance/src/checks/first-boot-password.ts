/**
 * spawn's `adminPassword` at first boot (a SHOULD, as `admin-password.at-spawn`): the account is
 * chosen as for `setAdminPassword`, with the instance's os_type inherited from its image when the
 * instance names none (as Nova's instance does); two spawns of one uuid at once with a password
 * leave exactly one instance, the other refused with InstanceExistsError.
 */
import {
  AdminPasswordNotSupportedError,
  GuestAgentNotEnabledError,
  InstanceExistsError,
  OperationTimeoutError,
  PowerState,
  UnsupportedOperationError,
  type ImageMeta,
  type Instance,
} from "@virtkit/core";
import { check, checkEqual, describeError, expectGone, expectRejects, expectState, fail, skipForEnvironment, thrownWithCode } from "../assertions.js";
import type { ScenarioContext } from "../scenario.js";
import { SecretScan } from "../secret-scan.js";
import { frozenCopy } from "../frozen-input.js";
import { settle, trackedPassword } from "./depth-support.js";

function image(ctx: ScenarioContext, properties: ImageMeta["properties"]): ImageMeta {
  const boot = ctx.env.bootImage;
  return {
    ...(boot ?? { properties: {} }),
    properties: { ...(boot?.properties ?? {}), hw_qemu_guest_agent: true, ...properties },
  };
}

/** An instance that names no os_type of its own. */
function withoutOsType(ctx: ScenarioContext, imageMeta: ImageMeta): Instance {
  return ctx.newInstance({ imageMeta, osType: undefined });
}

export async function checkFirstBootPassword(ctx: ScenarioContext): Promise<void> {
  const verify = ctx.env.verifyAdminPassword?.bind(ctx.env);
  if (!verify) skipForEnvironment("the environment cannot log into the guest to verify a password");
  const d = ctx.driver;

  const win = withoutOsType(ctx, image(ctx, { os_type: "windows" }));
  const pw = trackedPassword(ctx, "firstboot");
  ctx.step("spawn with adminPassword: no os_type on the instance, the image says windows");
  await d.spawn(frozenCopy({ instance: win, adminPassword: pw }), ctx.opts());
  await expectState(ctx, win, PowerState.RUNNING, "spawn with an admin password");
  ctx.step("log in as Administrator");
  if (!(await verify(win, "Administrator", pw))) {
    fail("the password given to spawn does not open Administrator although the image says os_type windows");
  }
  check(!(await verify(win, "root", pw)), "the password given to spawn of a Windows guest opens root (only Administrator gets it)");
  // The console goes to whoever may read it (Nova's console log API), as for setAdminPassword.
  if (d.capabilities.consoleOutput) {
    ctx.step("the console output of the instance spawned with a password");
    const out = await d.getConsoleOutput(win, ctx.opts());
    if (new SecretScan([pw.reveal()]).found(out)) fail("the password given to spawn appears in the instance's console output");
  }

  // Injecting takes work (a hash, an agent call): it runs under the call's deadline like the rest.
  const late = ctx.newInstance({ imageMeta: image(ctx, { os_type: "linux" }) });
  ctx.step("spawn with adminPassword and a 1 ms deadline");
  await expectRejects(
    ctx,
    d.spawn(frozenCopy({ instance: late, adminPassword: trackedPassword(ctx, "late") }), { signal: ctx.signal, timeoutMs: 1 }),
    [OperationTimeoutError.CODE],
    "spawn with an admin password past its 1 ms deadline",
  );
  await settle(30);
  await expectGone(ctx, late, "the spawn with an admin password that missed its deadline");

  const twin = ctx.newInstance({ imageMeta: image(ctx, { os_type: "linux" }) });
  const pws = [trackedPassword(ctx, "race-a"), trackedPassword(ctx, "race-b")];
  ctx.step("two spawns of one uuid at once, each with a password");
  const results = await Promise.allSettled(pws.map((p) => d.spawn(frozenCopy({ instance: twin, adminPassword: p }), ctx.opts())));
  const ok = results.filter((r) => r.status === "fulfilled").length;
  for (const r of results) if (r.status === "rejected") ctx.recordError(r.reason);
  checkEqual(ok, 1, "spawns of one uuid at once that succeeded");
  const refusal = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (refusal && !thrownWithCode(refusal.reason, [InstanceExistsError.CODE])) {
    fail(`the second spawn of one uuid: expected ${InstanceExistsError.CODE}, got ${describeError(refusal.reason)}`);
  }
  await expectState(ctx, twin, PowerState.RUNNING, "two spawns of one uuid");
  const uuids = await d.listInstanceUuids(ctx.opts());
  checkEqual(uuids.filter((u) => u === twin.uuid).length, 1, "entries of the uuid in listInstanceUuids");
  const winner = results.findIndex((r) => r.status === "fulfilled");
  ctx.step("log in as root with the winning spawn's password");
  if (!(await verify(twin, "root", pws[winner]!))) fail("the password of the spawn that succeeded does not open root");
}

/**
 * spawn's adminPassword for an image without a guest agent (the contract's
 * `SpawnRequest.adminPassword`): set at first boot by other means, so it opens the admin account, or
 * refused typed before anything is made; never taken and dropped.
 */
export async function checkSpawnPasswordWithoutAgent(ctx: ScenarioContext): Promise<void> {
  const imageMeta = image(ctx, { os_type: "linux", hw_qemu_guest_agent: false });
  // root is the account: no os_admin_user the environment's boot image may name.
  const { os_admin_user: _named, ...properties } = imageMeta.properties;
  const inst = ctx.newInstance({ imageMeta: { ...imageMeta, properties }, osType: "linux" });
  const pw = trackedPassword(ctx, "noagent");
  const what = "spawn with adminPassword, the image without a guest agent";
  ctx.step(what);
  try {
    await ctx.driver.spawn(frozenCopy({ instance: inst, adminPassword: pw }), ctx.opts());
  } catch (err) {
    ctx.recordError(err);
    const codes = [GuestAgentNotEnabledError.CODE, AdminPasswordNotSupportedError.CODE, UnsupportedOperationError.CODE] as const;
    if (!thrownWithCode(err, codes)) fail(`${what}: expected success or one of ${codes.join(", ")}, got ${describeError(err)}`);
    await settle(30);
    await expectGone(ctx, inst, `the refused ${what}`);
    return;
  }
  await expectState(ctx, inst, PowerState.RUNNING, what);
  const verify = ctx.env.verifyAdminPassword?.bind(ctx.env);
  if (!verify) skipForEnvironment("the spawn took the password; the environment cannot log into the guest to check it was set");
  ctx.step("log in as root");
  if (!(await verify(inst, "root", pw))) {
    fail(`${what} succeeded but the password does not open root: taken and dropped (refuse it typed instead, e.g. GuestAgentNotEnabledError)`);
  }
}
