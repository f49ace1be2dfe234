import axios, { type AxiosInstance, type Method } from 'axios';
import { z } from 'zod';
import { MlflowError, describeErrorBody } from './errors';
import {
  ARTIFACT_PROXY_PREFIX,
  artifactProxyPath,
  encodeArtifactPath,
  joinArtifactPath,
  normalizeArtifactPath,
  parseModelUri,
  type ModelRef,
} from './uri';

/** MLflow's LogBatch limits (mlflow/utils/validation.py and the REST API docs). */
export const BATCH_LIMITS = {
  metrics: 1000,
  params: 100,
  tags: 100,
  total: 1000,
  /** The server rejects bodies over 1 MB; stay well under it. */
  bytes: 900_000,
} as const;
/** Longest key, param value and tag value MLflow accepts. */
export const VALUE_LIMITS = { key: 250, param: 6000, tag: 8000 } as const;

/** File name of the model inside a registered version's source directory. */
export const MODEL_FILE = 'model.json';

/** How to reach and wait for the tracking server. */
export interface MlflowClientOptions {
  /** Tracking URI, e.g. http://127.0.0.1:5000 (the REST API lives under /api/2.0/mlflow). */
  trackingUri: string;
  /** Per-request inactivity timeout for REST calls, ms. Default 30 000. */
  timeoutMs?: number;
  /** Inactivity timeout for artifact uploads and downloads, ms. Default 300 000. */
  artifactTimeoutMs?: number;
  /** Largest artifact download accepted, bytes. Default 1 GiB. */
  maxArtifactBytes?: number;
  /** How long createModelVersion waits for READY, ms. Default 60 000. */
  registrationTimeoutMs?: number;
  /** Poll interval while waiting for READY, ms. Default 250. */
  pollIntervalMs?: number;
  /** Basic auth (mlflow server --app-name basic-auth) or a bearer token. */
  auth?: { username: string; password: string } | { token: string };
}

export type RunStatus = 'RUNNING' | 'SCHEDULED' | 'FINISHED' | 'FAILED' | 'KILLED';
export type ModelVersionStatus = 'PENDING_REGISTRATION' | 'FAILED_REGISTRATION' | 'READY';

export interface Experiment {
  experimentId: string;
  name: string;
  artifactLocation: string;
  lifecycleStage: string;
}

export interface RunInfo {
  runId: string;
  experimentId: string;
  runName?: string;
  status: RunStatus;
  startTime?: number;
  endTime?: number;
  /** e.g. mlflow-artifacts:/1/<run_id>/artifacts */
  artifactUri: string;
  lifecycleStage: string;
}

/** One metric value. `timestamp` is ms since the epoch (default now), `step` defaults to 0. */
export interface Metric {
  key: string;
  value: number;
  timestamp?: number;
  step?: number;
}

export interface Run {
  info: RunInfo;
  /** Latest value of each metric. */
  metrics: Required<Metric>[];
  params: Record<string, string>;
  tags: Record<string, string>;
}

/** What to write in one logBatch call; split into as many requests as MLflow's limits need. */
export interface BatchInput {
  metrics?: Metric[];
  params?: Record<string, string | number | boolean>;
  tags?: Record<string, string>;
}

export interface ArtifactFile {
  /** Path relative to the run's artifact root (listArtifacts) or to the listed directory (proxy listing). */
  path: string;
  isDir: boolean;
  fileSize?: number;
}

export interface RegisteredModel {
  name: string;
  description?: string;
  aliases: { alias: string; version: string }[];
}

export interface ModelVersion {
  name: string;
  version: string;
  source: string;
  runId?: string;
  status: ModelVersionStatus;
  statusMessage?: string;
  aliases: string[];
  creationTimestamp?: number;
}

/** A model URI resolved to the bytes of its artifact file. */
export interface ResolvedModel {
  bytes: Buffer;
  /** The URI asked for. */
  uri: string;
  /** The artifact file read, as an mlflow-artifacts:/ URI. */
  location: string;
  name?: string;
  version?: string;
  runId?: string;
}

