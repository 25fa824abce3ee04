// One instance's life on the fake hypervisor, driven the way a service embeds virtkit: load the
// driver plugin by short name, wrap it in a ComputeService (which keeps vm / task / power state
// like Nova's compute manager), and walk the instance from boot to delete, printing the three
// states after every step. Run with `pnpm example` (after `pnpm install && pnpm build`).
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { ComputeService, VirtkitError, createDriver, powerStateName } from "@virtkit/core";

const repoRoot = fileURLToPath(new URL("..", import.meta.url));

// `fake` resolves to @virtkit/driver-fake, looked up from the repo root like a user's project.
const driver = await createDriver("fake", {}, { cwd: repoRoot });
const service = new ComputeService({ driver, host: "example-host" });

const instance = {
  uuid: randomUUID(),
  name: "example-vm",
  flavor: { name: "m1.tiny", memoryMb: 512, vcpus: 1, rootGb: 1 },
  imageMeta: {
    id: "cirros-0.6",
    diskFormat: "qcow2",
    containerFormat: "bare",
    properties: { hw_qemu_guest_agent: "yes", os_admin_user: "root", os_type: "linux" },
  },
  projectId: "demo",
};

const columns = [
  ["step", 22],
  ["vm state", 10],
  ["task state", 11],
  ["power state", 12],
  ["ms", 7],
  ["note", 0],
];
const line = (cells) =>
  cells
    .map((c, i) => String(c).padEnd(columns[i][1]))
    .join(" ")
    .trimEnd();
console.log(
  `virtkit lifecycle example: instance ${instance.name} (${instance.uuid}) on host ${service.host}, driver ${driver.name}\n`,
);
console.log(line(columns.map(([name]) => name)));
console.log(line(columns.map(([, width]) => "-".repeat(Math.max(width, 4)))));

async function step(label, action) {
  const started = performance.now();
  const note = (await action()) ?? "";
  const ms = (performance.now() - started).toFixed(1);
  const record = await service.get(instance.uuid).catch(() => undefined);
  const states = record
    ? [record.vmState, record.taskState ?? "-", powerStateName(record.powerState)]
    : ["(gone)", "-", "-"];
  console.log(line([label, ...states, ms, note]));
}

try {
  await step("boot", () => service.boot(instance).then(() => "spawned"));
  await step("pause", () => service.pause(instance.uuid).then(() => undefined));
  await step("unpause", () => service.unpause(instance.uuid).then(() => undefined));
  await step("suspend", () => service.suspend(instance.uuid).then(() => undefined));
  await step("resume", () => service.resume(instance.uuid).then(() => undefined));
  await step("reboot (soft)", () => service.reboot(instance.uuid, "SOFT").then(() => undefined));
  await step("set admin password", async () => {
    // No password given: the service generates one and returns it as a Secret. Only say it was set.
    const password = await service.setAdminPassword(instance.uuid);
    return `generated and set (${password.length} characters, value not shown)`;
  });
  await step("snapshot", async () => {
    const image = await service.snapshot(instance.uuid, `${instance.name}-snap`);
    return `image ${image.id} ${image.status}, ${image.size} bytes`;
  });
  await step("stop", () => service.stop(instance.uuid).then(() => undefined));
  await step("start", () => service.start(instance.uuid).then(() => undefined));
  await step("delete", () => service.delete(instance.uuid).then(() => "destroyed, record removed"));
  console.log(`\ninstances left on ${service.host}: ${(await service.list()).length}`);
} catch (err) {
  // Typed errors carry a stable code and a secret-free message.
  console.error(err instanceof VirtkitError ? `failed: ${err.code}: ${err.message}` : err);
  process.exitCode = 1;
} finally {
  await driver.cleanupHost(service.host);
}
