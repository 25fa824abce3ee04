/**
 * Admin password for the right account, checked by a login in the guest (the environment's
 * means): the image's `os_admin_user`, else Windows' `Administrator`, else `root`, and no other
 * account changed; through the driver and the compute service. Paused and suspended guests:
 * the contract's typed refusal, nothing set, the service's task state cleared.
 */
import { PasswordSetFailedError, PowerState, isSecret, type ImageMeta, type Instance } from "@virtkit/core";
import { check, expectRejects, expectState, expectUnsupported, fail, skipForEnvironment } from "../assertions.js";
import type { ScenarioContext } from "../scenario.js";
import { frozenCopy } from "../frozen-input.js";
import { spawnIn, trackedPassword } from "./depth-support.js";

const OTHER_ACCOUNTS = ["root", "Administrator", "cloud-admin"];

function image(ctx: ScenarioContext, properties: ImageMeta["properties"]): ImageMeta {
  const boot = ctx.env.bootImage;
  return {
    ...(boot ?? { properties: {} }),
    properties: { ...(boot?.properties ?? {}), hw_qemu_guest_agent: true, ...properties },
  };
}

/** The environment's guest login, checked before anything is spawned (nothing to see without it). */
function verifier(ctx: ScenarioContext) {
  const verify = ctx.env.verifyAdminPassword?.bind(ctx.env);
  if (!verify) skipForEnvironment("the environment cannot log into the guest to verify a password");
  return verify;
}

async function setFor(
  ctx: ScenarioContext,
  inst: Instance,
  account: string,
  what: string,
  throughService = false,
): Promise<void> {
  const verify = verifier(ctx);
  const first = trackedPassword(ctx, "acct");
  ctx.step(`driver.setAdminPassword (${what})`);
  await ctx.driver.setAdminPassword(inst, first, ctx.opts());
  ctx.step(`log in as ${account}`);
  if (!(await verify(inst, account, first))) fail(`${what}: the password does not open account ${account}`);
  for (const other of OTHER_ACCOUNTS.filter((a) => a !== account)) {
    if (await verify(inst, other, first)) fail(`${what}: the password was set for ${other} too (only ${account} is the admin account)`);
  }
  await expectState(ctx, inst, PowerState.RUNNING, `setAdminPassword (${what})`);
  // Once through the service too (its choice of account is the driver's): one scenario suffices.
  const service = throughService && ctx.service ? await ctx.service() : undefined;
  if (!service) return;
  const second = trackedPassword(ctx, "svc");
  ctx.step(`service.setAdminPassword (${what})`);
  await service.adopt(inst);
  const returned = await service.setAdminPassword(inst.uuid, second, ctx.opts());
  check(isSecret(returned), "the service did not return the password as a Secret");
  if (!(await verify(inst, account, second))) fail(`${what} through the service: the password does not open account ${account}`);
  check((await service.taskState(inst.uuid)) === null, "the service's task state was not cleared");
}

/** The image names the account (`os_admin_user`): that one, not root. */
export async function checkOsAdminUser(ctx: ScenarioContext): Promise<void> {
  verifier(ctx);
  const inst = await ctx.spawn({ imageMeta: image(ctx, { os_admin_user: "cloud-admin", os_type: "linux" }), osType: "linux" });
  await setFor(ctx, inst, "cloud-admin", "an image with os_admin_user cloud-admin", true);
}

/**
 * `adminPasswordAnyUser` not declared (XAPI's agent sets only root / Administrator): an image naming
 * another account is refused with UnsupportedOperationError, and no account got the password.
 */
export async function refuseOsAdminUser(ctx: ScenarioContext): Promise<void> {
  const inst = await ctx.spawn({ imageMeta: image(ctx, { os_admin_user: "cloud-admin", os_type: "linux" }), osType: "linux" });
  const pw = trackedPassword(ctx, "other");
  const refusal = await expectUnsupported(
    ctx,
    "setAdminPassword (an image with os_admin_user cloud-admin)",
    () => ctx.driver.setAdminPassword(inst, pw, ctx.opts()),
    "adminPasswordAnyUser",
  );
  // What the operator reads: which account could not be served, not only which capability is missing.
  check(
    refusal.message.includes("cloud-admin"),
    `the refusal does not say which account was asked for (os_admin_user cloud-admin): ${JSON.stringify(refusal.message)}`,
  );
  await expectState(ctx, inst, PowerState.RUNNING, "the refused setAdminPassword for os_admin_user cloud-admin");
  const verify = ctx.env.verifyAdminPassword?.bind(ctx.env);
  if (verify) {
    for (const account of OTHER_ACCOUNTS) {
      ctx.step(`log in as ${account}`);
      check(!(await verify(inst, account, pw)), `the refused setAdminPassword for cloud-admin set the password of ${account}`);
    }
  }
  // Only ANOTHER account is refused: an image that names the guest's own admin (root) is served
  // (and, where the environment can log in, the password opens root).
  const named = await ctx.spawn({ imageMeta: image(ctx, { os_admin_user: "root", os_type: "linux" }), osType: "linux" });
  if (verify) {
    await setFor(ctx, named, "root", "an image with os_admin_user root (the guest's own admin)");
  } else {
    ctx.step("driver.setAdminPassword (an image with os_admin_user root, the guest's own admin)");
    await ctx.driver.setAdminPassword(named, trackedPassword(ctx, "root"), ctx.opts());
  }
}

