export { explore, exploreEnvironment, formatExploreResult, newInstance, withExploreErrors, EXPLORE_OPERATIONS } from "./explore.js";
export type { ExploreOptions, ExploreResult, TargetProvider } from "./explore.js";
export { ExploreSession, ExploreDivergence } from "./session.js";
export { EXPLORE_SCENARIO, EXPLORE_SCENARIO_SEED, EXPLORE_SCENARIO_BUDGET, checkExploreFixedSeed } from "./explore-scenario.js";
export type { ExploreTarget, SessionSettings, StepSpec, ModelInstance, ModelSnapshot } from "./session.js";
export {
  expectationsFor,
  explainingSequences,
  judge,
  configPower,
  describeExpectation,
} from "./model.js";
export type { Config, Expectation, ModelOperation, Observation, Verdict } from "./model.js";
