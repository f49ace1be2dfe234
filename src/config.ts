import { z } from 'zod';
import { ConfigError } from './errors';

const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');
const intIn = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const posNum = z.coerce.number().positive().refine(Number.isFinite, 'must be finite');
const emptyAsUndefined = (v: unknown) => (v === '' ? undefined : v);

/**
 * Every environment variable the service reads, with defaults. This is the only place
 * process.env is read; the README's configuration table mirrors it.
 */
export const EnvSchema = z.object({
  PORT: intIn(0, 65535).default(8080),
  HOST: z.string().min(1).default('0.0.0.0'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  MODEL_PATH: z.string().min(1).default('models/model.json'),
  /** Bytes; /detect with 10,000 points is about 1 MB. */
  BODY_LIMIT: intIn(1024, 256 * 1024 * 1024).default(4 * 1024 * 1024),
  MAX_POINTS_PER_REQUEST: intIn(1, 1_000_000).default(10_000),
  API_TOKEN: z.preprocess(emptyAsUndefined, z.string().min(8, 'must be at least 8 characters').optional()),
  /** Event loop delay (ms) above which requests are shed with 503. 0 disables. */
  MAX_EVENT_LOOP_DELAY_MS: intIn(0, 60_000).default(1000),
  SHUTDOWN_TIMEOUT_S: posNum.default(10),
  DOCS_ENABLED: z.preprocess(emptyAsUndefined, bool.optional()).transform((v) => v ?? true),
});

export type Env = z.infer<typeof EnvSchema>;

/** The service's configuration, read once at start and frozen. */
export interface Config {
  port: number;
  host: string;
  logLevel: Env['LOG_LEVEL'];
  modelPath: string;
  bodyLimit: number;
  maxPointsPerRequest: number;
  apiToken: string | undefined;
  maxEventLoopDelayMs: number;
  shutdownTimeoutS: number;
  docsEnabled: boolean;
}

/** Names of the environment variables in the schema (checked against deploy files). */
export const CONFIG_ENV_NAMES: readonly string[] = Object.keys(EnvSchema.shape);

/**
 * Parses the environment. Throws ConfigError with one line naming every bad variable.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}=${JSON.stringify(env[String(i.path[0])] ?? null)}: ${i.message}`);
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  }
  const e = parsed.data;
  return Object.freeze({
    port: e.PORT,
    host: e.HOST,
    logLevel: e.LOG_LEVEL,
    modelPath: e.MODEL_PATH,
    bodyLimit: e.BODY_LIMIT,
    maxPointsPerRequest: e.MAX_POINTS_PER_REQUEST,
    apiToken: e.API_TOKEN,
    maxEventLoopDelayMs: e.MAX_EVENT_LOOP_DELAY_MS,
    shutdownTimeoutS: e.SHUTDOWN_TIMEOUT_S,
    docsEnabled: e.DOCS_ENABLED,
  });
}
