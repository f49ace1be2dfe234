/** The InfluxDB layer: one interface (MetricsStore), two adapters, and the quoting they rely on. */
import { InfluxV1Store, type InfluxV1Options } from './v1';
import { InfluxV2Store, type InfluxV2Options } from './v2';
import type { MetricsStore } from './types';

export * from './types';
export * from './line-protocol';
export { quoteIdent, quoteString, timeLiteral, quoteMeasurement, tagCondition, tagInCondition, exactRegex, regexLiteral } from './influxql';
export { fluxString, fluxTime, fluxColumn, fluxStringArray } from './flux';
export { InfluxV1Store, type InfluxV1Options } from './v1';
export { InfluxV2Store, type InfluxV2Options, readSeriesFlux, latestTimesFlux, tagValuesFlux } from './v2';

/** Adapter options tagged with the API version. */
export type MetricsStoreOptions = ({ version: 'v1' } & InfluxV1Options) | ({ version: 'v2' } & InfluxV2Options);

/** Builds the adapter for `options.version`. */
export function createMetricsStore(options: MetricsStoreOptions): MetricsStore {
  return options.version === 'v1' ? new InfluxV1Store(options) : new InfluxV2Store(options);
}
