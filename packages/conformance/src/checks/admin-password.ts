/**
 * Admin password checks, through the compute service and through the driver. The effect is
 * verified by the ENVIRONMENT (a guest login), never by asking the driver; every password is
 * registered with `trackSecret`, so `makeTest` fails the scenario if it shows up in an error, a
 * log line or the report.
 */
import { PowerState, Secret, isSecret, type Instance } from "@virtkit/core";
import { check, expectRejects, expectState, expectUnsupported, fail, skipForEnvironment } from "../assertions.js";
import type { ScenarioContext } from "../scenario.js";
import { SecretScan } from "../secret-scan.js";

/** A fresh, recognisable password (tracked as a secret). */
function newPassword(ctx: ScenarioContext): Secret {
  const s = new Secret(`Vk-${Math.random().toString(36).slice(2, 10)}-${Date.now().toString(36)}!`);
  ctx.trackSecret(s);
  return s;
}

/** The account setAdminPassword is for: the image's os_admin_user, else Administrator or root by os_type. */
export function adminUser(inst: Instance): string {
  const fromImage = inst.imageMeta.properties.os_admin_user;
  if (typeof fromImage === "string" && fromImage.length > 0) return fromImage;
  return (inst.osType ?? inst.imageMeta.properties.os_type) === "windows" ? "Administrator" : "root";
}

async function verify(ctx: ScenarioContext, inst: Instance, password: Secret, what: string): Promise<void> {
  const verifyFn = ctx.env.verifyAdminPassword;
  if (!verifyFn) skipForEnvironment("the environment cannot log into the guest to verify a password");
  ctx.step(`verify in the guest (${what})`);
  const ok = await verifyFn.call(ctx.env, inst, adminUser(inst), password);
  if (!ok) fail(`the guest does not accept the password set by ${what}`);
  // The console is handed to whoever may read it (Nova's console log API): the password set
  // through the agent, or any other channel, must not show there.
  if (ctx.driver.capabilities.consoleOutput) {
    ctx.step(`the console output after ${what}`);
    const out = await ctx.driver.getConsoleOutput(inst, ctx.opts());
    if (new SecretScan([password.reveal()]).found(out)) fail(`the password set by ${what} appears in the instance's console output`);
  }
}

/** Through the driver and the service, the password takes effect in the guest. */
export async function checkSetPassword(ctx: ScenarioContext): Promise<void> {
  const inst = await ctx.spawn();
  const first = newPassword(ctx);
  ctx.step("driver.setAdminPassword");
  await ctx.driver.setAdminPassword(inst, first, ctx.opts());
  await verify(ctx, inst, first, "driver.setAdminPassword");
  await expectState(ctx, inst, PowerState.RUNNING, "setAdminPassword");
  const service = ctx.service ? await ctx.service() : undefined;
  if (!service) return;
  const second = newPassword(ctx);
  ctx.step("service.setAdminPassword");
  await service.adopt(inst);
  const returned = await service.setAdminPassword(inst.uuid, second, ctx.opts());
  check(isSecret(returned), "the service did not return the password as a Secret");
  await verify(ctx, inst, second, "service.setAdminPassword");
  const verifyFn = ctx.env.verifyAdminPassword!;
  check(!(await verifyFn.call(ctx.env, inst, adminUser(inst), first)), "the old password still works after the change");
  check((await service.taskState(inst.uuid)) === null, "the task state was not cleared after a successful change");
}

/**
 * A password is any text: one with the characters guest tooling trips over (chpasswd's ':' between
 * user and password, a space, quotes, a backslash, '$', '#', a non-ASCII letter) takes effect whole,
 * and a password cut at one of them does not open the account.
 */
export async function checkPasswordCharacters(ctx: ScenarioContext): Promise<void> {
  if (!ctx.env.verifyAdminPassword)
    skipForEnvironment("the environment cannot log into the guest to verify a password");
  const inst = await ctx.spawn();
  const head = `Vk${Math.random().toString(36).slice(2, 8)}`;
  const password = new Secret(`${head}:x y'z"\\q$1#é!`);
  ctx.trackSecret(password);
  ctx.step("driver.setAdminPassword with ':', a space, quotes, a backslash, '$', '#' and 'é'");
  await ctx.driver.setAdminPassword(inst, password, ctx.opts());
  await verify(ctx, inst, password, "driver.setAdminPassword (a password of special characters)");
  const cut = new Secret(head);
  ctx.trackSecret(cut);
  check(
    !(await ctx.env.verifyAdminPassword.call(ctx.env, inst, adminUser(inst), cut)),
    "the password up to its first ':' opens the account: the password was cut there",
  );
  await expectState(ctx, inst, PowerState.RUNNING, "setAdminPassword");
}

