/** The raw metrics the service reads from Telegraf and accepts on /detect, in this order. */
export const METRIC_NAMES = ['cpu_usage', 'memory_usage', 'network_load'] as const;
export type MetricName = (typeof METRIC_NAMES)[number];

/** Unit and valid range of each raw metric (the validation rules use these). */
export const METRICS: Record<MetricName, { unit: string; min: number; max: number | null }> = {
  cpu_usage: { unit: 'percent', min: 0, max: 100 },
  memory_usage: { unit: 'percent', min: 0, max: 100 },
  network_load: { unit: 'bytes/s', min: 0, max: null },
};

/** One observation of a host, as /detect and the poller receive it. */
export interface MetricPoint {
  host?: string;
  /** Epoch milliseconds or RFC 3339. */
  timestamp?: string | number;
  cpu_usage: number;
  memory_usage: number;
  network_load: number;
}

/** True if two lists of names are equal, in order. */
export function sameNames(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((name, i) => name === b[i]);
}

/** True if `inputs` are the three host metrics in METRIC_NAMES order (the service's inputs). */
export const isHostMetrics = (inputs: readonly string[]): boolean => sameNames(inputs, METRIC_NAMES);
