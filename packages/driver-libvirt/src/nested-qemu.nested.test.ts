// Real QEMU guests on two libvirtd hosts in containers (testcontainers), driven by virtkit's own
// LibvirtDriver: boot with the agent answering, and a live block migration between the hosts.
// Skipped unless VIRTKIT_NESTED_QEMU=1 and a Docker engine answers (bash scripts/docker.sh start).
// Prints the figures: image build (or cache hit), bare QEMU boot vs driver spawn to agent answer,
// and the migration.

import { randomUUID } from "node:crypto";
import { DEFAULT_MIGRATION_POLICY, PowerState, type Instance, type MigrationPolicy } from "@virtkit/core";
import {
  GUEST_MARKERS,
  agentCommand,
  bareQemuBoot,
  ensureImage,
  readGuestFile,
  startNestedHosts,
  waitForAgent,
  type NestedHost,
  type NestedHosts,
  type NestedQemuImage,
} from "@virtkit/nested-qemu";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LibvirtDriver } from "./libvirt-driver.js";
import { nestedQemuSkipReason } from "./testing/nested-gate.js";

const REASON = await nestedQemuSkipReason("nested-qemu");

const log = (message: string) => console.log(`[nested-qemu] ${message}`);
const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

describe.skipIf(REASON !== undefined)(
  `nested QEMU on two containerised libvirtd hosts${REASON ? ` (skipped: ${REASON})` : ""}`,
  () => {
    let image: NestedQemuImage;
    let run: NestedHosts | undefined;
    const drivers: { driver: LibvirtDriver; host: NestedHost }[] = [];

    const guest = (): Instance => {
      const uuid = randomUUID();
      return {
        uuid,
        name: `nq-${uuid.slice(0, 8)}`,
        projectId: "proj-nested",
        userId: "user-nested",
        flavor: { name: "m1.nano", memoryMb: 256, vcpus: 1, rootGb: 1 },
        imageMeta: {
          id: "virtkit-nested-guest",
          diskFormat: "qcow2",
          containerFormat: "bare",
          properties: {
            hw_qemu_guest_agent: true,
            virtkit_kernel_path: image.kernelPath,
            virtkit_ramdisk_path: image.initrdPath,
            os_command_line: image.cmdline,
          },
        },
      };
    };

    beforeAll(async () => {
      const started = Date.now();
      image = await ensureImage({
        onProgress: (p) => {
          if (p.phase !== "output") log(`image ${p.layer} ${p.phase} ${p.message}`);
        },
      });
      log(
        `image ${image.image}: ${image.layers.map((l) => `${l.name} ${l.built ? "built" : "cached"} ${secs(l.ms)}`).join(", ")}`,
      );
      const t = Date.now();
      run = await startNestedHosts({ image: image.image, onProgress: log });
      log(`two hosts up in ${secs(Date.now() - t)} (since the test began: ${secs(Date.now() - started)})`);
      for (const host of run.hosts) {
        const driver = new LibvirtDriver({
          uri: host.uri,
          virtType: "qemu",
          timeoutMs: 120_000,
          pollIntervalMs: 100,
          // QEMU's migration stream goes to this address on the run's network (Nova's live_migration_inbound_addr).
          liveMigrationInboundAddr: host.address,
        });
        // The host name the driver gives the peer for migration: its address on the run's network.
        await driver.initHost(host.address);
        drivers.push({ driver, host });
      }
    }, 900_000);

    afterAll(async () => {
      for (const { driver, host } of drivers)
        await driver.cleanupHost(host.address, { timeoutMs: 10_000 }).catch(() => undefined);
      await run?.stop({ timeoutMs: 60_000 });
    }, 120_000);

    it("boots the guest under libvirt with its agent answering; times it against a bare QEMU boot", async () => {
      const { driver, host } = drivers[0]!;
      const markers = (text: string) =>
        text
          .split(/\r?\n/)
          .filter((l) => l.startsWith("virtkit-guest:"))
          .map((l) => l.replace("virtkit-guest: ", ""))
          .join(" | ");
      // Alternating rounds: this 2-core machine is shared, one sample of each says little.
      const rounds = Number(process.env.VIRTKIT_NESTED_QEMU_BOOT_ROUNDS ?? "2");
      const bareMs: number[] = [];
      const libvirtMs: number[] = [];
      for (let round = 1; round <= rounds; round++) {
        const bare = await bareQemuBoot(host, { memoryMb: 256, timeoutMs: 120_000 });
        expect(bare.serial).toContain(GUEST_MARKERS.agent);
        bareMs.push(bare.agentMs);
        log(`round ${round}: bare qemu-system-x86_64 start to the agent's answer ${secs(bare.agentMs)}`);
        log(`round ${round}:   guest clock: ${markers(bare.serial)}`);

        const instance = guest();
        const t0 = Date.now();
        await driver.spawn({ instance }, { timeoutMs: 120_000 });
        const spawned = Date.now();
        const answer = await waitForAgent(host, instance.uuid, { timeoutMs: 120_000 });
        expect(answer.reply).toContain('"return"');
        libvirtMs.push(answer.answeredAtMs - t0);
        log(
          `round ${round}: driver spawn ${secs(spawned - t0)}, spawn start to the agent's answer ` +
            `${secs(answer.answeredAtMs - t0)} (${answer.attempts} pings)`,
        );
        const console = await driver.getConsoleOutput(instance);
        expect(console).toContain(GUEST_MARKERS.agent);
        expect(console).toContain(GUEST_MARKERS.dataDisk);
        log(`round ${round}:   guest clock: ${markers(console)}`);
        await driver.destroy(instance, { destroyDisks: true });
        expect(await driver.instanceExists(instance)).toBe(false);
      }
      const median = (xs: number[]) => {
        const sorted = [...xs].sort((a, b) => a - b);
        const mid = sorted.length / 2;
        return Number.isInteger(mid) ? (sorted[mid - 1]! + sorted[mid]!) / 2 : sorted[Math.floor(mid)]!;
      };
      log(
        `boot to agent: bare ${bareMs.map(secs).join(", ")}; libvirt ${libvirtMs.map(secs).join(", ")}; ` +
          `ratio of medians ${(median(libvirtMs) / median(bareMs)).toFixed(2)} (issue target <= 1.5)`,
      );
    }, 900_000);

    it("migrates a running guest live, as a block migration, to the other host", async () => {
      const src = drivers[0]!;
      const dst = drivers[1]!;
      const instance = guest();
      await src.driver.spawn({ instance }, { timeoutMs: 120_000 });
      await waitForAgent(src.host, instance.uuid, { timeoutMs: 120_000 });
      // Something on the guest's data disk, and a password set through the agent (the real chpasswd
      // and PAM write /etc/shadow, which lives in the guest's RAM): both must be there after the move.
      const marker = `moved-${instance.uuid.slice(0, 8)}`;
      await agentCommand(src.host, instance.uuid, {
        execute: "guest-exec",
        arguments: { path: "/bin/sh", arg: ["-c", `echo ${marker} > /data/marker && sync`] },
      });
      const before = await readGuestFile(src.host, instance.uuid, "/etc/shadow");
      await agentCommand(src.host, instance.uuid, {
        execute: "guest-set-user-password",
        arguments: { username: "root", password: Buffer.from("nested-secret-1").toString("base64"), crypted: false },
      });
      const shadowEntry = (text: string) => text.split("\n").find((l) => l.startsWith("root:")) ?? "";
      const hashed = shadowEntry(await readGuestFile(src.host, instance.uuid, "/etc/shadow"));
      expect(hashed).not.toBe(shadowEntry(before));
      // SHA-512 crypt (the guest's PAM is set so): checkable with `openssl passwd -6 -salt`.
      expect(hashed).toMatch(/^root:\$6\$[^:$]+\$[^:]+:/);

      const policy: MigrationPolicy = { ...DEFAULT_MIGRATION_POLICY, block: true };
      const t0 = Date.now();
      const sourceHost = await src.driver.getHostInfo();
      let data = await dst.driver.checkCanLiveMigrateDestination(instance, sourceHost, policy);
      log(
        `migration ${src.host.address} -> ${dst.host.address}: ${JSON.stringify(data.plan.flags)} destUri ${String(data.extra.destUri)} inbound address ${String(data.extra.targetConnectAddr ?? "(libvirt's choice)")}`,
      );
      data = await src.driver.checkCanLiveMigrateSource(instance, data);
      data = await dst.driver.preLiveMigration(instance, data);
      // Block migration with NON_SHARED_INC (Nova's flags) needs the disk to exist on the destination
      // (libvirt will not pre-create it): the driver's pre-live-migration made it, as Nova's does.
      const disk = `${instance.uuid}_disk`;
      const has = await dst.host.exec(["virsh", "-q", "-c", "qemu:///system", "vol-info", "--pool", "default", disk]);
      expect(has.exitCode, `${disk} on the destination after preLiveMigration: ${has.stderr}`).toBe(0);
      let last = "";
      await src.driver.liveMigration(instance, data, {
        timeoutMs: 300_000,
        onProgress: (p) =>
          (last = `${(p.dataProcessedBytes / 2 ** 20).toFixed(0)}/${(p.dataTotalBytes / 2 ** 20).toFixed(0)} MiB`),
      });
      await dst.driver.postLiveMigrationAtDestination(instance, data);
      log(`live block migration in ${secs(Date.now() - t0)} (last progress ${last || "none"})`);

      expect((await dst.driver.getInfo(instance)).state).toBe(PowerState.RUNNING);
      expect(await src.driver.instanceExists(instance)).toBe(false);
      const onSource = await src.host.exec(["virsh", "-c", "qemu:///system", "list", "--all", "--uuid"]);
      expect(onSource.stdout).not.toContain(instance.uuid);
      // The agent answers on the destination, and the guest kept what it had written.
      await waitForAgent(dst.host, instance.uuid, { timeoutMs: 60_000 });
      expect((await readGuestFile(dst.host, instance.uuid, "/data/marker")).trim()).toBe(marker);
      expect(shadowEntry(await readGuestFile(dst.host, instance.uuid, "/etc/shadow"))).toBe(hashed);

      // The source dropped its stale copy of the disk after the move (Nova's source-side cleanup).
      const vols = await src.host.exec(["sh", "-c", "ls /var/lib/libvirt/images"]);
      expect(vols.stdout.split("\n").filter((f) => f.startsWith(instance.uuid))).toEqual([]);
      await src.driver.destroy(instance, { destroyDisks: true });
      await dst.driver.destroy(instance, { destroyDisks: true });
    }, 900_000);
  },
);