/** The account the missing-account check names: no guest has it (the environment makes sure). */
export const MISSING_ACCOUNT = "virtkit-absent";

/** Why an environment cannot run the missing-account check, or undefined. */
export function needsAccountRemoval(env: ScenarioContext["env"]): string | undefined {
  if (typeof env.guestControls?.removeAccount !== "function") {
    return "the environment cannot make sure the guest lacks an account (no guestControls.removeAccount)";
  }
  return env.verifyAdminPassword ? undefined : "the environment cannot log into the guest to verify a password";
}

/**
 * An image whose `os_admin_user` names an account the guest does not have: the set fails in the
 * guest, so the contract's answer is `PasswordSetFailedError` (thrown, not as a cause) naming the
 * instance with a reason, the instance still RUNNING and no other account given the password.
 */
export async function checkMissingAccount(ctx: ScenarioContext): Promise<void> {
  const verify = verifier(ctx);
  const inst = await ctx.spawn({ imageMeta: image(ctx, { os_admin_user: MISSING_ACCOUNT, os_type: "linux" }), osType: "linux" });
  ctx.step(`make sure the guest has no account ${MISSING_ACCOUNT}`);
  await ctx.env.guestControls!.removeAccount!(inst, MISSING_ACCOUNT);
  const pw = trackedPassword(ctx, "missing");
  const err = await expectRejects(
    ctx,
    ctx.driver.setAdminPassword(inst, pw, ctx.opts()),
    ["VIRTKIT_PASSWORD_SET_FAILED"],
    `setAdminPassword for ${MISSING_ACCOUNT}, an account the guest lacks`,
  );
  if (err instanceof PasswordSetFailedError) {
    check(err.instanceId === inst.uuid, `the PasswordSetFailedError names instance ${err.instanceId}, not ${inst.uuid}`);
    check(err.reason.trim().length > 0, "the PasswordSetFailedError gives no reason");
  }
  await expectState(ctx, inst, PowerState.RUNNING, `the failed setAdminPassword for ${MISSING_ACCOUNT}`);
  for (const account of OTHER_ACCOUNTS) {
    ctx.step(`log in as ${account}`);
    check(!(await verify(inst, account, pw)), `the failed setAdminPassword for ${MISSING_ACCOUNT} set the password of ${account}`);
  }
}

/**
 * A Windows guest without `os_admin_user`: Administrator, not root; also when only the image says
 * windows (an instance without `osType` takes the image's `os_type`, as Nova's does).
 */
export async function checkWindowsAdministrator(ctx: ScenarioContext): Promise<void> {
  verifier(ctx);
  const inst = await ctx.spawn({ imageMeta: image(ctx, { os_type: "windows" }), osType: "windows" });
  await setFor(ctx, inst, "Administrator", "a Windows guest");
  const fromImage = await ctx.spawn({ imageMeta: image(ctx, { os_type: "windows" }), osType: undefined });
  await setFor(ctx, fromImage, "Administrator", "a Windows image, no os_type on the instance");
}

/** A Linux guest without `os_admin_user`: root. */
export async function checkRootByDefault(ctx: ScenarioContext): Promise<void> {
  verifier(ctx);
  const inst = await ctx.spawn({ imageMeta: image(ctx, { os_type: "linux" }), osType: "linux" });
  await setFor(ctx, inst, "root", "a Linux guest");
}