/** Without a password, the service generates one, sets it and returns it. */
export async function checkGeneratedPassword(ctx: ScenarioContext): Promise<void> {
  const service = ctx.service ? await ctx.service() : undefined;
  if (!service) skipForEnvironment("the run has no compute service to generate a password");
  const inst = await ctx.spawn();
  await service.adopt(inst);
  ctx.step("service.setAdminPassword without a password");
  const generated = await service.setAdminPassword(inst.uuid, undefined, ctx.opts());
  if (!isSecret(generated)) fail("the service did not return the generated password as a Secret");
  ctx.trackSecret(generated);
  check(generated.length >= 8, `the generated password is too short (${generated.length} characters)`);
  await verify(ctx, inst, generated, "the generated password");
  check((await service.taskState(inst.uuid)) === null, "the task state was not cleared");
}

/**
 * A stopped instance: the password-set-failed error (driver: or not-running), task state cleared.
 * Its guest agent hung before the power off where the environment can do that: the refusal must
 * still say the instance is not running (nothing runs in a stopped guest to answer), not blame the
 * agent, which would send the caller after a fault that is not there.
 */
export async function checkPasswordNotRunning(ctx: ScenarioContext): Promise<void> {
  const inst = await ctx.spawn();
  if (ctx.env.agentControls) {
    ctx.step("make the guest agent hang, while the instance runs");
    await ctx.env.agentControls.setAgent(inst, "unresponsive");
  }
  ctx.step("power off");
  await ctx.driver.powerOff(inst, ctx.opts({ cleanShutdownTimeoutSec: 0 }));
  await expectState(ctx, inst, PowerState.SHUTDOWN, "power off");
  const pw = newPassword(ctx);
  ctx.step("driver.setAdminPassword on a stopped instance");
  await expectRejects(
    ctx,
    ctx.driver.setAdminPassword(inst, pw, ctx.opts()),
    ["VIRTKIT_PASSWORD_SET_FAILED", "VIRTKIT_INSTANCE_NOT_RUNNING", "VIRTKIT_INVALID_STATE"],
    "driver.setAdminPassword on a stopped instance",
  );
  await expectState(ctx, inst, PowerState.SHUTDOWN, "the refused password change");
  if (ctx.env.verifyAdminPassword) {
    check(!(await ctx.env.verifyAdminPassword(inst, adminUser(inst), pw)), "the refused password works in the guest");
  }
  const service = ctx.service ? await ctx.service() : undefined;
  if (!service) return;
  await service.adopt(inst);
  ctx.step("service.setAdminPassword on a stopped instance");
  await expectRejects(
    ctx,
    service.setAdminPassword(inst.uuid, pw, ctx.opts()),
    ["VIRTKIT_PASSWORD_SET_FAILED"],
    "service.setAdminPassword on a stopped instance",
  );
  check((await service.taskState(inst.uuid)) === null, "the task state was not cleared after the refusal");
}

/** No guest agent: the not-supported or agent-not-enabled error. */
export async function checkPasswordNoAgent(ctx: ScenarioContext): Promise<void> {
  const boot = ctx.env.bootImage;
  const image = {
    ...(boot ?? { properties: {} }),
    properties: { ...(boot?.properties ?? {}), hw_qemu_guest_agent: false, os_type: "linux" },
  };
  const inst = await ctx.spawn({ imageMeta: image });
  const pw = newPassword(ctx);
  ctx.step("driver.setAdminPassword without a guest agent");
  await expectRejects(
    ctx,
    ctx.driver.setAdminPassword(inst, pw, ctx.opts()),
    ["VIRTKIT_ADMIN_PASSWORD_NOT_SUPPORTED", "VIRTKIT_GUEST_AGENT_NOT_ENABLED"],
    "setAdminPassword on an instance without a guest agent",
  );
  await expectState(ctx, inst, PowerState.RUNNING, "the refused password change");
  const service = ctx.service ? await ctx.service() : undefined;
  if (!service) return;
  await service.adopt(inst);
  ctx.step("service.setAdminPassword without a guest agent");
  await expectRejects(
    ctx,
    service.setAdminPassword(inst.uuid, pw, ctx.opts()),
    ["VIRTKIT_ADMIN_PASSWORD_NOT_SUPPORTED", "VIRTKIT_GUEST_AGENT_NOT_ENABLED", "VIRTKIT_PASSWORD_SET_FAILED"],
    "service.setAdminPassword without a guest agent",
  );
  check((await service.taskState(inst.uuid)) === null, "the task state was not cleared after the refusal");
}

/**
 * An agent that hangs, and one that does not run at all (stopped inside the guest): the typed error
 * within the timeout, and the guest keeps running.
 */
