import { z } from 'zod';
import { ConfigError } from './errors';
import type { GateOptions } from './core/gate';

const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');
const emptyAsUndefined = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);
/**
 * A number read from the environment. An empty value counts as unset (its default):
 * z.coerce alone reads '' as 0, and `PORT=` listened on a random port.
 */
const envNumber = <T extends z.ZodType>(s: T) => z.preprocess(emptyAsUndefined, s);
const intIn = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
/** Seconds in (0, max]. */
const secondsUpTo = (max: number) => z.coerce.number().positive().max(max);
/** Seconds in [0, max] (0: off, where documented). */
const secondsOrOff = (max: number) => z.coerce.number().min(0).max(max);
/** The longest delay setTimeout keeps (2^31 - 1 ms, about 24.8 days), in whole seconds. */
const MAX_TIMER_S = 2_147_483;
const DAY_S = 86_400;
const KAFKA_NAME = /^[A-Za-z0-9._-]{1,249}$/;

/**
 * A bearer token as an HTTP header carries it: printable ASCII without spaces (a token
 * read from a file with its newline, or one with a space or a non-ASCII letter, could never
 * match what a client sends), at least 8 and at most 4,096 characters (Node refuses larger
 * headers before the service sees them).
 */
function bearerToken() {
  return z
    .string()
    .min(8, 'must be at least 8 characters')
    .max(4096, 'must be at most 4096 characters')
    .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII with no spaces or line breaks (as an HTTP header carries it)');
}

/** A URL without user:password in it (it would reach logs and /health in error messages). */
function noUserInfo<T extends z.ZodType<string>>(url: T, prefix: string) {
  return url.refine((u) => !/^[a-z]+:\/\/[^/]*@/i.test(u), {
    message: `must not hold user:password (set ${prefix}_USERNAME and ${prefix}_PASSWORD instead)`,
  });
}

/**
 * Every environment variable the service reads, with defaults. This is the only place
 * process.env is read; the table in docs/configuration.md mirrors it (a test checks).
 */
