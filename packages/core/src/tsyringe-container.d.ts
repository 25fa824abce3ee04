// tsyringe's container module on its own: the package's index refuses to load without a global
// Reflect metadata polyfill, which only decorator-based injection needs (virtkit injects by token).
declare module "tsyringe/dist/cjs/dependency-container.js" {
  import type { DependencyContainer } from "tsyringe";
  /** tsyringe's root container (what `import { container } from "tsyringe"` gives). */
  export const instance: DependencyContainer;
}