// ---- response shapes (only the fields used; int64 may arrive as number or string) ----
const int64 = z.union([z.number(), z.string()]).transform(Number);
const kv = z.object({ key: z.string(), value: z.string().default('') });
const experimentSchema = z.object({
  experiment_id: z.string(),
  name: z.string(),
  artifact_location: z.string().default(''),
  lifecycle_stage: z.string().default('active'),
});
const runInfoSchema = z.object({
  run_id: z.string().optional(),
  run_uuid: z.string().optional(),
  experiment_id: z.string(),
  run_name: z.string().optional(),
  status: z.enum(['RUNNING', 'SCHEDULED', 'FINISHED', 'FAILED', 'KILLED']),
  start_time: int64.optional(),
  end_time: int64.optional(),
  artifact_uri: z.string(),
  lifecycle_stage: z.string().default('active'),
});
const metricSchema = z.object({ key: z.string(), value: int64, timestamp: int64.default(0), step: int64.default(0) });
const runSchema = z.object({
  run: z.object({
    info: runInfoSchema,
    data: z
      .object({ metrics: z.array(metricSchema).default([]), params: z.array(kv).default([]), tags: z.array(kv).default([]) })
      .default({ metrics: [], params: [], tags: [] }),
  }),
});
const fileSchema = z.object({ path: z.string(), is_dir: z.boolean().default(false), file_size: int64.optional() });
const modelVersionSchema = z.object({
  name: z.string(),
  version: z.string(),
  source: z.string().default(''),
  run_id: z.string().optional(),
  status: z.enum(['PENDING_REGISTRATION', 'FAILED_REGISTRATION', 'READY']).default('READY'),
  status_message: z.string().optional(),
  aliases: z.array(z.string()).default([]),
  creation_timestamp: int64.optional(),
});
const registeredModelSchema = z.object({
  name: z.string(),
  description: z.string().optional(),
  aliases: z.array(z.object({ alias: z.string(), version: z.string() })).default([]),
});

function toRunInfo(i: z.infer<typeof runInfoSchema>): RunInfo {
  return {
    runId: (i.run_id ?? i.run_uuid) as string,
    experimentId: i.experiment_id,
    runName: i.run_name,
    status: i.status,
    startTime: i.start_time,
    endTime: i.end_time,
    artifactUri: i.artifact_uri,
    lifecycleStage: i.lifecycle_stage,
  };
}

function toModelVersion(v: z.infer<typeof modelVersionSchema>): ModelVersion {
  return {
    name: v.name,
    version: v.version,
    source: v.source,
    runId: v.run_id || undefined,
    status: v.status,
    statusMessage: v.status_message || undefined,
    aliases: v.aliases,
    creationTimestamp: v.creation_timestamp,
  };
}

/** MLflow's JSON takes "NaN"/"Infinity" strings for non-finite doubles. */
function metricValue(v: number): number | string {
  if (Number.isFinite(v)) return v;
  if (Number.isNaN(v)) return 'NaN';
  return v > 0 ? 'Infinity' : '-Infinity';
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNRESET',
  'EPIPE',
  'EADDRNOTAVAIL',
]);

interface RequestOptions {
  params?: Record<string, string | number | undefined>;
  json?: unknown;
  body?: Buffer;
  timeoutMs?: number;
  maxBytes?: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * A client of MLflow's REST API 2.0 and its artifact proxy, for one tracking server.
 * Every failure is an MlflowError with a one-line message.
 */
export class MlflowClient {
  /** Tracking URI without a trailing slash. */
  readonly trackingUri: string;
  private readonly http: AxiosInstance;
  private readonly timeoutMs: number;
  private readonly artifactTimeoutMs: number;
  private readonly maxArtifactBytes: number;
  private readonly registrationTimeoutMs: number;
  private readonly pollIntervalMs: number;
  /** A run's artifact_uri never changes; remember it per run. */
  private readonly artifactRoots = new Map<string, string>();