export const EnvSchema = z.object({
  /** 0: any free port (tests); empty: the default. */
  PORT: envNumber(intIn(0, 65535).default(8080)),
  HOST: z.string().min(1).default('0.0.0.0'),
  /** A port on which a thread of its own answers GET /health/live (unset: off; see src/liveness.ts). */
  LIVENESS_PORT: z.preprocess(emptyAsUndefined, intIn(1, 65535).optional()),
  /** That probe answers 503 once the main event loop has not turned for this long. */
  LIVENESS_STALL_S: envNumber(z.coerce.number().min(1).max(3600).default(30)),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  MODEL_PATH: z.string().min(1).default('models/model.json'),
  /** models:/<name>@<alias>, models:/<name>/<version> or runs:/<run_id>/<path>: load from MLflow instead. */
  MODEL_URI: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .regex(/^(models|runs):\/.+/, 'must be models:/<name>@<alias>, models:/<name>/<version> or runs:/<run_id>/<path>')
      .optional(),
  ),
  MODEL_CACHE_DIR: z.string().min(1).default('.cache/models'),
  /** Largest model artifact read (bytes), checked before reading or parsing it. */
  MODEL_MAX_BYTES: envNumber(intIn(1024, 1024 ** 3).default(128 * 1024 * 1024)),
  /** Secret of the artifacts' HMAC signatures; set: unsigned or wrongly signed artifacts are refused. */
  MODEL_SIGNING_KEY: z.preprocess(emptyAsUndefined, z.string().min(16, 'must be at least 16 characters').optional()),
  MLFLOW_TRACKING_URI: z.preprocess(
    emptyAsUndefined,
    noUserInfo(z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }), 'MLFLOW_TRACKING').optional(),
  ),
  MLFLOW_TIMEOUT_S: envNumber(secondsUpTo(600).default(30)),
  MLFLOW_TRACKING_TOKEN: z.preprocess(emptyAsUndefined, z.string().optional()),
  MLFLOW_TRACKING_USERNAME: z.preprocess(emptyAsUndefined, z.string().optional()),
  MLFLOW_TRACKING_PASSWORD: z.preprocess(emptyAsUndefined, z.string().optional()),
  /** Experiment of `train` runs (CLI only). */
  MLFLOW_EXPERIMENT_NAME: z.preprocess(emptyAsUndefined, z.string().min(1).max(500).optional()),
  /** Bearer token for POST /admin/reload; unset: the admin API is off. */
  ADMIN_TOKEN: z.preprocess(emptyAsUndefined, bearerToken().optional()),
  /** Bytes; /detect with 10,000 points is about 1 MB. */
  BODY_LIMIT: envNumber(intIn(1024, 256 * 1024 * 1024).default(4 * 1024 * 1024)),
  MAX_POINTS_PER_REQUEST: envNumber(intIn(1, 1_000_000).default(10_000)),
  /** Hosts whose recent points /detect keeps for a temporal model; least recently used dropped. */
  DETECT_HISTORY_HOSTS: envNumber(intIn(1, 10_000_000).default(10_000)),
  API_TOKEN: z.preprocess(emptyAsUndefined, bearerToken().optional()),
  /** Event loop delay (ms) above which requests are shed with 503. 0 disables. */
  MAX_EVENT_LOOP_DELAY_MS: envNumber(intIn(0, 60_000).default(1000)),
  /** Requests (other than /health/live and /metrics) processed at once; more get 503 at once. */
  MAX_CONCURRENT_REQUESTS: envNumber(intIn(1, 100_000).default(8)),
  SHUTDOWN_TIMEOUT_S: envNumber(secondsUpTo(3600).default(10)),
  /** A request (headers and body) must arrive within this long, else 408 and the connection is closed. */
  REQUEST_TIMEOUT_S: envNumber(z.coerce.number().min(1).max(3600).default(30)),
  /** A connection with no traffic for this long is closed. */
  CONNECTION_TIMEOUT_S: envNumber(z.coerce.number().min(1).max(3600).default(120)),
  /** Open connections at most; further ones are refused until some close. Unset: from the descriptor limit. */
  MAX_CONNECTIONS: envNumber(intIn(1, 1_000_000).optional()),
  DOCS_ENABLED: z.preprocess(emptyAsUndefined, bool.optional()).transform((v) => v ?? true),

  // InfluxDB loop (off while INFLUX_URL is unset)
  INFLUX_URL: z.preprocess(
    emptyAsUndefined,
    noUserInfo(z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }), 'INFLUX').optional(),
  ),
  INFLUX_API: z.enum(['v1', 'v2']).default('v1'),
  INFLUX_DATABASE: z.string().min(1).max(256).default('system_metrics'),
  INFLUX_RETENTION_POLICY: z.preprocess(emptyAsUndefined, z.string().min(1).max(256).optional()),
  INFLUX_USERNAME: z.preprocess(emptyAsUndefined, z.string().optional()),
  INFLUX_PASSWORD: z.preprocess(emptyAsUndefined, z.string().optional()),
  INFLUX_TOKEN: z.preprocess(emptyAsUndefined, z.string().optional()),
  INFLUX_ORG: z.preprocess(emptyAsUndefined, z.string().optional()),
  INFLUX_BUCKET: z.preprocess(emptyAsUndefined, z.string().optional()),
  INFLUX_TIMEOUT_S: envNumber(secondsUpTo(600).default(10)),
  POLL_INTERVAL_S: envNumber(z.coerce.number().min(0.1).max(DAY_S).default(10)),
  POLL_MAX_BACKOFF_S: envNumber(z.coerce.number().min(0.1).max(DAY_S).default(60)),
  MAX_LOOKBACK_S: envNumber(secondsUpTo(366 * DAY_S).default(3600)),
  COLLECTION_INTERVAL_S: envNumber(z.coerce.number().min(0.01).max(DAY_S).default(10)),
  SETTLE_S: envNumber(secondsOrOff(DAY_S).default(30)),
  /** The metric set read from Telegraf's standard inputs (METRICS_MAPPING_FILE, when set, replaces it). */
  METRIC_SET: z.preprocess(emptyAsUndefined, z.enum(['basic', 'node']).optional()).transform((v) => v ?? 'basic'),
  METRICS_MAPPING_FILE: z.preprocess(emptyAsUndefined, z.string().optional()),
  NET_INCLUDE_SENT: z.preprocess(emptyAsUndefined, bool.optional()).transform((v) => v ?? false),
  GATE_CONSECUTIVE: envNumber(intIn(1, 1000).default(3)),
  GATE_SURGE_ENABLED: z.preprocess(emptyAsUndefined, bool.optional()).transform((v) => v ?? true),
  GATE_SURGE_CPU: envNumber(z.coerce.number().min(0).max(100).default(10)),
  GATE_SURGE_MEMORY: envNumber(z.coerce.number().min(0).max(100).default(30)),
  GATE_SURGE_NETWORK: envNumber(z.coerce.number().min(0).max(1e15).default(15000)),
  GATE_COOLDOWN_S: envNumber(secondsOrOff(7 * DAY_S).default(0)),
  /** Within this long after an alert, a further alert needs a higher score; 0: off. */
  GATE_REPEAT_WINDOW_S: envNumber(secondsOrOff(7 * DAY_S).default(0)),
  GATE_REPEAT_MARGIN: envNumber(z.coerce.number().min(0).max(1).default(0)),
  WRITE_BUFFER_POINTS: envNumber(intIn(100, 100_000_000).default(100_000)),
  WRITE_BATCH_POINTS: envNumber(intIn(1, 100_000).default(5000)),
  SHARD_COUNT: envNumber(intIn(1, 10_000).default(1)),
  /** Required when SHARD_COUNT > 1 (an empty value must not silently mean shard 0). */
  SHARD_INDEX: z.preprocess(emptyAsUndefined, intIn(0, 9_999).optional()),
  /** Sharded (SHARD_COUNT > 1): how often the hosts are listed from the tag index (0: every cycle). */
  HOST_DISCOVERY_INTERVAL_S: envNumber(secondsOrOff(DAY_S).default(60)),
  /** Sharded: hosts per read query (one regex of them). */
  SHARD_READ_CHUNK_HOSTS: envNumber(intIn(1, 100_000).default(5000)),
  MAX_HOSTS: envNumber(intIn(1, 10_000_000).default(100_000)),
  DRIFT_WINDOW_POINTS: envNumber(intIn(100, 10_000_000).default(10_000)),
  DRIFT_INTERVAL_S: envNumber(z.coerce.number().min(1).max(DAY_S).default(60)),
  DRIFT_PSI_WARN: envNumber(z.coerce.number().positive().max(10).default(0.25)),
  /** Refit on recent normal points every this many seconds (the prototype: 300); 0: off. */
  REFIT_INTERVAL_S: envNumber(secondsOrOff(MAX_TIMER_S).default(0)),
  /** Bounded: the window is allocated up front and a refit runs on the event loop (about 40 ms per 10,000 rows at 200 trees). */
  REFIT_WINDOW_POINTS: envNumber(intIn(2, 200_000).default(10_000)),
  REFIT_MIN_POINTS: envNumber(intIn(2, 200_000).default(1000)),
  /** Learn every host's own normal (auto: when no model is named, i.e. MODEL_PATH and MODEL_URI unset). */
  LEARN: z.preprocess(emptyAsUndefined, z.enum(['auto', 'true', 'false']).optional()).transform((v) => v ?? 'auto'),
  /** History read per host at start to learn from (bounded; chunked reads). */
  LEARN_WINDOW_S: z.preprocess(
    emptyAsUndefined,
    z.coerce
      .number()
      .min(0)
      .max(90 * 86400)
      .default(7 * 86400),
  ),
  LEARN_CHUNK_S: z.preprocess(emptyAsUndefined, z.coerce.number().min(60).max(86400).default(3600)),
  /** /detect learns each host it sees with the poller's streaming detector (off: the loaded model judges every point). */
  DETECT_LEARN: z.preprocess(emptyAsUndefined, bool.optional()).transform((v) => v ?? false),
  /** Where metrics come from: InfluxDB (the poller; with INFLUX_URL) or a Kafka topic (a consumer group). */
  SOURCE: z.preprocess(emptyAsUndefined, z.enum(['influx', 'kafka']).optional()).transform((v) => v ?? 'influx'),
  /** Comma-separated host:port list. */
  KAFKA_BROKERS: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .max(4096)
      .transform((v) => v.split(',').map((b) => b.trim()))
      .pipe(z.array(z.string().regex(/^[^\s,/]+:\d{1,5}$/, 'each broker must be host:port')).min(1))
      .optional(),
  ),
  KAFKA_TOPIC: z.string().regex(KAFKA_NAME, 'must be a Kafka topic name ([A-Za-z0-9._-], at most 249)').default('telegraf'),
  KAFKA_GROUP_ID: z.string().min(1).max(255).default('anomaly-detector'),
  KAFKA_CLIENT_ID: z.string().min(1).max(255).default('anomaly-detector'),
  KAFKA_RESULTS_TOPIC: z.preprocess(emptyAsUndefined, z.string().regex(KAFKA_NAME, 'must be a Kafka topic name').optional()),
  KAFKA_TLS: z.preprocess(emptyAsUndefined, bool.optional()).transform((v) => v ?? false),
  KAFKA_TLS_CA_FILE: z.preprocess(emptyAsUndefined, z.string().optional()),
  KAFKA_SASL_MECHANISM: z.preprocess(emptyAsUndefined, z.enum(['plain', 'scram-sha-256', 'scram-sha-512']).optional()),
  KAFKA_SASL_USERNAME: z.preprocess(emptyAsUndefined, z.string().optional()),
  KAFKA_SASL_PASSWORD: z.preprocess(emptyAsUndefined, z.string().optional()),
  /** A replica that stops heartbeating loses its partitions after this long (the broker's minimum is 6 s). */
  KAFKA_SESSION_TIMEOUT_S: envNumber(z.coerce.number().min(6).max(1800).default(10)),
  KAFKA_CONCURRENCY: envNumber(intIn(1, 1000).default(4)),
});

