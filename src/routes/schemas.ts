import { z } from 'zod';
import { ErrorCode } from '../errors';
import { PointSchema } from '../validation/point';

/** zod schema for each JSON Schema handed to Fastify, so the validator runs zod. */
const zodOf = new WeakMap<object, z.ZodType>();

/** What the OpenAPI description shows for a schema validated more loosely on the wire. */
const docsOf = new WeakMap<object, Record<string, unknown>>();

/** A check that says yes only to what the zod schema accepts unchanged (see schemaOf). */
const fastOf = new WeakMap<object, (data: unknown) => boolean>();

const JSON_SCHEMA_OPTIONS = { target: 'openapi-3.0', io: 'input', unrepresentable: 'any' } as const;

const toJson = (s: z.ZodType): Record<string, unknown> => z.toJSONSchema(s, JSON_SCHEMA_OPTIONS) as Record<string, unknown>;

/**
 * Converts a zod schema to the JSON Schema Fastify sees, remembering the pair. With
 * `docs` (a reference to a shared schema, see `ref`), Fastify validates with `s` while
 * OpenAPI documents `docs`. With `fast`, a body it says yes to is taken as it is, without
 * zod (which copies it); `fast` must only say yes where `s` accepts the body unchanged,
 * and every "no" goes to `s` for the messages.
 */
export function schemaOf(s: z.ZodType, docs?: Record<string, unknown>, fast?: (data: unknown) => boolean): Record<string, unknown> {
  const json = toJson(s);
  zodOf.set(json, s);
  if (docs) docsOf.set(json, docs);
  if (fast) fastOf.set(json, fast);
  return json;
}

/** The fast check paired with a JSON Schema by `schemaOf`, if any. */
export function fastCheckFor(json: object): ((data: unknown) => boolean) | undefined {
  return fastOf.get(json);
}

/** The schema to document for `json` (see schemaOf). */
export function docsFor(json: Record<string, unknown>): Record<string, unknown> {
  return docsOf.get(json) ?? json;
}

/** The zod schema paired with a JSON Schema by `schemaOf`, if any. */
export function zodFor(json: object): z.ZodType | undefined {
  return zodOf.get(json);
}

/** /validate and /detect accept this shape first; each point is then checked on its own. */
export const PointsEnvelopeSchema = z.strictObject({
  points: z.array(z.unknown()).min(1, 'must hold at least 1 point'),
});

/**
 * PointsEnvelopeSchema with at most `maxPoints` points, written out: an object whose only
 * own key is `points`, an array of 1 to `maxPoints` entries (the points themselves are
 * checked one by one later). Says yes only where the schema does (a test checks this).
 */
export function isPointsEnvelope(body: unknown, maxPoints: number): boolean {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return false;
  let keys = 0;
  for (const k in body) {
    if (k !== 'points' || !Object.prototype.hasOwnProperty.call(body, k)) return false;
    keys++;
  }
  const points = (body as { points?: unknown }).points;
  return keys === 1 && Array.isArray(points) && points.length >= 1 && points.length <= maxPoints;
}

/**
 * A point as the OpenAPI description shows it: PointSchema's fields, the three metrics of
 * the first form optional, and `metrics` by name. Which metrics a point must give, and
 * their ranges, are the loaded model's declarations (the ranges shown are the basic set's).
 */
export const DocumentedPointSchema = PointSchema.extend({
  cpu_usage: PointSchema.shape.cpu_usage.optional(),
  memory_usage: PointSchema.shape.memory_usage.optional(),
  network_load: PointSchema.shape.network_load.optional(),
  metrics: z
    .record(z.string().regex(/^[a-z][a-z0-9_]{0,62}$/), z.number())
    .optional()
    .describe(
      "The point's metrics by name (e.g. disk_read_bytes), beside or instead of the three top-level fields; " +
        "together they give every metric of the model's set, each once (a metric in both must have the same value there). " +
        "Names, units and ranges are the model's declarations; an unknown name is a 400.",
    ),
}).describe(
  "One observation of a host. Every metric of the loaded model's set is required, as a top-level field (cpu_usage, " +
    'memory_usage, network_load: the basic set) or under metrics; the bundled model takes the basic set, so the three ' +
    'top-level fields alone are a complete point.',
);

/** Body of /detect and /validate. */
export const PointsBodySchema = z.strictObject({
  points: z.array(DocumentedPointSchema).min(1),
});

const Contributions = z
  .record(z.string(), z.number())
  .describe(
    "One entry per metric of the model's set, in its order (the basic set: cpu_usage, memory_usage, network_load): " +
      "expected path length saved by each metric's splits, averaged over trees; they add up to c(psi) - E[h(x)]; " +
      'positive pushes towards anomalous',
  );

const PointResultSchema = z.object({
  host: z.string().nullable(),
  timestamp: z.string().nullable().describe('RFC 3339, as given or converted from epoch ms; null when not given'),
  score: z.number().describe('s(x) = 2^(-E[h(x)]/c(psi)) in (0, 1]; higher is more anomalous'),
  threshold: z.number(),
  is_anomaly: z.boolean(),
  severity: z.number().describe('score / threshold'),
  contributions: Contributions,
  learning: z
    .boolean()
    .optional()
    .describe('DETECT_LEARN only: the host is still learning (judged by the prior, the loaded model, at its blatant level)'),
  alert: z
    .boolean()
    .optional()
    .describe('DETECT_LEARN only: the alert gate fired (sustained anomaly of the host); is_anomaly is the raw verdict'),
});