  constructor(options: MlflowClientOptions) {
    const uri = options.trackingUri.trim().replace(/\/+$/, '');
    if (!/^https?:\/\/[^/]+/.test(uri)) {
      throw new MlflowError(`MLflow tracking URI must be http(s)://host[:port], got '${options.trackingUri}'`, 'invalid_argument');
    }
    this.trackingUri = uri;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.artifactTimeoutMs = options.artifactTimeoutMs ?? 300_000;
    this.maxArtifactBytes = options.maxArtifactBytes ?? 1024 ** 3;
    this.registrationTimeoutMs = options.registrationTimeoutMs ?? 60_000;
    this.pollIntervalMs = options.pollIntervalMs ?? 250;
    const headers: Record<string, string> = {};
    const auth = options.auth;
    if (auth && 'token' in auth) headers.Authorization = `Bearer ${auth.token}`;
    else if (auth) headers.Authorization = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
    this.http = axios.create({
      baseURL: uri,
      headers,
      // Status and body are interpreted here, so every error gets the same one-line form.
      validateStatus: () => true,
      responseType: 'arraybuffer',
      transformResponse: [(d: unknown) => d],
      maxRedirects: 0,
    });
  }

  // ---------------------------------------------------------------- transport

  private async request(method: Method, path: string, opts: RequestOptions = {}): Promise<Buffer> {
    const where = `${method.toUpperCase()} ${path}`;
    const data = opts.json !== undefined ? JSON.stringify(opts.json) : opts.body;
    const headers = data === undefined ? {} : { 'Content-Type': opts.json !== undefined ? 'application/json' : 'application/octet-stream' };
    let res;
    try {
      res = await this.http.request<ArrayBuffer>({
        method,
        url: path,
        params: opts.params,
        data,
        headers,
        timeout: opts.timeoutMs ?? this.timeoutMs,
        maxContentLength: opts.maxBytes ?? this.maxArtifactBytes,
        maxBodyLength: Infinity,
      });
    } catch (e) {
      throw this.transportError(e, where, opts.timeoutMs ?? this.timeoutMs);
    }
    const body = Buffer.from(res.data ?? []);
    if (res.status >= 200 && res.status < 300) return body;
    const { errorCode, message } = describeErrorBody(body);
    const detail = [errorCode, message ?? res.statusText].filter(Boolean).join(': ');
    throw new MlflowError(`MLflow ${where} -> ${res.status}${detail ? ` ${detail}` : ''}`, 'http', res.status, errorCode);
  }

  private transportError(e: unknown, where: string, timeoutMs: number): MlflowError {
    const err = e as { code?: string; message?: string; cause?: { code?: string; errors?: { code?: string }[] } };
    const code =
      err.code && err.code !== 'ERR_BAD_REQUEST' && err.code !== 'ERR_NETWORK'
        ? err.code
        : (err.cause?.code ?? err.cause?.errors?.[0]?.code ?? err.code);
    if (code === 'ECONNABORTED' || code === 'ETIMEDOUT' || code === 'ESOCKETTIMEDOUT') {
      return new MlflowError(`MLflow at ${this.trackingUri} did not answer ${where} within ${timeoutMs} ms`, 'timeout');
    }
    if (code && NETWORK_CODES.has(code)) return new MlflowError(`MLflow at ${this.trackingUri} is unreachable (${code})`, 'unreachable');
    if (code === 'ERR_BAD_RESPONSE' && /maxContentLength/.test(err.message ?? '')) {
      return new MlflowError(`MLflow ${where}: response larger than ${this.maxArtifactBytes} bytes`, 'protocol');
    }
    return new MlflowError(`MLflow ${where} failed: ${code ? `${code} ` : ''}${err.message ?? String(e)}`, 'unreachable');
  }

  private async json<S extends z.ZodType>(schema: S, method: Method, path: string, opts: RequestOptions = {}): Promise<z.infer<S>> {
    const body = await this.request(method, path, opts);
    let parsed: unknown;
    try {
      parsed = body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
    } catch {
      throw new MlflowError(`MLflow ${method.toUpperCase()} ${path}: response is not JSON`, 'protocol');
    }
    const r = schema.safeParse(parsed);
    if (!r.success) {
      const issue = r.error.issues[0];
      throw new MlflowError(
        `MLflow ${method.toUpperCase()} ${path}: unexpected response (${issue?.path.join('.') || '(root)'}: ${issue?.message})`,
        'protocol',
      );
    }
    return r.data;
  }