export type Env = z.infer<typeof EnvSchema>;

/** The service's configuration, read once at start and frozen. */
export interface Config {
  port: number;
  host: string;
  /** LIVENESS_PORT (null: off) and LIVENESS_STALL_S in ms. */
  liveness: { port: number; stallMs: number } | null;
  logLevel: Env['LOG_LEVEL'];
  modelPath: string;
  modelUri: string | undefined;
  modelCacheDir: string;
  modelMaxBytes: number;
  modelSigningKey: string | undefined;
  mlflowTrackingUri: string | undefined;
  mlflowTimeoutMs: number;
  mlflowAuth: ReturnType<typeof mlflowAuth>;
  adminToken: string | undefined;
  bodyLimit: number;
  maxPointsPerRequest: number;
  detectHistoryHosts: number;
  detectLearn: boolean;
  apiToken: string | undefined;
  maxEventLoopDelayMs: number;
  maxConcurrentRequests: number;
  shutdownTimeoutS: number;
  requestTimeoutMs: number;
  connectionTimeoutMs: number;
  /** undefined: derived from the file descriptor limit at start (see server.ts). */
  maxConnections: number | undefined;
  docsEnabled: boolean;
  influx: InfluxConfig | null;
  poller: PollerConfig;
  /** The Kafka source (SOURCE=kafka), or null: the poller reads InfluxDB. */
  kafka: KafkaConfig | null;
}

