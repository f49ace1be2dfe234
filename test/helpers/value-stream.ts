import type { FeatureSpec } from '../../src/core/features';
import type { LearningOptions, StreamingOptions } from '../../src/core/streaming';

/** One raw feature of one input, `value`. */
export const VALUE_FEATURE: FeatureSpec[] = [{ name: 'value', source: 'value', transform: 'raw', unit: 'v', min: -1e300, max: null }];

/**
 * A small streaming detector of one raw input whose refits are all skipped (one model
 * scores the streams a test compares), with its learning options given.
 */
export function valueStreamOptions(learning: LearningOptions, refitWindow = 10_000): StreamingOptions {
  return {
    features: VALUE_FEATURE,
    inputs: ['value'],
    anyInputs: true,
    nEstimators: 20,
    maxSamples: 32,
    seed: 3,
    contamination: 0.02,
    outOfRangeWeight: 4,
    refitIntervalMs: 0,
    refitWindow,
    // Every refit skipped: one model scores the streams compared.
    minRefitRows: 1e9,
    gate: { consecutive: 3, surge: null, cooldownMs: 0 },
    learning,
  };
}
