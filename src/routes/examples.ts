/**
 * Request and response examples of the OpenAPI description, by operationId. The values
 * are real: the responses are what the bundled model (models/model.json) answers to the
 * requests, and test/api/operations.test.ts checks that they still are.
 */

/** An OpenAPI Example Object. */
export interface Example {
  summary: string;
  value: unknown;
}

/** The examples of one operation: of its request body, and of its responses by status. */
export interface OperationExamples {
  request?: Record<string, Example>;
  responses?: Record<string, Record<string, Example>>;
}

const DETECT_REQUEST = {
  points: [
    { host: 'web-1', timestamp: '2026-01-05T10:00:00Z', cpu_usage: 23, memory_usage: 41, network_load: 350000 },
    { host: 'web-1', timestamp: '2026-01-05T10:01:00Z', cpu_usage: 99, memory_usage: 97, network_load: 9000000 },
  ],
};

/** DETECT_REQUEST with the metrics by name (the second point mixes both forms): the same results. */
const DETECT_NAMED_REQUEST = {
  points: [
    { host: 'web-1', timestamp: '2026-01-05T10:00:00Z', metrics: { cpu_usage: 23, memory_usage: 41, network_load: 350000 } },
    { host: 'web-1', timestamp: '2026-01-05T10:01:00Z', cpu_usage: 99, metrics: { memory_usage: 97, network_load: 9000000 } },
  ],
};

/** Named metrics the bundled model (the basic set) does not have. */
const VALIDATE_NAMED_REQUEST = {
  points: [
    { host: 'db-1', metrics: { cpu_usage: 12, memory_usage: 40, network_load: 2e5 } },
    { host: 'db-1', cpu_usage: 12, metrics: { cpu_usage: 15, memory_usage: 40, network_load: 2e5, disk_read_bytes: 3e6 } },
  ],
};

const VALIDATE_REQUEST = {
  points: [
    { host: 'web-1', timestamp: '2026-01-05T10:00:00Z', cpu_usage: 23, memory_usage: 41, network_load: 350000 },
    { host: 'web-2', timestamp: '2026-02-30T10:00:00Z', cpu_usage: 120, memory_usage: 41 },
  ],
};

const ISSUES = [
  {
    field: 'timestamp',
    message: 'is not a valid date (a field out of range for its calendar, e.g. 2026-02-30 or T24:00:00)',
    value: '2026-02-30T10:00:00Z',
  },
  { field: 'cpu_usage', message: 'must be <= 100', value: 120 },
  { field: 'network_load', message: 'is required' },
];

const TWO_POINTS_RESULT = {
  model: { version: '20261127-407bfdc01695' },
  results: [
    {
      host: 'web-1',
      timestamp: '2026-01-05T10:00:00.000Z',
      score: 0.42653474455277895,
      threshold: 0.5690454235710656,
      is_anomaly: false,
      severity: 0.7495618572521757,
      contributions: { cpu_usage: -0.7341101858129284, memory_usage: -0.44219851194499654, network_load: -0.8546178645546223 },
    },
    {
      host: 'web-1',
      timestamp: '2026-01-05T10:01:00.000Z',
      score: 0.8035620597158716,
      threshold: 0.5690454235710656,
      is_anomaly: true,
      severity: 1.412122875311233,
      contributions: { cpu_usage: 2.1011865595482373, memory_usage: 2.326599735770966, network_load: 1.6356442074010407 },
    },
  ],
};

export const OPERATION_EXAMPLES: Record<string, OperationExamples> = {
  detect: {
    request: {
      twoPoints: { summary: 'A normal point and a busy one of the same host', value: DETECT_REQUEST },
      namedMetrics: {
        summary: 'The same points with their metrics by name (any metric of the model goes there)',
        value: DETECT_NAMED_REQUEST,
      },
      oneInvalid: { summary: 'The /validate example: its second point is invalid', value: VALIDATE_REQUEST },
    },
    responses: {
      '200': {
        twoPoints: { summary: 'The bundled model flags the busy point (twoPoints)', value: structuredClone(TWO_POINTS_RESULT) },
        namedMetrics: { summary: 'The same points by name, the same results (namedMetrics)', value: structuredClone(TWO_POINTS_RESULT) },
      },
      '400': {
        oneInvalid: {
          summary: 'One invalid point: nothing is scored (oneInvalid)',
          value: {
            error: 'invalid_points',
            message: '1 of 2 point(s) are invalid; nothing was scored',
            details: ISSUES.map(({ field, message, value }) => ({ field, message, index: 1, ...(value === undefined ? {} : { value }) })),
          },
        },
      },
    },
  },
  validate: {
    request: {
      oneInvalid: { summary: 'A valid point and one with three issues', value: VALIDATE_REQUEST },
      namedMetrics: { summary: 'Named metrics: a metric given twice, and one the model does not have', value: VALIDATE_NAMED_REQUEST },
    },
    responses: {
      '200': {
        oneInvalid: {
          summary: 'The issues of the second point (oneInvalid)',
          value: {
            valid: false,
            results: [
              { index: 0, valid: true, issues: [] },
              { index: 1, valid: false, issues: ISSUES },
            ],
          },
        },
        namedMetrics: {
          summary: 'The issues of the second point (namedMetrics)',
          value: {
            valid: false,
            results: [
              { index: 0, valid: true, issues: [] },
              {
                index: 1,
                valid: false,
                issues: [
                  { field: 'metrics.cpu_usage', message: 'is given twice, as cpu_usage and in metrics, with different values', value: 15 },
                  {
                    field: 'metrics.disk_read_bytes',
                    message: 'is not a metric of the model (its metrics: cpu_usage, memory_usage, network_load)',
                    value: 3000000,
                  },
                ],
              },
            ],
          },
        },
      },
    },
  },
};

type Json = Record<string, unknown>;

/** `doc` with the examples set on the JSON media of the operations' bodies and responses. */
export function withExamples(doc: Json, examples: Record<string, OperationExamples>): Json {
  const media = (o: unknown): Json | undefined =>
    ((o as Json | undefined)?.content as Json | undefined)?.['application/json'] as Json | undefined;
  for (const item of Object.values((doc.paths ?? {}) as Record<string, Record<string, Json>>)) {
    for (const op of Object.values(item)) {
      const e = examples[op.operationId as string];
      if (!e) continue;
      const body = media(op.requestBody);
      if (e.request && body) body.examples = structuredClone(e.request);
      for (const [status, named] of Object.entries(e.responses ?? {})) {
        const m = media((op.responses as Json)[status]);
        if (m) m.examples = structuredClone(named);
      }
    }
  }
  return doc;
}
