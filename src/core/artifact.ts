import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { METRIC_NAMES, metricDefs, type MetricDef } from './metrics';
import { ALL_TRANSFORMS, checkFeatures } from './features';
import type { ForestState } from './isolation-forest';
import { ArtifactError } from '../errors';

export const ARTIFACT_FORMAT = 'infra-anomaly-detector/model';
export const ARTIFACT_FORMAT_VERSION = 1;

const finite = z.number().refine(Number.isFinite, 'must be a finite number');
const int = z.number().int();

const INPUT_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;

const FeatureSchema = z.strictObject({
  name: z.string().min(1),
  /** An input channel; checked against the artifact's inputs after parsing. */
  source: z.string().regex(INPUT_NAME, 'must be an input name'),
  transform: z.enum(ALL_TRANSFORMS),
  unit: z.string(),
  min: finite,
  max: finite.nullable(),
  /** Temporal transforms only (see features.ts); which keys a transform needs is checked after parsing. */
  params: z
    .strictObject({
      window: int.optional(),
      span: int.optional(),
      horizon: int.optional(),
      period: int.optional(),
      tolerance: int.optional(),
    })
    .optional(),
});

const ForestSchema = z.strictObject({
  n_features: int.min(1),
  subsample: int.min(2),
  height_limit: int.min(1),
  roots: z.array(int.min(0)).min(1),
  feature: z.array(int.min(-1)),
  threshold: z.array(finite),
  left: z.array(int.min(-1)),
  size: z.array(int.min(0)),
});

/** The zod schema of a model artifact (format version 1). */
export const ArtifactSchema = z.strictObject({
  format: z.literal(ARTIFACT_FORMAT),
  format_version: z.literal(ARTIFACT_FORMAT_VERSION),
  version: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/),
  /**
   * Input channels, in the column order of the raw rows the model scores. Absent: the
   * three host metrics (METRIC_NAMES), as in every artifact before inputs existed.
   */
  inputs: z.array(z.string().regex(INPUT_NAME, 'must be an input name')).min(1).optional(),
  /**
   * The declaration of each input (same order as `inputs`): unit and valid range, from
   * which /detect, /validate, the poller and the Kafka source take their rules. Absent:
   * the presets' declarations for known names (see core/metrics.ts), else unitless.
   */
  metrics: z
    .array(z.strictObject({ name: z.string().regex(INPUT_NAME), unit: z.string().min(1).max(64), min: finite, max: finite.nullable() }))
    .min(1)
    .optional(),
  features: z.array(FeatureSchema).min(1),
  scaler: z.strictObject({ mean: z.array(finite), scale: z.array(finite.refine((v) => v > 0, 'must be positive')) }),
  forest: ForestSchema,
  threshold: z.strictObject({
    value: finite,
    method: z.enum(['contamination', 'explicit']),
    contamination: finite.nullable(),
  }),
  /**
   * Scoring options beyond the plain forest. Absent: plain Isolation Forest scores.
   * `out_of_range_weight` w > 0: a point outside the training range of some features is
   * isolated at the root with probability p = min(1, w * mean over features of
   * gap / (range + gap)), as if the root split were drawn over the range widened to
   * include the point; its path length becomes p + (1 - p) * h. Inside the range
   * nothing changes. This makes the score grow with how far a point leaves the range,
   * which plain Isolation Forest scores do not.
   *
   * `out_of_range_pool` (absent: `feature_mean`): how the features' shares gap / (range +
   * gap) make the mean above. `feature_mean`: the mean over all features (one input far
   * out of range weighs 1/features). `input_max`: the mean over the inputs of each input's
   * largest share, so one input leaving its range counts 1/inputs whatever the number of
   * features derived from it (only its largest feature is charged).
   *
   * `out_of_range_min_span` s >= 0 (absent: 0): a feature's range counts as at least s, in
   * the feature's own (unscaled) units, in gap / (range + gap): a feature that was
   * constant in training (an excess over the extremes that was always 0) does not make the
   * smallest step outside it a share of 1.
   *
   * `novelty_weight` b in [0, 1] (absent: 0): the score becomes (1 - b) * s + b * (1 - exp(-e)),
   * where e is the largest of the point's declared rolling and level max/min excess
   * features (how far, in asinh robust units, it or its recent level leaves the range of
   * its own look-back; 0 inside it). The forest judges how rare a point is among the
   * training rows; this term adds, deterministically, how new it is for its own series.
   */
  scoring: z
    .strictObject({
      out_of_range_weight: finite.refine((v) => v >= 0, 'must be >= 0'),
      out_of_range_pool: z.enum(['feature_mean', 'input_max']).optional(),
      out_of_range_min_span: finite.refine((v) => v >= 0, 'must be >= 0').optional(),
      novelty_weight: finite.refine((v) => v >= 0 && v <= 1, 'must be in [0, 1]').optional(),
    })
    .optional(),
  training: z.strictObject({
    rows: int.min(1),
    data_sha256: z.string().regex(/^[0-9a-f]{64}$/),
    seed: int,
    params: z.record(z.string(), z.union([z.number(), z.string(), z.null()])),
    metrics: z.record(z.string(), z.union([z.number(), z.null()])),
    /** Deciles (0, 0.1, ..., 1) of each feature in the training data, for drift checks. */
    feature_quantiles: z.array(z.array(finite).length(11)),
    created_at: z.string(),
  }),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /**
   * Optional keyed signature: HMAC-SHA256 under a secret key of the `sha256` field (which
   * covers every other field). With MODEL_SIGNING_KEY set the service refuses artifacts
   * without a valid one; anyone who can write the file can recompute `sha256`, not this.
   */
  signature: z.strictObject({ alg: z.literal('hmac-sha256'), value: z.string().regex(/^[0-9a-f]{64}$/) }).optional(),
});