  private api<S extends z.ZodType>(schema: S, method: Method, endpoint: string, opts: RequestOptions = {}): Promise<z.infer<S>> {
    return this.json(schema, method, `/api/2.0/mlflow/${endpoint}`, opts);
  }

  /** GET /health; true when the server answers OK. Never throws. */
  async health(): Promise<boolean> {
    try {
      const body = await this.request('get', '/health', { timeoutMs: Math.min(this.timeoutMs, 5000) });
      return body.toString('utf8').trim() === 'OK';
    } catch {
      return false;
    }
  }

  // ---------------------------------------------------------------- experiments and runs

  /** The active experiment called `name`, created when missing (safe under concurrent callers). */
  async getOrCreateExperiment(name: string): Promise<Experiment> {
    if (!name.trim()) throw new MlflowError('experiment name must not be empty', 'invalid_argument');
    const existing = await this.getExperimentByName(name);
    if (existing) return existing;
    try {
      const { experiment_id } = await this.api(z.object({ experiment_id: z.string() }), 'post', 'experiments/create', { json: { name } });
      return (
        (await this.getExperimentByName(name)) ?? { experimentId: experiment_id, name, artifactLocation: '', lifecycleStage: 'active' }
      );
    } catch (e) {
      if (e instanceof MlflowError && e.errorCode === 'RESOURCE_ALREADY_EXISTS') {
        const raced = await this.getExperimentByName(name);
        if (raced) return raced;
      }
      throw e;
    }
  }

  /** The experiment called `name`, or null. A deleted one is an error: its name is still taken. */
  async getExperimentByName(name: string): Promise<Experiment | null> {
    let e;
    try {
      ({ experiment: e } = await this.api(z.object({ experiment: experimentSchema }), 'get', 'experiments/get-by-name', {
        params: { experiment_name: name },
      }));
    } catch (err) {
      if (err instanceof MlflowError && err.notFound) return null;
      throw err;
    }
    if (e.lifecycle_stage === 'deleted') {
      throw new MlflowError(
        `MLflow experiment '${name}' (id ${e.experiment_id}) is deleted; restore it or use another name`,
        'invalid_argument',
      );
    }
    return { experimentId: e.experiment_id, name: e.name, artifactLocation: e.artifact_location, lifecycleStage: e.lifecycle_stage };
  }

  /** Starts a run (status RUNNING) in an experiment. */
  async createRun(experimentId: string, runName?: string, tags: Record<string, string> = {}, startTime = Date.now()): Promise<RunInfo> {
    const tagList = Object.entries(tags).map(([key, value]) => checkTag(key, value));
    const { run } = await this.api(z.object({ run: z.object({ info: runInfoSchema }) }), 'post', 'runs/create', {
      json: { experiment_id: experimentId, run_name: runName, start_time: startTime, tags: tagList },
    });
    const info = toRunInfo(run.info);
    this.artifactRoots.set(info.runId, info.artifactUri);
    return info;
  }

  /** A run with its params, tags and the latest value of each metric. */
  async getRun(runId: string): Promise<Run> {
    const { run } = await this.api(runSchema, 'get', 'runs/get', { params: { run_id: runId } });
    const info = toRunInfo(run.info);
    this.artifactRoots.set(info.runId, info.artifactUri);
    return {
      info,
      metrics: run.data.metrics,
      params: Object.fromEntries(run.data.params.map((p) => [p.key, p.value])),
      tags: Object.fromEntries(run.data.tags.map((t) => [t.key, t.value])),
    };
  }

  /** Every logged value of one metric, in the server's order (by step, then timestamp). */
  async getMetricHistory(runId: string, key: string): Promise<Required<Metric>[]> {
    const out: Required<Metric>[] = [];
    let pageToken: string | undefined;
    do {
      const page = await this.api(
        z.object({ metrics: z.array(metricSchema).default([]), next_page_token: z.string().optional() }),
        'get',
        'metrics/get-history',
        {
          params: { run_id: runId, metric_key: key, max_results: 25000, page_token: pageToken },
        },
      );
      out.push(...page.metrics);
      pageToken = page.next_page_token || undefined;
    } while (pageToken);
    return out;
  }