export interface KafkaConfig {
  brokers: string[];
  topic: string;
  groupId: string;
  clientId: string;
  resultsTopic: string | null;
  tls: { caFile?: string } | null;
  sasl: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string } | null;
  sessionTimeoutMs: number;
  concurrency: number;
}

/** How to reach InfluxDB (null when INFLUX_URL is unset: no poller). */
export type InfluxConfig =
  | {
      api: 'v1';
      url: string;
      database: string;
      retentionPolicy?: string;
      username?: string;
      password?: string;
      token?: string;
      timeoutMs: number;
    }
  | { api: 'v2'; url: string; token: string; org: string; bucket: string; timeoutMs: number };

export interface PollerConfig {
  intervalMs: number;
  maxBackoffMs: number;
  maxLookbackMs: number;
  collectionIntervalMs: number;
  settleMs: number;
  /** The preset metric set, used unless mappingFile is set. */
  metricSet: 'basic' | 'node';
  mappingFile?: string;
  netIncludeSent: boolean;
  gate: GateOptions;
  writeBufferPoints: number;
  writeBatchPoints: number;
  shard: { count: number; index: number };
  /** Shard-aware reads (used with shard.count > 1). */
  hostDiscovery: { intervalMs: number; chunkHosts: number };
  maxHosts: number;
  drift: { windowPoints: number; intervalMs: number; warnPsi: number };
  refit?: { intervalMs: number; windowPoints: number; minPoints: number };
  /** Learning each host's normal (null: the named model judges every host). */
  learn: { windowMs: number; chunkMs: number } | null;
}