export async function checkPasswordAgentUnresponsive(ctx: ScenarioContext): Promise<void> {
  const controls = ctx.env.agentControls;
  if (!controls) skipForEnvironment("the environment cannot make a guest agent unresponsive");
  const inst = await ctx.spawn();
  const pw = newPassword(ctx);
  for (const [mode, what] of [
    ["unresponsive", "a hanging agent"],
    ["absent", "no agent running in the guest"],
  ] as const) {
    await controls.setAgent(inst, mode);
    ctx.step(`driver.setAdminPassword with ${what} (timeout 300 ms)`);
    const t0 = performance.now();
    await expectRejects(
      ctx,
      ctx.driver.setAdminPassword(inst, pw, ctx.opts({ timeoutMs: 300 })),
      ["VIRTKIT_GUEST_AGENT_UNRESPONSIVE", "VIRTKIT_OPERATION_TIMEOUT"],
      `setAdminPassword with ${what}`,
    );
    const elapsed = performance.now() - t0;
    check(elapsed < 1300, `${what}: the failure was reported after ${Math.round(elapsed)} ms (timeout 300 ms)`);
    await controls.setAgent(inst, "ok");
    await expectState(ctx, inst, PowerState.RUNNING, `the failed password change with ${what}`);
  }
  // Not checked: that the password stays unset. A command already written to a stopped agent's
  // channel runs when the agent resumes; libvirt cannot take it back (nor can Nova).
}

/**
 * One guest's hung agent holds no other guest's: while a password change waits on a frozen agent,
 * another instance's change goes through (a driver with one host-wide agent lock stalls them all).
 */
export async function checkAgentHangIsolated(ctx: ScenarioContext): Promise<void> {
  const controls = ctx.env.agentControls;
  if (!controls) skipForEnvironment("the environment cannot make a guest agent unresponsive");
  const [hungInst, other] = await Promise.all([ctx.spawn(), ctx.spawn()]);
  await controls.setAgent(hungInst, "unresponsive");
  try {
    ctx.step("setAdminPassword on the instance whose agent hangs (timeout 8 s)");
    // Ended by the kit once the other change is through: the check costs no full timeout.
    const stop = new AbortController();
    const hung = ctx.driver.setAdminPassword(
      hungInst,
      newPassword(ctx),
      ctx.opts({ timeoutMs: 8_000, signal: AbortSignal.any([ctx.signal, stop.signal]) }),
    );
    let hungSettled = false;
    hung.then(
      () => (hungSettled = true),
      () => (hungSettled = true),
    );
    await new Promise((r) => setTimeout(r, 100));
    ctx.step("setAdminPassword on another instance meanwhile");
    const pw = newPassword(ctx);
    await ctx.driver.setAdminPassword(other, pw, ctx.opts());
    check(
      !hungSettled,
      "setAdminPassword on another instance finished only after the hung agent's call had failed: one guest's agent holds every other's",
    );
    stop.abort();
    await expectRejects(
      ctx,
      hung,
      ["VIRTKIT_GUEST_AGENT_UNRESPONSIVE", "VIRTKIT_OPERATION_TIMEOUT", "VIRTKIT_OPERATION_ABORTED"],
      "setAdminPassword with a hanging agent",
    );
    await verify(ctx, other, pw, "setAdminPassword while another guest's agent hung");
  } finally {
    await controls.setAgent(hungInst, "ok");
  }
}

/**
 * Every failing path with one distinctive password: the password must appear in no error, log
 * line or report (checked by `makeTest` over everything recorded).
 */
export async function checkPasswordNoLeak(ctx: ScenarioContext): Promise<void> {
  const inst = await ctx.spawn();
  const pw = newPassword(ctx);
  const attempts: Promise<unknown>[] = [];
  if (ctx.env.agentControls) {
    await ctx.env.agentControls.setAgent(inst, "absent");
    attempts.push(ctx.driver.setAdminPassword(inst, pw, ctx.opts()));
  }
  const results = await Promise.allSettled(attempts);
  for (const r of results) if (r.status === "rejected") ctx.recordError(r.reason);
  if (ctx.env.agentControls) await ctx.env.agentControls.setAgent(inst, "ok");
  ctx.step("power off, then set the password");
  await ctx.driver.powerOff(inst, ctx.opts({ cleanShutdownTimeoutSec: 0 }));
  await ctx.driver.setAdminPassword(inst, pw, ctx.opts()).catch((err: unknown) => ctx.recordError(err));
  const service = ctx.service ? await ctx.service() : undefined;
  if (service) {
    await service.adopt(inst);
    await service.setAdminPassword(inst.uuid, pw, ctx.opts()).catch((err: unknown) => ctx.recordError(err));
  }
  ctx.step("scan the logs");
  const lines = ctx.env.logLines?.() ?? [];
  const scan = new SecretScan([pw.reveal()]);
  if (lines.some((l) => scan.found(l))) fail("the password appears in a log line");
}

/** Undeclared admin password is refused as unsupported (or not-supported, its specific form). */
export async function refuseSetPassword(ctx: ScenarioContext): Promise<void> {
  const inst = await ctx.spawn();
  const pw = newPassword(ctx);
  try {
    await expectUnsupported(ctx, "setAdminPassword", () => ctx.driver.setAdminPassword(inst, pw, ctx.opts()), "setAdminPassword");
  } catch (err) {
    // AdminPasswordNotSupportedError is the contract's own "unsupported" for this operation.
    if ((err as { message?: string }).message?.includes("VIRTKIT_ADMIN_PASSWORD_NOT_SUPPORTED")) return;
    throw err;
  }
}