  /**
   * Logs params, metrics and tags, split into requests within MLflow's limits
   * (1000 metrics, 100 params, 100 tags, 1000 items, under 1 MB each). Params go
   * first, then tags, then metrics. Keys and values are checked before anything is sent.
   */
  async logBatch(runId: string, input: BatchInput): Promise<void> {
    const now = Date.now();
    const params = Object.entries(input.params ?? {}).map(([key, value]) => checkParam(key, String(value)));
    const tags = Object.entries(input.tags ?? {}).map(([key, value]) => checkTag(key, value));
    const metrics = (input.metrics ?? []).map((m) => {
      checkKey(m.key, 'metric');
      if (typeof m.value !== 'number') throw new MlflowError(`metric '${m.key}' value must be a number`, 'invalid_argument');
      return { key: m.key, value: metricValue(m.value), timestamp: Math.round(m.timestamp ?? now), step: Math.round(m.step ?? 0) };
    });
    for (const batch of splitBatches(params, tags, metrics)) {
      await this.api(z.object({}), 'post', 'runs/log-batch', { json: { run_id: runId, ...batch } });
    }
  }

  /** Logs params (values are stringified). A param can be written once per run. */
  logParams(runId: string, params: Record<string, string | number | boolean>): Promise<void> {
    return this.logBatch(runId, { params });
  }

  /** Logs several metrics at one step and timestamp. */
  logMetrics(runId: string, metrics: Record<string, number>, step = 0, timestamp = Date.now()): Promise<void> {
    return this.logBatch(runId, { metrics: Object.entries(metrics).map(([key, value]) => ({ key, value, step, timestamp })) });
  }

  /** Sets (or overwrites) one run tag. */
  async setTag(runId: string, key: string, value: string): Promise<void> {
    checkTag(key, value);
    await this.api(z.object({}), 'post', 'runs/set-tag', { json: { run_id: runId, key, value } });
  }

  /** Ends (or otherwise changes the status of) a run. */
  async updateRun(
    runId: string,
    status: RunStatus,
    endTime: number | undefined = status === 'RUNNING' ? undefined : Date.now(),
  ): Promise<RunInfo> {
    const { run_info } = await this.api(z.object({ run_info: runInfoSchema }), 'post', 'runs/update', {
      json: { run_id: runId, status, end_time: endTime },
    });
    return toRunInfo(run_info);
  }

  // ---------------------------------------------------------------- artifacts

  /** The run's artifact root as a proxy path, e.g. `1/<run_id>/artifacts`. */
  private async runArtifactRoot(runId: string): Promise<string> {
    let uri = this.artifactRoots.get(runId);
    if (!uri) uri = (await this.getRun(runId)).info.artifactUri;
    return artifactProxyPath(uri);
  }

  /** The mlflow-artifacts:/ URI of a path inside a run's artifacts (usable as a model version source). */
  async artifactUri(runId: string, path = ''): Promise<string> {
    return `mlflow-artifacts:/${joinArtifactPath(await this.runArtifactRoot(runId), normalizeArtifactPath(path, true))}`;
  }

  /** Uploads one file to `<run artifacts>/<relativePath>` through the server's artifact proxy. */
  async uploadArtifact(runId: string, relativePath: string, content: Buffer | string): Promise<void> {
    const path = joinArtifactPath(await this.runArtifactRoot(runId), normalizeArtifactPath(relativePath));
    await this.request('put', `${ARTIFACT_PROXY_PREFIX}/${encodeArtifactPath(path)}`, {
      body: typeof content === 'string' ? Buffer.from(content, 'utf8') : content,
      timeoutMs: this.artifactTimeoutMs,
    });
  }

