import { Registry } from 'prom-client';
import { createMetrics, METRIC_LABELS } from '../../../src/plugins/metrics';

describe('service metrics (issue 11 item 13)', () => {
  it('every labelled counter has a series at 0 for each known label value before its first increment', async () => {
    const text = await createMetrics(new Registry(), false).registry.metrics();
    const expected = [
      'anomaly_detector_poll_points_skipped_total{reason="incomplete"} 0',
      'anomaly_detector_poll_points_skipped_total{reason="invalid"} 0',
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

  it('lists its label values in one place', () => {
    expect(METRIC_LABELS.skipped).toEqual(expect.arrayContaining(['incomplete', 'invalid', 'unwritable']));
  });
});
