/**
 * Sustained-anomaly gating, as the prototype did it: an alert needs N consecutive raw
 * anomalies on the same host and a surge (some metric at or above its surge level), so
 * a single noisy point or an unusually idle host does not page anyone. An optional
 * cooldown suppresses repeated alerts after one fires (operators and NAB both reward it).
 */
export interface GateOptions {
  /** Consecutive raw anomalies needed (>= 1). */
  consecutive: number;
  /** Surge levels; null disables the surge condition. */
  surge: { cpu_usage: number; memory_usage: number; network_load: number } | null;
  /** After an alert, suppress further alerts for this long (ms). 0: off. */
  cooldownMs: number;
}

export const DEFAULT_GATE: GateOptions = {
  consecutive: 3,
  surge: { cpu_usage: 10, memory_usage: 30, network_load: 15000 },
  cooldownMs: 0,
};

/** Per-host gate state: small, so millions of hosts fit. */
export interface GateState {
  run: number;
  lastAlert: number;
}

export const newGateState = (): GateState => ({ run: 0, lastAlert: -Infinity });

/**
 * Advances `state` by one point (in time order) and returns whether it raises an alert.
 */
export function gate(opts: GateOptions, state: GateState, rawAnomaly: boolean, time: number, cpu: number, memory: number, network: number): boolean {
  state.run = rawAnomaly ? state.run + 1 : 0;
  if (state.run < opts.consecutive) return false;
  const s = opts.surge;
  if (s && !(cpu >= s.cpu_usage || memory >= s.memory_usage || network >= s.network_load)) return false;
  if (opts.cooldownMs > 0 && time - state.lastAlert < opts.cooldownMs) return false;
  state.lastAlert = time;
  return true;
}
