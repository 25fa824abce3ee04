/** Test fixtures: instances, a two-host cloud with a manual clock, event recording. */
import { randomUUID } from "node:crypto";
import { InMemoryImageService, type Instance, type LifecycleEvent } from "@virtkit/core";
import { ManualClock } from "../clock.js";
import { FakeCloud } from "../fake-cloud.js";
import { FakeDriver, type FakeDriverOptions } from "../fake-driver.js";

let counter = 0;

/** A valid instance; `overrides` replace top-level fields. */
export function makeInstance(overrides: Partial<Instance> = {}): Instance {
  counter++;
  return {
    uuid: randomUUID(),
    name: `vm-${counter}`,
    projectId: "project-1",
    flavor: { name: "m1.tiny", memoryMb: 512, vcpus: 1, rootGb: 1 },
    imageMeta: {
      id: "image-1",
      name: "cirros",
      diskFormat: "qcow2",
      containerFormat: "bare",
      properties: { hw_qemu_guest_agent: true, os_type: "linux" },
    },
    ...overrides,
  };
}

/** A cloud on a manual clock with one driver per host name. */
export function makeCloud(
  hosts: readonly string[] = ["host-a"],
  options: Partial<Omit<FakeDriverOptions, "host" | "cloud" | "imageService">> = {},
): { cloud: FakeCloud; clock: ManualClock; images: InMemoryImageService; drivers: FakeDriver[] } {
  const clock = new ManualClock();
  const cloud = new FakeCloud({ clock });
  const images = new InMemoryImageService();
  const drivers = hosts.map((host) => new FakeDriver({ host, cloud, imageService: images, ...options }));
  return { cloud, clock, images, drivers };
}

/** Records every lifecycle event of `driver`. */
export function recordEvents(driver: FakeDriver): { events: LifecycleEvent[]; transitions: () => string[] } {
  const events: LifecycleEvent[] = [];
  driver.registerEventListener((e) => events.push(e));
  return { events, transitions: () => events.map((e) => e.transition) };
}
