/**
 * The admin-password group's view of core's `ComputeService`: a service per scenario over the
 * scenario's driver, with its own store and a memory logger whose lines join the secret check.
 */
import { ComputeService, InMemoryInstanceStore, MemoryLogger, VmState, isInstanceNotFound } from "@virtkit/core";
import type { AdminPasswordService, AdminPasswordServiceFactory } from "./scenario.js";

/** Builds a `ComputeService` over the scenario's driver (the default for every run). */
export function computeServiceFactory(): AdminPasswordServiceFactory {
  return async (driver, env) => {
    const store = new InMemoryInstanceStore();
    const logger = new MemoryLogger();
    const host = env.hosts[0] ?? "localhost";
    const service = new ComputeService({
      driver,
      store,
      imageService: env.imageService,
      logger,
      host,
      initHost: false,
    });
    const adapter: AdminPasswordService = {
      async adopt(instance) {
        try {
          await store.get(instance.uuid);
          return;
        } catch (err) {
          if (!isInstanceNotFound(err)) throw err;
        }
        const info = await driver.getInfo(instance);
        await store.create({ ...instance, vmState: VmState.ACTIVE, taskState: null, powerState: info.state, host });
      },
      setAdminPassword: (uuid, password, options) => service.setAdminPassword(uuid, password, options),
      async taskState(uuid) {
        return (await store.get(uuid)).taskState;
      },
      logLines: () => logger.lines(),
    };
    return adapter;
  };
}
