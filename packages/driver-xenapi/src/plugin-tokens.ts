/** Injection tokens of the xenapi plugin (explicit tokens only; kept apart so nothing imports in a circle). */

/**
 * Tokens an embedding application (or the conformance environment) may register for this plugin:
 * where to connect (its password a Secret, never an option) and a hook run before every XAPI call.
 */
export const XENAPI_TOKENS = {
  /** A {@link XenapiTarget}: url, username and password; wins over the `url` option. */
  Target: Symbol.for("virtkit.xenapi.Target"),
  /** `(method, signal) => Promise<void>`, run before every XAPI call (latency injection in tests). */
  BeforeCall: Symbol.for("virtkit.xenapi.BeforeCall"),
} as const;

