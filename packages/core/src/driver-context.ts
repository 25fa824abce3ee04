/**
 * @internal Links a driver built by a `DriverRegistry` to the image service and logger of its
 * container, so a `ComputeService` given only the driver uses the same image service the driver
 * uploads snapshots to. Kept apart from the registry so the service never imports tsyringe.
 */
import type { ComputeDriver } from "./driver.js";
import type { ImageService } from "./image-service.js";
import type { Logger } from "./logger.js";

/** @internal The services a driver was built with. */
export interface DriverServices {
  readonly imageService: ImageService;
  readonly logger: Logger;
}

const services = new WeakMap<ComputeDriver, DriverServices>();

/** @internal */
export function setDriverServices(driver: ComputeDriver, value: DriverServices): void {
  services.set(driver, value);
}

/** @internal The services `driver` was built with by a registry, if any. */
export function getDriverServices(driver: ComputeDriver): DriverServices | undefined {
  return services.get(driver);
}
