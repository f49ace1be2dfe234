import { Registry } from 'prom-client';
import { loadDetectorFile, ModelStore, type LoadedModel } from '../../../src/model-store';
import type { ModelSource } from '../../../src/model-source';
import { ModelReloader } from '../../../src/reloader';
import { createMetrics } from '../../../src/plugins/metrics';
import { MODEL_PATH } from '../../helpers/fixtures';

/** A model source whose loads finish when the test says, each returning the version it was at when it began. */
class SlowSource implements ModelSource {
  at = 'v1';
  loads: string[] = [];
  private release: Array<() => void> = [];
  private readonly detector = loadDetectorFile(MODEL_PATH);
  async load(): Promise<LoadedModel & { fromCache: boolean }> {
    const seen = this.at;
    this.loads.push(seen);
    await new Promise<void>((r) => this.release.push(r));
    return { detector: this.detector, loadedAt: new Date(), source: `test@${seen}`, fromCache: false };
  }
  finish(): void {
    for (const r of this.release.splice(0)) r();
  }
  describe(): string {
    return 'test';
  }
}

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('ModelReloader', () => {
  it('a reload asked while one runs gets a load that starts after it (the first may have read the alias before it moved)', async () => {
    const source = new SlowSource();
    const log = { info: () => undefined, warn: () => undefined, error: () => undefined };
    const r = new ModelReloader(
      source,
      ModelStore.fromDetector(loadDetectorFile(MODEL_PATH), MODEL_PATH),
      createMetrics(new Registry(), false),
      log,
    );
    const a = r.reload();
    await tick();
    // The alias moves; two more requests come while the first load runs.
    source.at = 'v2';
    const b = r.reload();
    const c = r.reload();
    source.finish();
    expect(await a).toMatchObject({ ok: true, source: 'test@v1' });
    await tick();
    source.finish();
    expect(await b).toMatchObject({ ok: true, source: 'test@v2' });
    expect(await c).toMatchObject({ ok: true, source: 'test@v2' });
    // One load for the first, one shared by the two that came during it; never two at once.
    expect(source.loads).toEqual(['v1', 'v2']);
  });
});
