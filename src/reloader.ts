import type { Detector } from './core/detector';
import type { ModelSource } from './model-source';
import type { ModelStore } from './model-store';
import type { ServiceMetrics } from './plugins/metrics';
import type { HealthContributor } from './routes/health';

interface Log {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export type ReloadResult =
  { ok: true; version: string; previous: string | null; source: string } | { ok: false; reason: string; version: string | null };

/**
 * Loads the model from its source at start and on SIGHUP or POST /admin/reload. A new
 * model is verified before it is swapped in, in one assignment; if it fails, the old
 * model keeps serving and the reason is returned. Reloads never run concurrently.
 */
export class ModelReloader {
  private inflight: Promise<ReloadResult> | null = null;
  private next: Promise<ReloadResult> | null = null;
  private fromCache = false;
  private warning: string | null = null;
  private lastError: string | null = null;

  constructor(
    private readonly source: ModelSource,
    private readonly store: ModelStore,
    private readonly metrics: ServiceMetrics,
    private readonly log: Log,
    /** Refuses a model the service cannot serve (throws Error with one line): a mapping that does not provide its metrics. */
    private readonly accept: (detector: Detector) => void = () => {},
  ) {}

  /** First load at start: throws (one line) when no model can be had. */
  async initial(): Promise<void> {
    const m = await this.source.load();
    this.apply(m);
  }

  /**
   * Reloads the model. A request while one runs waits for one more load after it (that one
   * may have resolved the alias before the request: its answer would be stale); requests
   * meanwhile share that next load.
   */
  reload(): Promise<ReloadResult> {
    if (!this.inflight) {
      this.inflight = this.doReload().finally(() => (this.inflight = null));
      return this.inflight;
    }
    this.next ??= this.inflight.then(() => {
      this.next = null;
      return this.reload();
    });
    return this.next;
  }

  private apply(m: Awaited<ReturnType<ModelSource['load']>>): void {
    this.accept(m.detector);
    this.store.swap({ detector: m.detector, loadedAt: m.loadedAt, source: m.source });
    const cacheWarning = m.commit?.();
    if (cacheWarning) this.log.warn({ source: m.source }, cacheWarning);
    this.fromCache = m.fromCache;
    this.warning = m.warning ?? cacheWarning ?? null;
    this.metrics.modelInfo.reset();
    this.metrics.modelInfo.set({ version: m.detector.version }, 1);
    if (m.warning) this.log.warn({ source: m.source, version: m.detector.version }, m.warning);
    this.log.info({ version: m.detector.version, source: m.source, threshold: m.detector.threshold, cached: m.fromCache }, 'model loaded');
  }

  private async doReload(): Promise<ReloadResult> {
    const previous = this.store.current?.detector.version ?? null;
    try {
      const m = await this.source.load();
      this.apply(m);
      this.lastError = null;
      this.metrics.reloads.inc({ outcome: 'ok' });
      return { ok: true, version: m.detector.version, previous, source: m.source };
    } catch (e) {
      const reason = (e as Error).message;
      this.lastError = reason;
      this.metrics.reloads.inc({ outcome: 'failed' });
      this.log.error({ reason, serving: previous }, 'model reload failed; the previous model keeps serving');
      return { ok: false, reason, version: previous };
    }
  }

  /** The model source's part of /health. */
  health(): HealthContributor {
    return {
      name: 'model_source',
      check: () => ({
        degraded: this.fromCache,
        body: { source: this.source.describe(), using_cache: this.fromCache, warning: this.warning, last_reload_error: this.lastError },
      }),
    };
  }
}
