import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ArtifactError, DEFAULT_MAX_ARTIFACT_BYTES, parseArtifact, type ParseOptions } from './core/artifact';
import { Detector } from './core/detector';
import { MlflowClient, type MlflowClientOptions } from './mlflow/client';
import { loadDetectorFile, type LoadedModel } from './model-store';

/** Where the served model comes from: a file, or an MLflow URI with a disk cache. */
export interface ModelSource {
  /**
   * Loads and verifies the model; throws a one-line error when it cannot. `commit`, when
   * given, is called once the service has accepted the model (it keeps the cached copy):
   * returns a warning when it could not.
   */
  load(): Promise<LoadedModel & { fromCache: boolean; warning?: string; commit?: () => string | undefined }>;
  describe(): string;
}

/** MODEL_PATH: the artifact file (re-read on reload). */
export class FileModelSource implements ModelSource {
  /** `opts`: size and shape limits, signing key (see parseArtifact). */
  constructor(
    private readonly path: string,
    private readonly opts: ParseOptions = {},
  ) {}
  async load() {
    return { detector: loadDetectorFile(this.path, this.opts), loadedAt: new Date(), source: this.path, fromCache: false };
  }
  describe(): string {
    return this.path;
  }
}

/**
 * MODEL_URI: downloads the artifact from MLflow, verifies its checksum, and keeps a copy
 * on disk. When MLflow cannot be reached, the cached copy of the same URI is served and
 * the warning says so; a download that fails verification never replaces the cache.
 */
export class MlflowModelSource implements ModelSource {
  private readonly client: MlflowClient;
  private readonly cacheFile: string;

  constructor(
    private readonly uri: string,
    trackingUri: string,
    private readonly cacheDir: string,
    timeoutMs: number,
    auth?: MlflowClientOptions['auth'],
    private readonly opts: ParseOptions = {},
  ) {
    // A download larger than the artifact limit is cut off by the client, not buffered.
    this.client = new MlflowClient({
      trackingUri,
      timeoutMs,
      artifactTimeoutMs: timeoutMs * 4,
      auth,
      maxArtifactBytes: opts.maxBytes ?? DEFAULT_MAX_ARTIFACT_BYTES,
    });
    // One cache file per URI: an alias that moves replaces it, another URI does not.
    this.cacheFile = join(cacheDir, `${createHash('sha256').update(uri).digest('hex').slice(0, 16)}.json`);
  }

  describe(): string {
    return this.uri;
  }

  async load() {
    let bytes: Buffer;
    let version: string | undefined;
    try {
      const resolved = await this.client.resolveModel(this.uri);
      bytes = resolved.bytes;
      version = resolved.version;
    } catch (e) {
      const err = e as Error & { kind?: string; status?: number };
      // Down (no answer, or a 5xx from MLflow or a proxy in front of it): the cached copy.
      const down = err.kind === 'unreachable' || err.kind === 'timeout' || (err.kind === 'http' && (err.status ?? 0) >= 500);
      if (!down) throw new ArtifactError(`${this.uri}: ${err.message}`);
      let cached: string;
      try {
        cached = readFileSync(this.cacheFile, 'utf8');
      } catch {
        throw new ArtifactError(`${this.uri}: MLflow is unreachable (${err.message}) and there is no cached copy in ${this.cacheDir}`);
      }
      const detector = new Detector(parseArtifact(cached, `cached copy of ${this.uri}`, this.opts), { inputs: 'any' });
      return {
        detector,
        loadedAt: new Date(),
        source: `${this.uri} (cached)`,
        fromCache: true,
        warning: `MLflow unreachable (${err.message}): serving the cached copy of ${this.uri}`,
      };
    }
    const text = bytes.toString('utf8');
    const detector = new Detector(parseArtifact(text, `${this.uri}${version ? ` (version ${version})` : ''}`, this.opts), {
      inputs: 'any',
    });
    // The cache is replaced only once the service accepted the model (a reload it refuses
    // must not leave its model for the next start), and a cache it cannot write (a read-only
    // file system) is a warning, not a failed load.
    const commit = (): string | undefined => {
      try {
        mkdirSync(this.cacheDir, { recursive: true });
        const tmp = `${this.cacheFile}.${process.pid}.tmp`;
        writeFileSync(tmp, text);
        renameSync(tmp, this.cacheFile);
        return undefined;
      } catch (e) {
        return `cannot keep a cached copy of ${this.uri} in ${this.cacheDir} (${(e as Error).message}): a start while MLflow is down will fail`;
      }
    };
    return { detector, loadedAt: new Date(), source: version ? `${this.uri} (version ${version})` : this.uri, fromCache: false, commit };
  }
}
