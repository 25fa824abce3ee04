/**
 * The MigrationPolicy in XenAPI's terms. Inside a pool (shared storage) a live migration is
 * `VM.pool_migrate(vm, host, options)`; without shared storage (another pool) it is the block
 * migration path `VM.migrate_send(vm, dest, live, vdi_map, vif_map, options, vgpu_map)`. Both take
 * string options; XAPI has no tunnel, TLS switch, post-copy or auto-converge to ask for, so a
 * policy that needs one is refused as unsupported, never silently dropped.
 */
import {
  InvalidInputError,
  UnsupportedOperationError,
  validateMigrationPolicy,
  type MigrationPlan,
  type MigrationPolicy,
} from "@virtkit/core";

/** The plan scheme of this driver. */
export const XENAPI_PLAN_SCHEME = "xenapi";

/** The plan for `policy` (pure). `driver` names the driver in refusals. */
export function planXenapiMigration(policy: MigrationPolicy, driver = "xenapi"): MigrationPlan {
  if (typeof policy !== "object" || policy === null) validateMigrationPolicy(policy, "policy");
  // What XAPI cannot do is refused as unsupported before the policy's own consistency is judged.
  if (policy.tunnelled === true) {
    throw new UnsupportedOperationError("tunnelledMigration", driver, { detail: "XAPI has no tunnelled migration" });
  }
  if (policy.nativeTls === true) {
    throw new UnsupportedOperationError("nativeTlsMigration", driver, { detail: "XAPI has no migration TLS switch" });
  }
  if (policy.permitPostCopy === true) {
    throw new UnsupportedOperationError("postCopy", driver, { detail: "XAPI migrates pre-copy only" });
  }
  if (policy.permitAutoConverge === true) {
    throw new UnsupportedOperationError("autoConverge", driver, { detail: "XAPI has no auto-converge option" });
  }
  validateMigrationPolicy(policy, "policy");
  if (!Number.isInteger(policy.parallelConnections) || policy.parallelConnections < 1) {
    throw new InvalidInputError("policy.parallelConnections", "must be an integer >= 1");
  }
  const call = policy.block ? "migrate_send" : "pool_migrate";
  const flags = policy.live ? [call, "live"] : [call];
  return {
    scheme: XENAPI_PLAN_SCHEME,
    flags,
    // XAPI's options are strings (live, ...); parallel streams are XAPI's own business.
    params: {
      call,
      live: policy.live ? "true" : "false",
      // Carried so the plan shows them; XAPI has neither knob: a cap is refused at the
      // destination check, the downtime is XAPI's own (see README).
      bandwidth: policy.bandwidthMiBps,
      max_downtime_ms: policy.maxDowntimeMs,
    },
  };
}

/** The `options` map of pool_migrate / migrate_send for a plan. */
export function xapiMigrateOptions(plan: MigrationPlan): Record<string, string> {
  return { live: plan.params.live === "true" ? "true" : "false" };
}
