/**
 * `destroy`'s `destroyDisks`, seen on the host's storage by the environment (never the driver's
 * word): false leaves the instance's disks there (Nova passes it when the disks live on shared
 * storage another host takes over); a later destroy with the default removes them although the
 * instance is gone (the only way the contract offers to delete them); a spawn of the instance boots
 * the kept disks, data and all; the default removes a running instance's disks at once.
 */
import { VirtkitError, type Instance } from "@virtkit/core";
import { describeError, expectGone, fail, skipForEnvironment, waitFor } from "../assertions.js";
import type { ScenarioContext } from "../scenario.js";
import { settle } from "./depth-support.js";

const KEPT_KEY = "/conformance/kept-disk";

export async function checkDestroyKeepsDisks(ctx: ScenarioContext): Promise<void> {
  const instanceDisks = ctx.env.instanceDisks?.bind(ctx.env);
  if (!instanceDisks) skipForEnvironment("the environment cannot see the host's storage (no instanceDisks)");
  const disks = async (inst: Instance, after: string): Promise<readonly string[]> => {
    ctx.step(`the disks the host's storage holds for the instance after ${after}`);
    return instanceDisks(inst);
  };
  const d = ctx.driver;
  const inst = await ctx.spawn();
  const running = await disks(inst, "spawn");
  // A view that never sees a disk would pass every check below.
  if (running.length === 0) fail("the environment's instanceDisks sees no disk of a running instance");
  ctx.step("destroy with destroyDisks: false");
  await d.destroy(inst, ctx.opts({ destroyDisks: false }));
  await expectGone(ctx, inst, "destroy with destroyDisks: false");
  if ((await disks(inst, "destroy with destroyDisks: false")).length === 0) {
    fail(`destroy with destroyDisks: false deleted the instance's disks (${running.join(", ")}); they must stay on storage`);
  }
  // Idempotent with either value: a rollback at a destination destroys what may not be there.
  ctx.step("destroy the gone instance again with destroyDisks: false, and an unknown one");
  await d.destroy(inst, ctx.opts({ destroyDisks: false }));
  await d.destroy(ctx.newInstance(), ctx.opts({ destroyDisks: false }));
  if ((await disks(inst, "a second destroy with destroyDisks: false")).length === 0) {
    fail("a second destroy with destroyDisks: false of the gone instance deleted the disks the first one kept");
  }
  ctx.step("destroy the gone instance again, destroyDisks left to its default (true)");
  await d.destroy(inst, ctx.opts());
  const left = await disks(inst, "a second destroy with the default destroyDisks");
  if (left.length > 0) {
    fail(`a destroy with destroyDisks true of an instance whose disks an earlier destroy kept left them: ${left.join(", ")}`);
  }
  // A spawn of an instance whose disks a destroy kept boots them (evacuation: the data is the point).
  const other = await ctx.spawn();
  const guest = ctx.env.guestControls;
  const marker = guest?.writeData && guest.readData ? `kept-${other.uuid.slice(0, 8)}` : undefined;
  if (marker !== undefined) {
    ctx.step("write a marker into the guest's disk");
    await guest!.writeData!(other, KEPT_KEY, marker);
  }
  const before = await disks(other, "spawn");
  ctx.step("destroy with destroyDisks: false, then spawn the same instance again");
  await d.destroy(other, ctx.opts({ destroyDisks: false }));
  await failedSpawnKeepsDisk(ctx, other, await disks(other, "destroy with destroyDisks: false"));
  const again = await ctx.spawn({ uuid: other.uuid, name: other.name });
  if (marker !== undefined) {
    ctx.step("read the marker back from the respawned guest's disk");
    const read = await guest!.readData!(again, KEPT_KEY);
    if (read !== marker) {
      fail(
        `a spawn after destroy with destroyDisks: false did not boot the kept disk: the marker written before reads ${
          read === undefined ? "as absent" : JSON.stringify(read)
        } (the disk was replaced by a fresh copy of the image, losing the guest's data)`,
      );
    }
  }
  const respawned = await disks(again, "the spawn that should boot them");
  if ([...respawned].sort().join("\n") !== [...before].sort().join("\n")) {
    fail(`the respawned instance's disks (${respawned.join(", ")}) are not the kept ones (${before.join(", ")})`);
  }
  ctx.step("destroy a running instance with the default destroyDisks");
  await d.destroy(again, ctx.opts());
  const stayed = await disks(again, "destroy with the default destroyDisks");
  if (stayed.length > 0) fail(`destroy with the default destroyDisks (true) left the instance's disks: ${stayed.join(", ")}`);
}

/** Per-call latency while the spawn is made to fail. */
const SLOW_CALL_MS = 150;
/** Its deadlines: within the first call (a one-call driver), and a few calls in (an RPC driver). */
const FAILING_SPAWN_DEADLINES_MS = [100, 400] as const;

/**
 * "If the spawn fails, that disk stays kept": a spawn of an instance whose disk a destroy kept, cut
 * by its deadline part-way (the hypervisor slowed), must leave that disk where and as it was, and
 * nothing running. Its failed-spawn cleanup is where a driver deletes what it did not make. Where
 * the environment cannot slow its hypervisor, not tried.
 */
async function failedSpawnKeepsDisk(ctx: ScenarioContext, inst: Instance, kept: readonly string[]): Promise<void> {
  for (const deadlineMs of FAILING_SPAWN_DEADLINES_MS) await failedSpawnOnce(ctx, inst, kept, deadlineMs);
}

async function failedSpawnOnce(ctx: ScenarioContext, inst: Instance, kept: readonly string[], deadlineMs: number): Promise<void> {
  const slow = ctx.env.hypervisorControls?.setLatency?.bind(ctx.env.hypervisorControls);
  if (!slow) return;
  ctx.step(`spawn the instance whose disk was kept, the hypervisor slowed so a ${deadlineMs} ms deadline cuts it`);
  await slow(SLOW_CALL_MS);
  let failed = false;
  try {
    await ctx.driver.spawn({ instance: inst }, ctx.opts({ timeoutMs: deadlineMs }));
  } catch (err) {
    ctx.recordError(err);
    if (!(err instanceof VirtkitError)) fail(`the spawn cut by its deadline rejected untyped: ${describeError(err)}`);
    failed = true;
  } finally {
    await slow(0);
  }
  if (!failed) {
    // Quick enough to finish: nothing was cut; put the disk back as it was for the rest.
    await ctx.driver.destroy(inst, ctx.opts({ destroyDisks: false }));
    return;
  }
  // The driver's own cleanup of the cut spawn may still run (a slowed call in flight): waited for,
  // then a late completion would have shown.
  await waitFor(async () => !(await ctx.driver.instanceExists(inst, ctx.opts())), 10_000, ctx.signal);
  await settle(400);
  await expectGone(ctx, inst, `a spawn cut by its ${deadlineMs} ms deadline`);
  const after = await ctx.env.instanceDisks!(inst);
  if ([...after].sort().join("\n") !== [...kept].sort().join("\n")) {
    fail(
      `a spawn cut by its ${deadlineMs} ms deadline, of an instance whose disk a destroy kept, left ${after.length === 0 ? "no disk" : after.join(", ")} where ${kept.join(", ")} was: if the spawn fails, that disk stays kept`,
    );
  }
}
