/**
 * Destroy on the source while a live migration runs: the migration stops at once and fails typed
 * (LiveMigrationFailedError, or InstanceNotFoundError for an instance that is gone), and after
 * Nova's rollback at the destination the instance is on neither host.
 */
import { InstanceNotFoundError, LiveMigrationFailedError } from "@virtkit/core";
import { check, describeError, expectGone, fail, skipForEnvironment, thrownWithCode } from "../assertions.js";
import type { ScenarioContext } from "../scenario.js";
import { hostPair, policyFor, prepareMove, settle } from "./depth-support.js";

export async function checkDestroyDuringMigration(ctx: ScenarioContext): Promise<void> {
  const controls = ctx.env.hypervisorControls;
  if (!controls?.setMigrationDuration) skipForEnvironment("the environment cannot slow a live migration down");
  const pair = await hostPair(ctx, "any");
  const inst = await ctx.spawn();
  const data = await prepareMove(ctx, pair, inst, policyFor(pair));
  await controls.setMigrationDuration(20_000);
  try {
    ctx.step("liveMigration (slowed to 20 s)");
    const moving = pair.src.liveMigration(inst, data, ctx.opts());
    moving.catch(() => undefined);
    await settle(30);
    ctx.step("destroy on the source while the migration runs");
    await pair.src.destroy(inst, ctx.opts());
    const t0 = performance.now();
    const outcome = await moving.then(
      () => undefined,
      (err: unknown) => ({ err }),
    );
    if (outcome === undefined) fail("liveMigration succeeded although the instance was destroyed on the source mid-way");
    ctx.recordError(outcome.err);
    if (!thrownWithCode(outcome.err, [LiveMigrationFailedError.CODE, InstanceNotFoundError.CODE])) {
      fail(`liveMigration of an instance destroyed mid-way: expected LiveMigrationFailedError, got ${describeError(outcome.err)}`);
    }
    const took = performance.now() - t0;
    check(took < 1000, `the migration went on for ${Math.round(took)} ms after its instance was destroyed`);
  } finally {
    await controls.setMigrationDuration(0);
  }
  ctx.step("rollbackLiveMigrationAtDestination");
  await pair.dst.rollbackLiveMigrationAtDestination(inst, data, {}, ctx.opts());
  await expectGone(ctx, inst, "destroy during a migration (source)", pair.src);
  await expectGone(ctx, inst, "destroy during a migration and the rollback (destination)", pair.dst);
}
