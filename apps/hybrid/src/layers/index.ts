import type { LayerName } from "../doctor/index.js";
import { cgroupfsLayer } from "./cgroupfs.js";
import { fakeCniLayer } from "./fake-cni.js";
import { ptraceShimLayer } from "./ptrace-shim.js";
import { runtimeLayer } from "./runtime.js";
import type { Layer } from "./types.js";

export const LAYERS: Record<LayerName, Layer> = {
  cgroupfs: cgroupfsLayer,
  "fake-cni": fakeCniLayer,
  "ptrace-shim": ptraceShimLayer,
  runtime: runtimeLayer,
};
export type { Layer, LayerContext, ProbeResult } from "./types.js";
