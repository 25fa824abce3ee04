/**
 * Puts `ComputeService`s into a service's own tsyringe container, one per host, all sharing one
 * `InstanceStore` (`TOKENS.InstanceStore`): a record names its host, so the service that runs an
 * instance (after a migration too) is found from the store in one read, with no search over hosts.
 * Kept apart from `compute-service.ts` so the service itself never imports tsyringe.
 */
import type { DependencyContainer, InjectionToken } from "tsyringe";
import { ComputeService, type ComputeServiceOptions } from "./compute-service.js";
import type { ComputeDriver } from "./driver.js";
import { InvalidInputError } from "./errors.js";
import { InMemoryInstanceStore, type InstanceStore } from "./instance-store.js";
import type { OperationOptions } from "./operation.js";
import { TOKENS, driverToken, type TypedToken } from "./plugin.js";
import { validateSafeString } from "./validation.js";

/** The token of the `ComputeService` of `host` (`virtkit:compute-service:<host>`). */
export function computeServiceToken(host: string): InjectionToken<ComputeService> {
  return `virtkit:compute-service:${validateSafeString(host, "host")}`;
}

/** Options of {@link registerComputeService}. */
export interface RegisterComputeServiceOptions extends Omit<ComputeServiceOptions, "driver" | "store" | "host"> {
  /** This host's name; the service is registered under `computeServiceToken(host)`. */
  readonly host: string;
  /** The driver: its registration name in a `DriverRegistry` (`driverToken(name)`) or any token. Default: `host`. */
  readonly driver?: string | InjectionToken<ComputeDriver>;
  /** Also register this service under `TOKENS.ComputeService` (a service with one host). Default false. */
  readonly asDefault?: boolean;
}

/**
 * Registers, in `container`, the `ComputeService` of one host: built on first resolve from the
 * driver's token, the container's `TOKENS.InstanceStore` (one `InMemoryInstanceStore` is
 * registered at the top of `container` when there is none, so every host registered there shares
 * it), `TOKENS.ImageService` and `TOKENS.Logger` when registered. Returns its token.
 */
export function registerComputeService(
  container: DependencyContainer,
  options: RegisterComputeServiceOptions,
): InjectionToken<ComputeService> {
  const { host, driver: driverSpec, asDefault, ...rest } = options;
  const token = computeServiceToken(host);
  const driverTokenOf: InjectionToken<ComputeDriver> =
    driverSpec === undefined ? driverToken(host) : typeof driverSpec === "string" ? driverToken(driverSpec) : driverSpec;
  if (!container.isRegistered(TOKENS.InstanceStore, true)) {
    container.register(TOKENS.InstanceStore, { useValue: new InMemoryInstanceStore() });
  }
  let service: ComputeService | undefined;
  container.register(token, {
    useFactory: (c) =>
      (service ??= new ComputeService({
        ...rest,
        host,
        driver: c.resolve(driverTokenOf),
        store: c.resolve(TOKENS.InstanceStore),
        ...(rest.imageService === undefined && c.isRegistered(TOKENS.ImageService, true)
          ? { imageService: c.resolve(TOKENS.ImageService) }
          : {}),
        ...(rest.logger === undefined && c.isRegistered(TOKENS.Logger, true) ? { logger: c.resolve(TOKENS.Logger) } : {}),
      })),
  });
  if (asDefault) container.register(TOKENS.ComputeService, { useToken: token });
  return token;
}

/**
 * The `ComputeService` of the host that runs instance `uuid`, read from the shared store (one
 * `get`, wherever a migration took it). `InstanceNotFoundError` for an unknown uuid;
 * `InvalidInputError` when that host has no service registered in `container`.
 */
export async function computeServiceFor(
  container: DependencyContainer,
  uuid: string,
  options?: OperationOptions,
): Promise<ComputeService> {
  const store: InstanceStore = container.resolve(TOKENS.InstanceStore as TypedToken<InstanceStore>);
  const record = await store.get(uuid, options);
  const token = computeServiceToken(record.host);
  if (!container.isRegistered(token, true)) {
    throw new InvalidInputError("host", `instance ${uuid} runs on host ${record.host}, which has no ComputeService here`);
  }
  return container.resolve(token);
}
