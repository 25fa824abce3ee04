/**
 * `getInfo().cpuTimeNs`, "CPU time consumed, in nanoseconds": it never runs backwards while the
 * guest lives, cannot exceed what its vCPUs could burn in the time that passed, stands still while
 * the instance is stopped, hardly moves while it is paused (its vCPUs do not run), and grows while
 * it runs (a SHOULD: an idle guest may burn little, but a driver reporting a constant is wrong).
 */
import type { Instance } from "@virtkit/core";
import { check, fail, waitFor } from "../assertions.js";
import type { ScenarioContext } from "../scenario.js";
import { settle } from "./depth-support.js";

const MS = 1_000_000n;

async function cpu(ctx: ScenarioContext, inst: Instance, after: string): Promise<bigint> {
  ctx.step(`getInfo cpuTimeNs (${after})`);
  const info = await ctx.driver.getInfo(inst, ctx.opts());
  if (typeof info.cpuTimeNs !== "bigint" || info.cpuTimeNs < 0n) {
    fail(`cpuTimeNs after ${after} is ${String(info.cpuTimeNs)}, not a bigint >= 0`);
  }
  return info.cpuTimeNs;
}

/** The bounds every driver must keep (MUST). */
export async function checkCpuTime(ctx: ScenarioContext): Promise<void> {
  const d = ctx.driver;
  const t0 = performance.now();
  const inst = await ctx.spawn();
  const vcpus = BigInt(inst.flavor.vcpus);
  // What the vCPUs could burn since before the spawn, with a second and one more vCPU of slack
  // (emulator threads are counted too by some hypervisors).
  const ceiling = (): bigint => (BigInt(Math.ceil(performance.now() - t0)) + 1000n) * MS * (vcpus + 1n);
  const a = await cpu(ctx, inst, "spawn");
  await settle(10);
  const b = await cpu(ctx, inst, "10 ms of running");
  check(b >= a, `cpuTimeNs ran backwards while the instance ran: ${a} then ${b}`);
  check(b <= ceiling(), `cpuTimeNs ${b} is more than ${vcpus} vCPU(s) could burn since the spawn (at most ${ceiling()})`);
  let last = b;
  if (d.capabilities.pause) {
    ctx.step("pause");
    await d.pause(inst, ctx.opts());
    const p1 = await cpu(ctx, inst, "pause");
    check(p1 >= last, `cpuTimeNs ran backwards when the instance was paused: ${last} then ${p1}`);
    const s = performance.now();
    await settle(20);
    const p2 = await cpu(ctx, inst, "20 ms paused");
    const span = BigInt(Math.ceil(performance.now() - s)) * MS * vcpus;
    check(p2 >= p1, `cpuTimeNs ran backwards while the instance was paused: ${p1} then ${p2}`);
    check(p2 - p1 <= span / 2n, `cpuTimeNs grew by ${p2 - p1} ns while the instance was paused (its vCPUs do not run; at most ${span / 2n})`);
    ctx.step("unpause");
    await d.unpause(inst, ctx.opts());
    last = await cpu(ctx, inst, "unpause");
    check(last >= p2, `cpuTimeNs ran backwards when the instance was unpaused: ${p2} then ${last}`);
  }
  ctx.step("power off");
  await d.powerOff(inst, ctx.opts({ cleanShutdownTimeoutSec: 0 }));
  const o1 = await cpu(ctx, inst, "power off");
  await settle(15);
  const o2 = await cpu(ctx, inst, "15 ms stopped");
  check(o2 === o1, `cpuTimeNs moved from ${o1} to ${o2} while the instance was stopped`);
  check(o2 <= ceiling(), `cpuTimeNs ${o2} is more than ${vcpus} vCPU(s) could burn since the spawn (at most ${ceiling()})`);
  ctx.step("power on");
  await d.powerOn(inst, ctx.opts());
  // A restart may start counting afresh (libvirt's does), but never runs backwards after that.
  const n1 = await cpu(ctx, inst, "power on");
  await settle(5);
  const n2 = await cpu(ctx, inst, "5 ms after power on");
  check(n2 >= n1, `cpuTimeNs ran backwards after power on: ${n1} then ${n2}`);
  check(n2 <= ceiling(), `cpuTimeNs ${n2} after power on is more than the vCPUs could burn since the spawn`);
}

/** What any guest that booted has burnt: a boot takes far more than 10 ms of CPU. */
const BOOTED_NS = 10n * MS;

/**
 * A running guest's CPU time grows, also after a pause, and once it has booted reads at least
 * 10 ms (SHOULD): a count in microseconds or milliseconds stays a thousand times below that.
 */
export async function checkCpuTimeGrows(ctx: ScenarioContext): Promise<void> {
  const d = ctx.driver;
  const inst = await ctx.spawn();
  const grows = async (after: string): Promise<void> => {
    const from = await cpu(ctx, inst, after);
    ctx.step(`wait for cpuTimeNs to grow (${after})`);
    const grew = await waitFor(async () => (await d.getInfo(inst, ctx.opts())).cpuTimeNs > from, 2000, ctx.signal);
    if (!grew) fail(`cpuTimeNs stayed at ${from} for 2 s while the instance ran (${after})`);
  };
  ctx.step("wait for cpuTimeNs to show a booted guest's 10 ms");
  let last = 0n;
  const booted = await waitFor(
    async () => (last = (await d.getInfo(inst, ctx.opts())).cpuTimeNs) >= BOOTED_NS,
    2000,
    ctx.signal,
  );
  if (!booted) {
    fail(`cpuTimeNs reads ${last} after 2 s of a booted guest running: below 10 ms (10000000 ns); is it counted in µs or ms, not ns?`);
  }
  await grows("spawn");
  if (d.capabilities.pause) {
    ctx.step("pause, unpause");
    await d.pause(inst, ctx.opts());
    await d.unpause(inst, ctx.opts());
    await grows("unpause");
  }
  ctx.step("power off, power on");
  await d.powerOff(inst, ctx.opts({ cleanShutdownTimeoutSec: 0 }));
  await d.powerOn(inst, ctx.opts());
  await grows("power on");
}
