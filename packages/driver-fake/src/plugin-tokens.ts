/** Injection tokens of the fake plugin (explicit tokens only; apart from plugin.ts so nothing imports in a circle). */
import type { TypedToken } from "@virtkit/core";
import type { FakeCloud } from "./fake-cloud.js";

/**
 * Context an embedding application or a conformance environment may register for the fake plugin,
 * resolved when the driver is built: a private {@link FakeCloud} (it wins over the `cloud` option,
 * which names a module-level one). An object, so it cannot travel as an option.
 */
export const FAKE_TOKENS = {
  Cloud: Symbol.for("virtkit.fake.Cloud") as TypedToken<FakeCloud>,
} as const;
