/**
 * `destroy`'s `destroyDisks`, seen on the host's storage by the environment (never the driver's
 * word): false leaves the instance's disks there (Nova passes it when the disks live on shared
 * storage another host takes over); a later destroy with the default removes them although the
 * instance is gone (the only way the contract offers to delete them); the default removes a running
 * instance's disks at once.
 */
import type { Instance } from "@virtkit/core";
import { expectGone, fail, skipForEnvironment } from "../assertions.js";
import type { ScenarioContext } from "../scenario.js";

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
  const other = await ctx.spawn();
  ctx.step("destroy a running instance with the default destroyDisks");
  await d.destroy(other, ctx.opts());
  const stayed = await disks(other, "destroy with the default destroyDisks");
  if (stayed.length > 0) fail(`destroy with the default destroyDisks (true) left the instance's disks: ${stayed.join(", ")}`);
}