/** Variables whose value is a secret: a rejected one is named, its value never printed. */
const SECRET_ENV = /(TOKEN|PASSWORD|SIGNING_KEY)$/;

/** Names of the environment variables in the schema (checked against deploy files). */
export const CONFIG_ENV_NAMES: readonly string[] = Object.keys(EnvSchema.shape);

/**
 * Parses the environment. Throws ConfigError with one line naming every bad variable.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const shown = (name: string) => (SECRET_ENV.test(name) ? '<redacted>' : JSON.stringify(env[name] ?? null));
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}=${shown(String(i.path[0]))}: ${i.message}`);
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  }
  const e = parsed.data;
  if (e.MODEL_URI && !e.MLFLOW_TRACKING_URI) throw new ConfigError('invalid configuration: MODEL_URI needs MLFLOW_TRACKING_URI');
  if (e.SHARD_COUNT > 1 && e.SHARD_INDEX === undefined)
    throw new ConfigError(`invalid configuration: SHARD_INDEX is required with SHARD_COUNT=${e.SHARD_COUNT}`);
  const shardIndex = e.SHARD_INDEX ?? 0;
  if (shardIndex >= e.SHARD_COUNT)
    throw new ConfigError(`invalid configuration: SHARD_INDEX=${shardIndex}: must be < SHARD_COUNT (${e.SHARD_COUNT})`);
  let influx: InfluxConfig | null = null;
  if (e.INFLUX_URL) {
    const timeoutMs = e.INFLUX_TIMEOUT_S * 1000;
    if (e.INFLUX_API === 'v2') {
      const missing = (['INFLUX_TOKEN', 'INFLUX_ORG', 'INFLUX_BUCKET'] as const).filter((k) => !e[k]);
      if (missing.length > 0) throw new ConfigError(`invalid configuration: INFLUX_API=v2 needs ${missing.join(', ')}`);
      influx = {
        api: 'v2',
        url: e.INFLUX_URL,
        token: e.INFLUX_TOKEN as string,
        org: e.INFLUX_ORG as string,
        bucket: e.INFLUX_BUCKET as string,
        timeoutMs,
      };
    } else {
      if (e.INFLUX_PASSWORD && !e.INFLUX_USERNAME)
        throw new ConfigError('invalid configuration: INFLUX_PASSWORD is set without INFLUX_USERNAME');
      if (e.INFLUX_TOKEN && e.INFLUX_USERNAME)
        throw new ConfigError('invalid configuration: give either INFLUX_TOKEN or INFLUX_USERNAME (v1), not both');
      influx = {
        api: 'v1',
        url: e.INFLUX_URL,
        database: e.INFLUX_DATABASE,
        retentionPolicy: e.INFLUX_RETENTION_POLICY,
        username: e.INFLUX_USERNAME,
        password: e.INFLUX_PASSWORD,
        token: e.INFLUX_TOKEN,
        timeoutMs,
      };
    }
  }
  let kafka: KafkaConfig | null = null;
  if (e.SOURCE === 'kafka') {
    if (!e.KAFKA_BROKERS) throw new ConfigError('invalid configuration: SOURCE=kafka needs KAFKA_BROKERS');
    if (!influx && !e.KAFKA_RESULTS_TOPIC)
      throw new ConfigError(
        'invalid configuration: SOURCE=kafka needs somewhere to write predictions: INFLUX_URL and/or KAFKA_RESULTS_TOPIC',
      );
    if (e.KAFKA_SASL_MECHANISM && (!e.KAFKA_SASL_USERNAME || !e.KAFKA_SASL_PASSWORD))
      throw new ConfigError(
        `invalid configuration: KAFKA_SASL_MECHANISM=${e.KAFKA_SASL_MECHANISM} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD`,
      );
    if (e.KAFKA_TLS_CA_FILE && !e.KAFKA_TLS)
      throw new ConfigError('invalid configuration: KAFKA_TLS_CA_FILE is set without KAFKA_TLS=true');
    kafka = {
      brokers: e.KAFKA_BROKERS,
      topic: e.KAFKA_TOPIC,
      groupId: e.KAFKA_GROUP_ID,
      clientId: e.KAFKA_CLIENT_ID,
      resultsTopic: e.KAFKA_RESULTS_TOPIC ?? null,
      tls: e.KAFKA_TLS ? (e.KAFKA_TLS_CA_FILE ? { caFile: e.KAFKA_TLS_CA_FILE } : {}) : null,
      sasl: e.KAFKA_SASL_MECHANISM
        ? { mechanism: e.KAFKA_SASL_MECHANISM, username: e.KAFKA_SASL_USERNAME as string, password: e.KAFKA_SASL_PASSWORD as string }
        : null,
      sessionTimeoutMs: e.KAFKA_SESSION_TIMEOUT_S * 1000,
      concurrency: e.KAFKA_CONCURRENCY,
    };
  } else if (e.KAFKA_BROKERS) throw new ConfigError('invalid configuration: KAFKA_BROKERS is set but SOURCE is not kafka');
  return Object.freeze({
    kafka,
    port: e.PORT,
    host: e.HOST,
    liveness: e.LIVENESS_PORT !== undefined ? { port: e.LIVENESS_PORT, stallMs: e.LIVENESS_STALL_S * 1000 } : null,
    logLevel: e.LOG_LEVEL,
    modelPath: e.MODEL_PATH,
    modelUri: e.MODEL_URI,
    modelCacheDir: e.MODEL_CACHE_DIR,
    modelMaxBytes: e.MODEL_MAX_BYTES,
    modelSigningKey: e.MODEL_SIGNING_KEY,
    mlflowTrackingUri: e.MLFLOW_TRACKING_URI,
    mlflowTimeoutMs: e.MLFLOW_TIMEOUT_S * 1000,
    mlflowAuth: mlflowAuth(e),
    adminToken: e.ADMIN_TOKEN,
    bodyLimit: e.BODY_LIMIT,
    maxPointsPerRequest: e.MAX_POINTS_PER_REQUEST,
    detectHistoryHosts: e.DETECT_HISTORY_HOSTS,
    detectLearn: e.DETECT_LEARN,
    apiToken: e.API_TOKEN,
    maxEventLoopDelayMs: e.MAX_EVENT_LOOP_DELAY_MS,
    maxConcurrentRequests: e.MAX_CONCURRENT_REQUESTS,
    shutdownTimeoutS: e.SHUTDOWN_TIMEOUT_S,
    requestTimeoutMs: e.REQUEST_TIMEOUT_S * 1000,
    connectionTimeoutMs: e.CONNECTION_TIMEOUT_S * 1000,
    maxConnections: e.MAX_CONNECTIONS,
    docsEnabled: e.DOCS_ENABLED,
    influx,
    poller: {
      intervalMs: e.POLL_INTERVAL_S * 1000,
      maxBackoffMs: e.POLL_MAX_BACKOFF_S * 1000,
      maxLookbackMs: e.MAX_LOOKBACK_S * 1000,
      collectionIntervalMs: e.COLLECTION_INTERVAL_S * 1000,
      settleMs: e.SETTLE_S * 1000,
      metricSet: e.METRIC_SET,
      mappingFile: e.METRICS_MAPPING_FILE,
      netIncludeSent: e.NET_INCLUDE_SENT,
      gate: {
        consecutive: e.GATE_CONSECUTIVE,
        surge: e.GATE_SURGE_ENABLED
          ? { cpu_usage: e.GATE_SURGE_CPU, memory_usage: e.GATE_SURGE_MEMORY, network_load: e.GATE_SURGE_NETWORK }
          : null,
        cooldownMs: e.GATE_COOLDOWN_S * 1000,
        ...(e.GATE_REPEAT_WINDOW_S > 0
          ? { repeat: { level: 0, windowMs: e.GATE_REPEAT_WINDOW_S * 1000, peak: false, margin: e.GATE_REPEAT_MARGIN } }
          : {}),
      },
      writeBufferPoints: e.WRITE_BUFFER_POINTS,
      writeBatchPoints: e.WRITE_BATCH_POINTS,
      shard: { count: e.SHARD_COUNT, index: shardIndex },
      hostDiscovery: { intervalMs: e.HOST_DISCOVERY_INTERVAL_S * 1000, chunkHosts: e.SHARD_READ_CHUNK_HOSTS },
      maxHosts: e.MAX_HOSTS,
      drift: { windowPoints: e.DRIFT_WINDOW_POINTS, intervalMs: e.DRIFT_INTERVAL_S * 1000, warnPsi: e.DRIFT_PSI_WARN },
      learn: learns(e, env) ? { windowMs: e.LEARN_WINDOW_S * 1000, chunkMs: e.LEARN_CHUNK_S * 1000 } : null,
      ...(e.REFIT_INTERVAL_S > 0
        ? {
            refit: {
              intervalMs: e.REFIT_INTERVAL_S * 1000,
              windowPoints: e.REFIT_WINDOW_POINTS,
              minPoints: Math.min(e.REFIT_MIN_POINTS, e.REFIT_WINDOW_POINTS),
            },
          }
        : {}),
    },
  });
}

/** LEARN=auto learns unless a model is named (MODEL_PATH or MODEL_URI set, not empty). */
function learns(e: Env, env: NodeJS.ProcessEnv): boolean {
  if (e.LEARN !== 'auto') return e.LEARN === 'true';
  return !(env.MODEL_PATH ?? '') && !(env.MODEL_URI ?? '');
}

