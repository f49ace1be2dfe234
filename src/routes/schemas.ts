import { z } from 'zod';
import { PointSchema } from '../validation/point';

/** zod schema for each JSON Schema handed to Fastify, so the validator runs zod. */
const zodOf = new WeakMap<object, z.ZodType>();

/** What the OpenAPI description shows for a schema validated more loosely on the wire. */
const docsOf = new WeakMap<object, Record<string, unknown>>();

const toJson = (s: z.ZodType): Record<string, unknown> =>
  z.toJSONSchema(s, { target: 'openapi-3.0', io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;

/**
 * Converts a zod schema to the JSON Schema Fastify and OpenAPI see, remembering the
 * pair. With `docs`, Fastify validates with `s` while OpenAPI documents `docs`.
 */
export function schemaOf(s: z.ZodType, docs?: z.ZodType): Record<string, unknown> {
  const json = toJson(s);
  zodOf.set(json, s);
  if (docs) docsOf.set(json, toJson(docs));
  return json;
}

/** The schema to document for `json` (see schemaOf). */
export function docsFor(json: Record<string, unknown>): Record<string, unknown> {
  return docsOf.get(json) ?? json;
}

/** The zod schema paired with a JSON Schema by `schemaOf`, if any. */
export function zodFor(json: object): z.ZodType | undefined {
  return zodOf.get(json);
}

/** Body of /detect and /validate. */
export const PointsBodySchema = z.strictObject({
  points: z.array(PointSchema).min(1),
});

/** /validate and /detect accept this shape first; each point is then checked on its own. */
export const PointsEnvelopeSchema = z.strictObject({
  points: z.array(z.unknown()).min(1, 'must hold at least 1 point'),
});

const Contributions = z.object({ cpu_usage: z.number(), memory_usage: z.number(), network_load: z.number() });

export const DetectResponseSchema = z.object({
  model: z.object({ version: z.string() }),
  results: z.array(
    z.object({
      host: z.string().nullable(),
      timestamp: z.string().nullable().describe('RFC 3339, as given or converted from epoch ms; null when not given'),
      score: z.number().describe('s(x) = 2^(-E[h(x)]/c(psi)) in (0, 1]; higher is more anomalous'),
      threshold: z.number(),
      is_anomaly: z.boolean(),
      severity: z.number().describe('score / threshold'),
      contributions: Contributions.describe(
        "Expected path length saved by each metric's splits; they add up to c(psi) - E[h(x)]; positive pushes towards anomalous",
      ),
      learning: z
        .boolean()
        .optional()
        .describe('DETECT_LEARN only: the host is still learning (judged by the prior, the loaded model, at its blatant level)'),
      alert: z
        .boolean()
        .optional()
        .describe('DETECT_LEARN only: the alert gate fired (sustained anomaly of the host); is_anomaly is the raw verdict'),
    }),
  ),
});

export const ValidateResponseSchema = z.object({
  valid: z.boolean(),
  results: z.array(
    z.object({
      index: z.number().int(),
      valid: z.boolean(),
      issues: z.array(z.object({ field: z.string(), message: z.string(), value: z.unknown() })),
      issues_omitted: z
        .number()
        .int()
        .optional()
        .describe('Issues of this point not listed (at most 20 are listed per point, 100 per request)'),
    }),
  ),
  issues_omitted: z.number().int().optional().describe('Issues not listed in all'),
});

export const ErrorSchema = z.object({
  error: z.string(),
  message: z.string(),
  details: z.array(z.object({ index: z.number().int().optional(), field: z.string(), message: z.string(), value: z.unknown().optional() })),
  details_omitted: z.number().int().optional().describe('Issues not listed in details (at most 20 per point and 100 in all are listed)'),
});

export const HealthSchema = z.object({
  status: z.enum(['ok', 'degraded', 'unavailable']),
  model: z.object({ version: z.string(), loaded_at: z.string(), features: z.array(z.string()), source: z.string() }).nullable(),
  uptime_s: z.number(),
});
