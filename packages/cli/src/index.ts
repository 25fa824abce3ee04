export { COMMANDS } from "./commands/index.js";
export { runSuite, CLI_DIR } from "./run-suite.js";
export type { RunSuiteOptions } from "./run-suite.js";
export { environmentConfigurations } from "./commands/matrix.js";
export type { MatrixConfiguration } from "./commands/matrix.js";
export type { MatrixResult } from "./commands/matrix.js";
export type { InstalledDriver } from "./commands/drivers.js";
export type { ListedScenario } from "./commands/conformance/list.js";
