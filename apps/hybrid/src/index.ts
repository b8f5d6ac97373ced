/**
 * @hybrid/cli as a library: doctor, plan, config, log diagnosis and the stack's bring-up/teardown.
 */
export { ConfigSchema, DEFAULT_CONFIG, ConfigError, loadConfig, validateConfig, type HybridConfig } from "./config.js";
export { runDoctor, layerNeeds, formatFindings, LAYER_ORDER, REQUIRED_CONTROLLERS, type Findings, type LayerName, type LayerNeed } from "./doctor/index.js";
export { parseMountinfo, probeCgroup, probeRootfs, probeSandbox, type MountInfo, type SandboxKind } from "./doctor/probes.js";
export { FS_MAGIC, magicHex, magicName, cadvisorAccepts } from "./doctor/magic.js";
export { SIGNATURES, diagnoseLine, diagnoseLog, type Diagnosis, type Signature, type FixLayer } from "./diagnose.js";
export { buildPlan, type Plan } from "./plan.js";
export { readState, resolveStateDir, type StackState, type LayerRecord } from "./state.js";
export { bringUp, tearDown } from "./stack.js";
export { runSoak, type SoakReport } from "./commands/soak.js";
export { parseDuration } from "./output.js";