  /** Lists one directory of a run's artifacts (paths relative to the run's artifact root). */
  async listArtifacts(runId: string, path = ''): Promise<ArtifactFile[]> {
    const out: ArtifactFile[] = [];
    let pageToken: string | undefined;
    do {
      const page = await this.api(
        z.object({ files: z.array(fileSchema).default([]), next_page_token: z.string().optional() }),
        'get',
        'artifacts/list',
        {
          params: { run_id: runId, path: normalizeArtifactPath(path, true) || undefined, page_token: pageToken },
        },
      );
      out.push(...page.files.map((f) => ({ path: f.path, isDir: f.is_dir, fileSize: f.file_size })));
      pageToken = page.next_page_token || undefined;
    } while (pageToken);
    return out;
  }

  /** Lists a directory through the proxy (names relative to it); [] for a file or a missing path. */
  private async listProxy(proxyPath: string): Promise<ArtifactFile[]> {
    const { files } = await this.json(z.object({ files: z.array(fileSchema).default([]) }), 'get', ARTIFACT_PROXY_PREFIX, {
      params: { path: proxyPath },
    });
    return files.map((f) => ({ path: f.path, isDir: f.is_dir, fileSize: f.file_size }));
  }

  /**
   * Downloads one artifact file: `downloadArtifact(runId, path)`, or
   * `downloadArtifact(uri)` with an `mlflow-artifacts:/...` or `runs:/<run_id>/<path>` URI
   * (a `path` given with a URI is appended to it).
   */
  async downloadArtifact(runIdOrUri: string, path?: string): Promise<Buffer> {
    return this.downloadProxy(await this.toProxyPath(runIdOrUri, path));
  }

  private async toProxyPath(runIdOrUri: string, path?: string): Promise<string> {
    if (!runIdOrUri.includes(':')) {
      if (path === undefined) throw new MlflowError('downloadArtifact(runId, path) needs a path', 'invalid_argument');
      return joinArtifactPath(await this.runArtifactRoot(runIdOrUri), normalizeArtifactPath(path));
    }
    const ref = parseModelUri(runIdOrUri);
    const extra = normalizeArtifactPath(path ?? '', true);
    if (ref.kind === 'artifact') return joinArtifactPath(ref.path, extra);
    if (ref.kind === 'run') return joinArtifactPath(await this.runArtifactRoot(ref.runId), ref.path, extra);
    throw new MlflowError(`'${runIdOrUri}' is a model URI; use resolveModel`, 'invalid_argument');
  }

  private downloadProxy(proxyPath: string): Promise<Buffer> {
    if (!proxyPath) throw new MlflowError('artifact path must not be empty', 'invalid_argument');
    return this.request('get', `${ARTIFACT_PROXY_PREFIX}/${encodeArtifactPath(proxyPath)}`, { timeoutMs: this.artifactTimeoutMs });
  }

  // ---------------------------------------------------------------- model registry

  /** Creates a registered model; when it already exists, returns the existing one. */
  async createRegisteredModel(name: string, description?: string): Promise<RegisteredModel> {
    if (!name.trim()) throw new MlflowError('registered model name must not be empty', 'invalid_argument');
    try {
      const { registered_model } = await this.api(
        z.object({ registered_model: registeredModelSchema }),
        'post',
        'registered-models/create',
        { json: { name, description } },
      );
      return registered_model;
    } catch (e) {
      if (e instanceof MlflowError && e.errorCode === 'RESOURCE_ALREADY_EXISTS') return this.getRegisteredModel(name);
      throw e;
    }
  }

  async getRegisteredModel(name: string): Promise<RegisteredModel> {
    const { registered_model } = await this.api(z.object({ registered_model: registeredModelSchema }), 'get', 'registered-models/get', {
      params: { name },
    });
    return registered_model;
  }

