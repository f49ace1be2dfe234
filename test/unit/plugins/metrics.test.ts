import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { createMetrics, METRIC_LABELS } from '../../../src/plugins/metrics';

describe('service metrics (issue 11 item 13)', () => {
  it('every labelled counter has a series at 0 for each known label value before its first increment', async () => {
    const text = await createMetrics(new Registry(), false).registry.metrics();
    const expected = [
      'anomaly_detector_poll_points_skipped_total{reason="incomplete"} 0',
      'anomaly_detector_poll_points_skipped_total{reason="invalid"} 0',
      'anomaly_detector_poll_points_skipped_total{reason="late"} 0',
      'anomaly_detector_poll_points_skipped_total{reason="unwritable"} 0',
      'anomaly_detector_model_reloads_total{outcome="ok"} 0',
      'anomaly_detector_model_reloads_total{outcome="failed"} 0',
      'anomaly_detector_model_reloads_total{outcome="refit"} 0',
      'anomaly_detector_model_reloads_total{outcome="refit_failed"} 0',
      'anomaly_detector_points_scored_total{source="http"} 0',
      'anomaly_detector_points_scored_total{source="poller"} 0',
      'anomaly_detector_anomalies_total{source="http"} 0',
      'anomaly_detector_anomalies_total{source="poller"} 0',
      'anomaly_detector_history_evictions_total{source="http"} 0',
      'anomaly_detector_history_evictions_total{source="poller"} 0',
      'anomaly_detector_history_hosts{source="http"} 0',
      'anomaly_detector_score_count{source="http"} 0',
      'anomaly_detector_score_count{source="poller"} 0',
      'anomaly_detector_poll_cycle_duration_seconds_count{outcome="ok"} 0',
      'anomaly_detector_poll_cycle_duration_seconds_count{outcome="error"} 0',
    ];
    for (const line of expected) expect([line, text.includes(`${line}\n`)]).toEqual([line, true]);
  });

  it('lists its label values in one place: every value the code uses is initialised', () => {
    expect(METRIC_LABELS.skipped).toEqual(expect.arrayContaining(['incomplete', 'invalid', 'unwritable']));
    const files = (dir: string): string[] =>
      readdirSync(dir).flatMap((f) =>
        statSync(join(dir, f)).isDirectory() ? files(join(dir, f)) : f.endsWith('.ts') ? [join(dir, f)] : [],
      );
    const known: Record<string, readonly string[]> = {
      source: METRIC_LABELS.source,
      reason: METRIC_LABELS.skipped,
      outcome: [...METRIC_LABELS.reloadOutcome, ...METRIC_LABELS.cycleOutcome],
    };
    let seen = 0;
    for (const f of files(join(__dirname, '..', '..', '..', 'src'))) {
      const text = readFileSync(f, 'utf8');
      for (const m of text.matchAll(/\.(?:inc|observe|set|labels)\(\{ (source|reason|outcome): '([a-z_]+)' \}/g)) {
        seen++;
        expect([f, m[1], m[2], known[m[1]].includes(m[2])]).toEqual([f, m[1], m[2], true]);
      }
    }
    expect(seen).toBeGreaterThan(10);
  });
});