export const DetectResponseSchema = z.object({
  model: z.object({ version: z.string().describe('Version of the model that scored the points ("learned" with DETECT_LEARN)') }),
  results: z.array(PointResultSchema).describe('One result per point, in the order of the request'),
});

const PointIssue = z.object({
  field: z.string(),
  message: z.string(),
  // Absent when the field is missing.
  value: z.unknown().optional(),
});

const PointVerdict = z.object({
  index: z.number().int(),
  valid: z.boolean(),
  issues: z.array(PointIssue),
  issues_omitted: z
    .number()
    .int()
    .optional()
    .describe('Issues of this point not listed (at most 20 are listed per point, 100 per request)'),
});

export const ValidateResponseSchema = z.object({
  valid: z.boolean().describe('Every point is valid'),
  results: z.array(PointVerdict).describe('One verdict per point, in the order of the request'),
  issues_omitted: z.number().int().optional().describe('Issues not listed in all'),
});

const ErrorDetail = z.object({
  index: z.number().int().optional().describe('Index of the point in the request'),
  field: z.string(),
  message: z.string(),
  value: z.unknown().optional(),
});

export const ErrorSchema = z.object({
  error: z.enum(Object.values(ErrorCode)).describe('Error code (the catalogue is ErrorCode in src/errors.ts)'),
  message: z.string().describe('One line saying what went wrong'),
  details: z.array(ErrorDetail),
  details_omitted: z.number().int().optional().describe('Issues not listed in details (at most 20 per point and 100 in all are listed)'),
});

export const HealthSchema = z
  .object({
    status: z.enum(['ok', 'degraded', 'unavailable']),
    model: z.object({ version: z.string(), loaded_at: z.string(), features: z.array(z.string()), source: z.string() }).nullable(),
    uptime_s: z.number(),
  })
  .passthrough()
  .describe('Readiness, with the state of each component (influx, model_source, ...) as further keys');

const LivenessSchema = z.object({ status: z.enum(['alive']) });

export const ReloadResponseSchema = z.object({
  reloaded: z.boolean().describe('Always true (a failed reload is a 422)'),
  model: z.object({ version: z.string(), source: z.string() }),
  previous_version: z.string().nullable(),
});

/**
 * The JSON Schemas shared by the routes, by name: registered with `addSchema` (their
 * `$id` is the name), referenced with `ref(name)`, and the `components.schemas` of the
 * OpenAPI description (src/app.ts names components after their `$id`). A schema nested
 * in another is referenced from it too. PointsRequest's `maxItems` is MAX_POINTS_PER_REQUEST.
 */
export function sharedSchemas(maxPoints: number): Record<string, Record<string, unknown>> {
  const registry = z.registry<{ id: string }>();
  const named: Record<string, z.ZodType> = {
    Point: DocumentedPointSchema,
    PointsRequest: PointsBodySchema.extend({ points: PointsBodySchema.shape.points.max(maxPoints) }),
    Contributions,
    PointResult: PointResultSchema,
    DetectResponse: DetectResponseSchema,
    PointIssue,
    PointVerdict,
    ValidateResponse: ValidateResponseSchema,
    ErrorDetail,
    Error: ErrorSchema,
    Health: HealthSchema,
    Liveness: LivenessSchema,
    ReloadResponse: ReloadResponseSchema,
  };
  for (const [id, s] of Object.entries(named)) registry.add(s, { id });
  const { schemas } = z.toJSONSchema(registry, { ...JSON_SCHEMA_OPTIONS, uri: (id) => `${id}#` }) as {
    schemas: Record<string, Record<string, unknown>>;
  };
  return Object.fromEntries(Object.entries(schemas).map(([id, s]) => [id, { ...s, $id: id }]));
}

/** A reference to a shared schema, with the description of the response it is the body of. */
export function ref(name: string, description?: string): Record<string, unknown> {
  return description === undefined ? { $ref: `${name}#` } : { $ref: `${name}#`, description };
}

/** The error replies, described once; each route lists those it can give. */
const ERROR_REPLIES = {
  400: 'Invalid request: the error body lists the issues (bounded, with a count of those left out)',
  401: 'Missing or wrong bearer token',
  413: 'Body larger than BODY_LIMIT',
  415: 'Not JSON, or compressed (a Content-Encoding other than identity)',
  422: 'The model could not be reloaded; the previous one keeps serving (the message says why)',
  500: 'Internal error (a bug; logged)',
  503: 'Overloaded (event loop delay or requests in progress); retry after Retry-After seconds',
} as const;

/** Error responses (each an Error body) for the given status codes; `described` overrides descriptions. */
export function errorReplies(
  codes: (keyof typeof ERROR_REPLIES)[],
  described: Partial<Record<keyof typeof ERROR_REPLIES, string>> = {},
): Record<string, Record<string, unknown>> {
  return Object.fromEntries(codes.map((c) => [String(c), ref('Error', described[c] ?? ERROR_REPLIES[c])]));
}

/** The bearer tokens, as OpenAPI security schemes. */
export const SECURITY_SCHEMES = {
  apiToken: {
    type: 'http',
    scheme: 'bearer',
    description: 'API_TOKEN: needed by /detect and /validate when it is set (unset: they are open)',
  },
  adminToken: {
    type: 'http',
    scheme: 'bearer',
    description: 'ADMIN_TOKEN: needed by /admin/reload, which exists only when it is set',
  },
} as const;
