/**
 * tsyringe helpers that need no global `reflect-metadata`: a fresh container for a service or a
 * test, and a caching factory for a plugin's `register`. Use these instead of importing
 * tsyringe's index, which refuses to load without the polyfill (only decorators need it).
 */
import type { DependencyContainer } from "tsyringe";
import { instance as rootContainer } from "tsyringe/dist/cjs/dependency-container.js";

/** A new child of tsyringe's root container (the same root `import { container } from "tsyringe"` gives). */
export function createContainer(): DependencyContainer {
  return rootContainer.createChildContainer();
}

/**
 * `factory` called once, on first resolve; its result is returned afterwards (tsyringe's
 * `instanceCachingFactory`, without tsyringe's index).
 */
export function cachedFactory<T>(factory: (container: DependencyContainer) => T): (container: DependencyContainer) => T {
  let made = false;
  let value: T;
  return (container) => {
    if (!made) {
      value = factory(container);
      made = true;
    }
    return value;
  };
}