export type ModelArtifact = z.infer<typeof ArtifactSchema>;
/** How out-of-range shares are pooled (artifact `scoring.out_of_range_pool`; absent: `feature_mean`). */
export type OutOfRangePool = 'feature_mean' | 'input_max';
export type UnsignedArtifact = Omit<ModelArtifact, 'sha256' | 'signature'>;

/**
 * The largest forest an artifact may hold, checked right after JSON parsing and before
 * any per-node work: scoring cost grows with trees times depth, and a 50 MB forest made a
 * 10,000-point /detect take 20 s; at these limits (1,000 trees of height 12 at most) a
 * 10,000-point /detect scores in about 1.6 s on a busy 2-core machine. Training refuses
 * grids beyond them (see pipeline.ts).
 */
export const FOREST_LIMITS = { trees: 1000, subsample: 4096, nodes: 2_500_000, features: 256 } as const;
export type ForestLimits = { readonly [K in keyof typeof FOREST_LIMITS]: number };

/** Default largest artifact file (MODEL_MAX_BYTES), bytes. */
export const DEFAULT_MAX_ARTIFACT_BYTES = 128 * 1024 * 1024;

/** How parseArtifact bounds and authenticates what it reads. */
export interface ParseOptions {
  /** Longest text accepted, checked before parsing; default DEFAULT_MAX_ARTIFACT_BYTES. */
  maxBytes?: number;
  /** Default FOREST_LIMITS. */
  limits?: ForestLimits;
  /** With a key, an artifact must carry a valid HMAC `signature` under it. */
  signingKey?: string;
}

/** The artifact's input channels: its `inputs`, or the three host metrics if it has none. */
export function artifactInputs(a: Pick<ModelArtifact, 'inputs'>): readonly string[] {
  return a.inputs ?? METRIC_NAMES;
}

/** The declaration (unit, valid range) of each of the artifact's inputs, in their order. */
export function artifactMetrics(a: Pick<ModelArtifact, 'inputs' | 'metrics'>): MetricDef[] {
  return metricDefs(artifactInputs(a), a.metrics);
}

export { ArtifactError };

/**
 * Precomputed JSON of top-level values, by identity: `texts.get(v)` must be exactly
 * `JSON.stringify(v)`, for a value its owner built and no longer changes (training passes
 * its forest's JSON, which it hashes twice, so that it is serialised once).
 */
export type JsonTexts = ReadonlyMap<unknown, string>;

/**
 * sha256 (hex) of `JSON.stringify(obj)` for a plain object, fed to the hash one top-level
 * field at a time instead of building the whole string: `{`, then per own enumerable key
 * whose value serialises (JSON.stringify skips undefined, functions and symbols) the
 * quoted key, `:` and the value's JSON (from `texts` when given), comma-separated, then `}`.
 */