/** Paused and suspended guests: typed refusal, nothing set, state kept, the service's task state cleared. */
export async function checkPasswordPausedSuspended(ctx: ScenarioContext): Promise<void> {
  const caps = ctx.driver.capabilities;
  const states = [...(caps.pause ? (["PAUSED"] as const) : []), ...(caps.suspend ? (["SUSPENDED"] as const) : [])];
  if (states.length === 0) skipForEnvironment("the driver can neither pause nor suspend");
  const service = ctx.service ? await ctx.service() : undefined;
  for (const state of states) {
    const inst = await spawnIn(ctx, "RUNNING");
    if (service) await service.adopt(inst);
    ctx.step(state === "PAUSED" ? "pause" : "suspend");
    if (state === "PAUSED") await ctx.driver.pause(inst, ctx.opts());
    else await ctx.driver.suspend(inst, ctx.opts());
    const pw = trackedPassword(ctx, "held");
    const what = `setAdminPassword of a ${state} instance`;
    ctx.step(`driver.${what}`);
    await expectRejects(
      ctx,
      ctx.driver.setAdminPassword(inst, pw, ctx.opts()),
      // The contract's refusals; "not supported" and "no agent" too, where this configuration cannot set any.
      [
        "VIRTKIT_INSTANCE_NOT_RUNNING",
        "VIRTKIT_PASSWORD_SET_FAILED",
        "VIRTKIT_ADMIN_PASSWORD_NOT_SUPPORTED",
        "VIRTKIT_GUEST_AGENT_NOT_ENABLED",
      ],
      `driver.${what}`,
    );
    await expectState(ctx, inst, PowerState[state], `the refused ${what}`);
    if (ctx.env.verifyAdminPassword) {
      check(!(await ctx.env.verifyAdminPassword(inst, "root", pw)), `the refused ${what} took effect in the guest`);
    }
    if (!service) continue;
    // The service's record still says ACTIVE (adopted before the pause): its own state check
    // passes, so the refusal must come from the driver's answer and be mapped to PasswordSetFailed.
    ctx.step(`service.${what}`);
    await expectRejects(ctx, service.setAdminPassword(inst.uuid, pw, ctx.opts()), ["VIRTKIT_PASSWORD_SET_FAILED"], `service.${what}`);
    check((await service.taskState(inst.uuid)) === null, `the service's task state was not cleared after the refused ${what}`);
    await expectState(ctx, inst, PowerState[state], `the refused service.${what}`);
  }
}

/**
 * Spawn's `adminPassword` is injected at first boot where the driver can (a SHOULD), for the
 * account of the image the request names (`request.imageMeta`, which overrides the instance's).
 */
export async function checkSpawnAdminPassword(ctx: ScenarioContext): Promise<void> {
  const verify = verifier(ctx);
  // A driver that can set only the guest's admin account (no adminPasswordAnyUser) is held to the
  // same rule the other way round: the request's image names no os_admin_user, the instance's does.
  if (!ctx.driver.capabilities.adminPasswordAnyUser) return spawnPasswordForRoot(ctx, verify);
  const inst = ctx.newInstance({ imageMeta: image(ctx, { os_type: "linux" }), osType: "linux" });
  const pw = trackedPassword(ctx, "boot");
  ctx.step("spawn with adminPassword and a request imageMeta naming os_admin_user cloud-admin");
  await ctx.driver.spawn(
    { instance: inst, imageMeta: image(ctx, { os_type: "linux", os_admin_user: "cloud-admin" }), adminPassword: pw },
    ctx.opts(),
  );
  await expectState(ctx, inst, PowerState.RUNNING, "spawn with an admin password");
  ctx.step("log in as cloud-admin");
  if (!(await verify(inst, "cloud-admin", pw))) {
    fail("the password given to spawn does not open cloud-admin, the os_admin_user of the request's image");
  }
  check(!(await verify(inst, "root", pw)), "the password given to spawn opens root too (only the admin account gets it)");
}

async function spawnPasswordForRoot(
  ctx: ScenarioContext,
  verify: NonNullable<ScenarioContext["env"]["verifyAdminPassword"]>,
): Promise<void> {
  const inst = ctx.newInstance({ imageMeta: image(ctx, { os_type: "linux", os_admin_user: "cloud-admin" }), osType: "linux" });
  const pw = trackedPassword(ctx, "boot");
  ctx.step("spawn with adminPassword and a request imageMeta without os_admin_user (the instance's names cloud-admin)");
  await ctx.driver.spawn(frozenCopy({ instance: inst, imageMeta: image(ctx, { os_type: "linux" }), adminPassword: pw }), ctx.opts());
  await expectState(ctx, inst, PowerState.RUNNING, "spawn with an admin password");
  ctx.step("log in as root");
  if (!(await verify(inst, "root", pw))) {
    fail("the password given to spawn does not open root, the admin account of the request's image");
  }
  check(!(await verify(inst, "cloud-admin", pw)), "the password given to spawn opens cloud-admin (the instance's image, which the request overrides)");
}
