/**
 * @hybrid/ptrace-shim: a seccomp-filtered ptrace tracer (statfs/fstatfs type rewrite, path
 * redirection, synthesized mountinfo and cgroup files, a /proc/sys shadow store, a /dev/kmsg
 * stand-in, a uname release override) and its TypeScript API. See README.md.
 */
export {
  FS_MAGIC,
  FsTypeSchema,
  MountAddSchema,
  MountRewriteSchema,
  RedirectSchema,
  RulesBuilder,
  ShimRulesError,
  ShimRulesSchema,
  StatfsRuleSchema,
  defaultProcSys,
  readRules,
  realCapLastCap,
  sandboxRules,
  seedShadowDir,
  validateRules,
  writeRules,
  writeRulesSync,
} from "./rules.js";
export type { FsName, FsType, Redirect, SandboxRulesOptions, ShimRules, StatfsRule } from "./rules.js";
export { helperPath, probePtrace, spawnTraced, tracedArgv, tracedWrap, tracerPath } from "./tracer.js";
export type { PtraceProbe, SpawnTracedOptions, TracedArgvOptions, TracedExit, TracedProcess } from "./tracer.js";