export function jsonSha256(obj: Record<string, unknown>, texts?: JsonTexts): string {
  const hash = createHash('sha256');
  let sep = '{';
  for (const key of Object.keys(obj)) {
    const value = obj[key];
    const text = texts?.get(value) ?? (JSON.stringify(value) as string | undefined);
    if (text === undefined) continue;
    hash.update(`${sep}${JSON.stringify(key)}:`);
    hash.update(text);
    sep = ',';
  }
  hash.update(sep === '{' ? '{}' : '}');
  return hash.digest('hex');
}

/**
 * sha256 of the artifact's canonical JSON without its own `sha256` and `signature` fields (see
 * {@link jsonSha256} for `texts`).
 */
export function contentHash(a: UnsignedArtifact, texts?: JsonTexts): string {
  const { sha256: _ignored, signature: _signature, ...rest } = a as ModelArtifact;
  return jsonSha256(rest, texts);
}

/** Adds the checksum. Key order is fixed by construction, so the JSON is reproducible. */
export function sign(a: UnsignedArtifact, texts?: JsonTexts): ModelArtifact {
  return { ...a, sha256: contentHash(a, texts) };
}

/** HMAC-SHA256 (hex) of an artifact's checksum under `key`. */
export function hmacOf(sha256: string, key: string): string {
  return createHmac('sha256', key).update(sha256).digest('hex');
}

/** Adds (or replaces) the keyed signature of an artifact whose checksum is already set. */
export function signWithKey(a: ModelArtifact, key: string): ModelArtifact {
  const { signature: _old, ...rest } = a;
  return { ...rest, signature: { alg: 'hmac-sha256', value: hmacOf(a.sha256, key) } };
}

/** The bytes written to disk for an artifact. */
export function serialize(a: ModelArtifact): string {
  return `${JSON.stringify(a)}\n`;
}

/** Converts a forest's state to the artifact's snake_case form and back. */
export function forestToJson(s: ForestState): ModelArtifact['forest'] {
  return {
    n_features: s.nFeatures,
    subsample: s.subsample,
    height_limit: s.heightLimit,
    roots: s.roots,
    feature: s.feature,
    threshold: s.threshold,
    left: s.left,
    size: s.size,
  };
}
export function forestFromJson(f: ModelArtifact['forest']): ForestState {
  return {
    nFeatures: f.n_features,
    subsample: f.subsample,
    heightLimit: f.height_limit,
    roots: f.roots,
    feature: f.feature,
    threshold: f.threshold,
    left: f.left,
    size: f.size,
  };
}

/**
 * Parses and verifies an artifact: JSON, schema, checksum, and internal consistency
 * (dimensions, node references), so that a loaded model can never index out of range.
 * Throws ArtifactError with a one-line reason.
 */
export function parseArtifact(text: string, source = 'model artifact', opts: ParseOptions = {}): ModelArtifact {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_ARTIFACT_BYTES;
  // text.length counts UTF-16 units: at most the UTF-8 byte count, so this never refuses a file within the limit.
  if (text.length > maxBytes)
    throw new ArtifactError(`${source}: ${text.length} characters, more than the limit of ${maxBytes} bytes (MODEL_MAX_BYTES)`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ArtifactError(`${source}: not valid JSON (truncated or corrupted?): ${(e as Error).message}`);
  }
  if (
    raw &&
    typeof raw === 'object' &&
    'format_version' in raw &&
    (raw as { format_version: unknown }).format_version !== ARTIFACT_FORMAT_VERSION
  ) {
    throw new ArtifactError(
      `${source}: format_version ${JSON.stringify((raw as { format_version: unknown }).format_version)} is ` +
        `not supported (this build reads ${ARTIFACT_FORMAT_VERSION})`,
    );
  }
  checkShape(raw, source, opts.limits ?? FOREST_LIMITS);
  const parsed = ArtifactSchema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new ArtifactError(`${source}: invalid at ${first.path.join('.') || '(root)'}: ${first.message}`);
  }
  const a = parsed.data;
  const inputs = artifactInputs(a);
  if (new Set(inputs).size !== inputs.length) throw new ArtifactError(`${source}: invalid at inputs: duplicate input names`);
  if (a.metrics) {
    const i = a.metrics.findIndex((d, k) => d.name !== inputs[k]);
    if (a.metrics.length !== inputs.length || i >= 0)
      throw new ArtifactError(`${source}: invalid at metrics: must declare the inputs (${inputs.join(', ')}) in their order`);
    const j = a.metrics.findIndex((d) => d.max !== null && !(d.max > d.min));
    if (j >= 0) throw new ArtifactError(`${source}: invalid at metrics.${j}.max: must be above min`);
  }
  const bad = checkFeatures(a.features, inputs);
  if (bad) throw new ArtifactError(`${source}: invalid at features.${bad[0].join('.')}: ${bad[1]}`);
  const expected = contentHash(a);
  if (expected !== a.sha256)
    throw new ArtifactError(
      `${source}: checksum mismatch (content sha256 ${expected.slice(0, 12)}..., recorded ${a.sha256.slice(0, 12)}...): the file was modified or corrupted`,
    );
  checkConsistency(a, source);
  if (opts.signingKey !== undefined) {
    if (!a.signature)
      throw new ArtifactError(
        `${source}: unsigned; MODEL_SIGNING_KEY is set, so only artifacts signed with it are loaded (anomaly-detector sign --model FILE)`,
      );
    const expectedMac = Buffer.from(hmacOf(a.sha256, opts.signingKey), 'hex');
    if (!timingSafeEqual(expectedMac, Buffer.from(a.signature.value, 'hex')))
      throw new ArtifactError(`${source}: signature does not match MODEL_SIGNING_KEY: signed with another key, or modified after signing`);
  }
  return a;
}

