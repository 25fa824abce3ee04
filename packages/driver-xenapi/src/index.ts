export { XenapiDriver, XENAPI_CAPABILITIES } from "./xenapi-driver.js";
export type { XenapiDriverOptions, XenapiTarget, DriverLogger } from "./xenapi-driver.js";
export { XapiClient, LOGIN_VERSION, isNullRef } from "./xapi-client.js";
export type { XapiClientOptions, CallOptions, XapiEvent, XapiEventBatch, XapiProtocol, ClientLogger } from "./xapi-client.js";
export { XapiError, XapiTransportError, isXapiError } from "./xapi-error.js";
export { XapiFloat, encodeMethodCall, decodeMethodResponse, decodeValueFragment, encodeMethodResponse } from "./xml-rpc.js";
export type { XapiValue } from "./xml-rpc.js";
export { mapXapiError } from "./error-map.js";
export type { ErrorContext } from "./error-map.js";
export {
  AGENT_DH_PRIME,
  AGENT_DH_BASE,
  AgentKeyExchange,
  modPow,
  evpBytesToKeyMd5,
  encryptForAgent,
  decryptAsAgent,
} from "./agent-crypto.js";
export { planXenapiMigration, XENAPI_PLAN_SCHEME } from "./migration-plan.js";
export { transitionFor } from "./vm-events.js";
export { resolveXenapiPassword, PASSWORD_ENV } from "./password-source.js";
export { plugin, xenapiOptionsSchema, PLUGIN_VERSION } from "./plugin.js";
export { XENAPI_TOKENS } from "./plugin-tokens.js";
export type { XenapiPluginOptions } from "./plugin.js";
export { createXenapiConformanceEnvironment, SIMULATOR_NOTE, realHostLimits } from "./conformance-environment.js";
export type { XenapiConformanceOptions } from "./conformance-environment.js";