  /**
   * Registers `source` (an artifact URI such as mlflow-artifacts:/... or runs:/...) as a new
   * version of `name` and, unless `wait` is false, waits until it is READY.
   */
  async createModelVersion(
    name: string,
    source: string,
    runId?: string,
    opts: { description?: string; tags?: Record<string, string>; wait?: boolean } = {},
  ): Promise<ModelVersion> {
    const tags = Object.entries(opts.tags ?? {}).map(([key, value]) => ({ key, value }));
    const { model_version } = await this.api(z.object({ model_version: modelVersionSchema }), 'post', 'model-versions/create', {
      json: { name, source, run_id: runId, description: opts.description, tags },
    });
    const mv = toModelVersion(model_version);
    return opts.wait === false ? mv : this.waitForModelVersion(name, mv.version, mv);
  }

  /** Polls a model version until READY; FAILED_REGISTRATION or the timeout is an error. */
  async waitForModelVersion(
    name: string,
    version: string,
    first?: ModelVersion,
    timeoutMs = this.registrationTimeoutMs,
  ): Promise<ModelVersion> {
    const deadline = Date.now() + timeoutMs;
    let mv = first ?? (await this.getModelVersion(name, version));
    while (mv.status !== 'READY') {
      if (mv.status === 'FAILED_REGISTRATION') {
        throw new MlflowError(
          `model ${name} version ${version} failed registration${mv.statusMessage ? `: ${mv.statusMessage}` : ''}`,
          'registration_failed',
        );
      }
      if (Date.now() >= deadline)
        throw new MlflowError(`model ${name} version ${version} is still ${mv.status} after ${timeoutMs} ms`, 'registration_failed');
      await sleep(this.pollIntervalMs);
      mv = await this.getModelVersion(name, version);
    }
    return mv;
  }

  async getModelVersion(name: string, version: string): Promise<ModelVersion> {
    const { model_version } = await this.api(z.object({ model_version: modelVersionSchema }), 'get', 'model-versions/get', {
      params: { name, version },
    });
    return toModelVersion(model_version);
  }

  /** Points `alias` (e.g. champion) at a version; moves it if it pointed elsewhere. */
  async setRegisteredModelAlias(name: string, alias: string, version: string): Promise<void> {
    await this.api(z.object({}), 'post', 'registered-models/alias', { json: { name, alias, version } });
  }

  async deleteRegisteredModelAlias(name: string, alias: string): Promise<void> {
    await this.api(z.object({}), 'delete', 'registered-models/alias', { json: { name, alias } });
  }

  async getModelVersionByAlias(name: string, alias: string): Promise<ModelVersion> {
    const { model_version } = await this.api(z.object({ model_version: modelVersionSchema }), 'get', 'registered-models/alias', {
      params: { name, alias },
    });
    return toModelVersion(model_version);
  }

  /** Highest version number of `name` (in `stage`, when given). */
  async getLatestModelVersion(name: string, stage?: string): Promise<ModelVersion> {
    const { model_versions } = await this.api(
      z.object({ model_versions: z.array(modelVersionSchema).default([]) }),
      'post',
      'registered-models/get-latest-versions',
      {
        json: { name, stages: stage ? [stage] : undefined },
      },
    );
    const best = model_versions.map(toModelVersion).sort((a, b) => Number(b.version) - Number(a.version))[0];
    if (!best)
      throw new MlflowError(
        `registered model ${name} has no version${stage ? ` in stage ${stage}` : ''}`,
        'http',
        404,
        'RESOURCE_DOES_NOT_EXIST',
      );
    return best;
  }

  /** Where a version's files are stored (mlflow-artifacts:/... or runs:/...). */
  async getModelVersionDownloadUri(name: string, version: string): Promise<string> {
    const { artifact_uri } = await this.api(z.object({ artifact_uri: z.string() }), 'get', 'model-versions/get-download-uri', {
      params: { name, version },
    });
    return artifact_uri;
  }

  // ---------------------------------------------------------------- resolution