/**
 * The forest's size from the parsed JSON, before the schema walks its arrays: the number
 * of trees, the subsample, the nodes and the features, each against its limit.
 */
function checkShape(raw: unknown, source: string, limits: ForestLimits): void {
  if (!raw || typeof raw !== 'object') return;
  const o = raw as { features?: unknown; forest?: { roots?: unknown; subsample?: unknown; feature?: unknown } };
  const f = o.forest;
  const over = (what: string, n: number, max: number): never => {
    throw new ArtifactError(`${source}: the forest is too large: ${n} ${what}, more than the limit of ${max}`);
  };
  if (Array.isArray(o.features) && o.features.length > limits.features) over('features', o.features.length, limits.features);
  if (!f || typeof f !== 'object') return;
  if (Array.isArray(f.roots) && f.roots.length > limits.trees) over('trees', f.roots.length, limits.trees);
  if (typeof f.subsample === 'number' && f.subsample > limits.subsample) over('points of subsample', f.subsample, limits.subsample);
  if (Array.isArray(f.feature) && f.feature.length > limits.nodes) over('nodes', f.feature.length, limits.nodes);
}

function checkConsistency(a: ModelArtifact, source: string): void {
  const d = a.features.length;
  const fail = (why: string): never => {
    throw new ArtifactError(`${source}: inconsistent: ${why}`);
  };
  const names = new Set(a.features.map((f) => f.name));
  if (names.size !== d) fail('duplicate feature names');
  if (a.scaler.mean.length !== d || a.scaler.scale.length !== d) fail(`scaler has ${a.scaler.mean.length} features, model declares ${d}`);
  if (a.forest.n_features !== d) fail(`forest has ${a.forest.n_features} features, model declares ${d}`);
  if (a.training.feature_quantiles.length !== d) fail('feature_quantiles does not match the features');
  const f = a.forest;
  const nodes = f.feature.length;
  if (f.threshold.length !== nodes || f.left.length !== nodes || f.size.length !== nodes) fail('forest arrays differ in length');
  if (f.height_limit !== Math.ceil(Math.log2(f.subsample))) fail('height_limit does not match subsample');
  for (const r of f.roots) if (r >= nodes) fail('root out of range');
  for (let i = 0; i < nodes; i++) {
    const feat = f.feature[i];
    if (feat >= d) fail(`node ${i} splits on feature ${feat}`);
    if (feat >= 0) {
      const l = f.left[i];
      if (l <= i || l + 1 >= nodes) fail(`node ${i} has children out of range`);
      if (f.size[l] + f.size[l + 1] !== f.size[i]) fail(`node ${i} sizes do not add up`);
    } else if (f.left[i] !== -1) fail(`leaf ${i} has children`);
  }
  // Children after parents and bounded depth: rules out cycles as well.
  for (const r of f.roots) {
    const stack: Array<[number, number]> = [[r, 0]];
    while (stack.length) {
      const [node, depth] = stack.pop() as [number, number];
      if (depth > f.height_limit) fail('a tree is deeper than its height limit');
      if (f.feature[node] >= 0) stack.push([f.left[node], depth + 1], [f.left[node] + 1, depth + 1]);
    }
  }
}