const MlflowEnvSchema = EnvSchema.pick({
  MLFLOW_TRACKING_URI: true,
  MLFLOW_EXPERIMENT_NAME: true,
  MLFLOW_TRACKING_TOKEN: true,
  MLFLOW_TRACKING_USERNAME: true,
  MLFLOW_TRACKING_PASSWORD: true,
});
export type MlflowEnv = z.infer<typeof MlflowEnvSchema>;

/**
 * The MLflow settings alone, for the CLI commands that track runs (`train`, `evaluate`):
 * they must not fail on service-only variables. Bad values: one-line ConfigError.
 */
export function loadMlflowEnv(env: NodeJS.ProcessEnv = process.env): MlflowEnv {
  const r = MlflowEnvSchema.safeParse(env);
  if (!r.success)
    throw new ConfigError(`invalid configuration: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  if (!!r.data.MLFLOW_TRACKING_USERNAME !== !!r.data.MLFLOW_TRACKING_PASSWORD)
    throw new ConfigError('invalid configuration: MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD go together');
  return r.data;
}

/**
 * MODEL_SIGNING_KEY alone, for `anomaly-detector sign` and `train` (one-line ConfigError
 * when bad, or when unset and `required`).
 */
export function loadSigningKey(env?: NodeJS.ProcessEnv): string;
export function loadSigningKey(env: NodeJS.ProcessEnv | undefined, required: false): string | undefined;
export function loadSigningKey(env: NodeJS.ProcessEnv = process.env, required = true): string | undefined {
  const r = EnvSchema.pick({ MODEL_SIGNING_KEY: true }).safeParse(env);
  if (!r.success)
    throw new ConfigError(`invalid configuration: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  if (!r.data.MODEL_SIGNING_KEY && required)
    throw new ConfigError('MODEL_SIGNING_KEY is not set: it is the secret the artifact is signed with');
  return r.data.MODEL_SIGNING_KEY;
}

/** MLflow client auth from the MLflow settings. */
export function mlflowAuth(
  e: Pick<MlflowEnv, 'MLFLOW_TRACKING_TOKEN' | 'MLFLOW_TRACKING_USERNAME' | 'MLFLOW_TRACKING_PASSWORD'>,
): { token: string } | { username: string; password: string } | undefined {
  if (e.MLFLOW_TRACKING_TOKEN) return { token: e.MLFLOW_TRACKING_TOKEN };
  if (e.MLFLOW_TRACKING_USERNAME && e.MLFLOW_TRACKING_PASSWORD)
    return { username: e.MLFLOW_TRACKING_USERNAME, password: e.MLFLOW_TRACKING_PASSWORD };
  return undefined;
}