  /**
   * Reads the model artifact a URI names: `models:/<name>@<alias>`, `models:/<name>/<version>`,
   * `models:/<name>/latest`, `runs:/<run_id>/<path>` or `mlflow-artifacts:/<path>`. When the
   * location is a directory, the file read is `model.json` inside it.
   */
  async resolveModel(uri: string): Promise<ResolvedModel> {
    try {
      const ref = parseModelUri(uri);
      const out: Omit<ResolvedModel, 'bytes' | 'location'> = { uri };
      let location: string;
      if (ref.kind === 'alias' || ref.kind === 'version' || ref.kind === 'latest') {
        const mv = await this.versionOf(ref);
        Object.assign(out, { name: mv.name, version: mv.version, runId: mv.runId });
        location = await this.getModelVersionDownloadUri(mv.name, mv.version);
      } else {
        location = uri;
        if (ref.kind === 'run') out.runId = ref.runId;
      }
      const path = await this.toProxyPath(location);
      const file = (await this.listProxy(path)).length > 0 ? joinArtifactPath(path, MODEL_FILE) : path;
      const bytes = await this.downloadProxy(file);
      return { ...out, bytes, location: `mlflow-artifacts:/${file}` };
    } catch (e) {
      throw e instanceof MlflowError ? e.withContext(`cannot resolve ${uri}`) : e;
    }
  }

  /** The bytes of the model artifact a URI names (see resolveModel). */
  async resolveModelUri(uri: string): Promise<Buffer> {
    return (await this.resolveModel(uri)).bytes;
  }

  private versionOf(ref: Extract<ModelRef, { name: string }>): Promise<ModelVersion> {
    if (ref.kind === 'alias') return this.getModelVersionByAlias(ref.name, ref.alias);
    if (ref.kind === 'version') return this.getModelVersion(ref.name, ref.version);
    return this.getLatestModelVersion(ref.name, ref.stage);
  }
}

// ---------------------------------------------------------------- validation and batching

function checkKey(key: string, what: string): void {
  if (typeof key !== 'string' || key === '') throw new MlflowError(`${what} key must be a non-empty string`, 'invalid_argument');
  if (key.length > VALUE_LIMITS.key)
    throw new MlflowError(`${what} key '${key.slice(0, 40)}…' is longer than ${VALUE_LIMITS.key} characters`, 'invalid_argument');
}

function checkParam(key: string, value: string): { key: string; value: string } {
  checkKey(key, 'param');
  if (value.length > VALUE_LIMITS.param)
    throw new MlflowError(`param '${key}' value is longer than ${VALUE_LIMITS.param} characters`, 'invalid_argument');
  return { key, value };
}

function checkTag(key: string, value: string): { key: string; value: string } {
  checkKey(key, 'tag');
  if (typeof value !== 'string') throw new MlflowError(`tag '${key}' value must be a string`, 'invalid_argument');
  if (value.length > VALUE_LIMITS.tag)
    throw new MlflowError(`tag '${key}' value is longer than ${VALUE_LIMITS.tag} characters`, 'invalid_argument');
  return { key, value };
}

type Kv = { key: string; value: string };
type WireMetric = { key: string; value: number | string; timestamp: number; step: number };
interface WireBatch {
  params: Kv[];
  tags: Kv[];
  metrics: WireMetric[];
}

/** Greedy split of params, tags and metrics (in that order) into requests within BATCH_LIMITS. */
export function splitBatches(params: Kv[], tags: Kv[], metrics: WireMetric[]): WireBatch[] {
  const out: WireBatch[] = [];
  let cur: WireBatch = { params: [], tags: [], metrics: [] };
  let count = 0;
  let bytes = 0;
  const push = <K extends keyof WireBatch>(kind: K, item: WireBatch[K][number], limit: number) => {
    const size = Buffer.byteLength(JSON.stringify(item)) + 1;
    if (cur[kind].length >= limit || count >= BATCH_LIMITS.total || (count > 0 && bytes + size > BATCH_LIMITS.bytes)) {
      out.push(cur);
      cur = { params: [], tags: [], metrics: [] };
      count = 0;
      bytes = 0;
    }
    (cur[kind] as WireBatch[K][number][]).push(item);
    count++;
    bytes += size;
  };
  for (const p of params) push('params', p, BATCH_LIMITS.params);
  for (const t of tags) push('tags', t, BATCH_LIMITS.tags);
  for (const m of metrics) push('metrics', m, BATCH_LIMITS.metrics);
  if (count > 0) out.push(cur);
  return out;
}
