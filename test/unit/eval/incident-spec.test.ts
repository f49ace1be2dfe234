import { incidentSpec, type HostStep } from '../../../src/eval/plots';

/** The README's picture (npm run picture renders it): four panels, the alerts and the incident band from the data. */
describe('incidentSpec', () => {
  it('lays out metrics, network, score with threshold and alerts, and contributions of a host', () => {
    const steps: HostStep[] = Array.from({ length: 60 }, (_, i) => ({
      time: Date.UTC(2026, 10, 3) + i * 10_000,
      cpu: i >= 20 && i < 30 ? 60 : 2,
      memory: 8,
      network: 2000,
      score: i >= 20 && i < 30 ? 0.8 : 0.45,
      threshold: 0.6,
      alert: i === 22,
      learning: false,
      contributions: [i >= 20 && i < 30 ? 4 : -1, 0.5, -0.5],
      incident: i >= 20 && i < 30,
    }));
    const spec = incidentSpec('idle-01', steps) as {
      title: string;
      vconcat: Array<{ layer: Array<{ data: { values: Array<Record<string, unknown>> }; mark: { type: string } }> }>;
    };
    expect(spec.title).toContain('idle-01');
    expect(spec.vconcat).toHaveLength(4);
    const [metrics, , score, contributions] = spec.vconcat;
    // The band spans the labelled incident (first panel's first layer).
    expect(metrics.layer[0].data.values).toEqual([
      { from: new Date(steps[20].time).toISOString(), to: new Date(steps[29].time).toISOString() },
    ]);
    expect(metrics.layer[1].data.values).toHaveLength(2 * 60);
    const alerts = score.layer.find((l) => l.mark.type === 'point');
    expect(alerts?.data.values).toEqual([{ time: new Date(steps[22].time).toISOString(), score: 0.8, threshold: 0.6, alert: true }]);
    expect(contributions.layer[1].data.values).toHaveLength(3 * 60);
    expect(contributions.layer[1].data.values[60]).toEqual({ time: new Date(steps[20].time).toISOString(), metric: 'CPU', value: 4 });
  });
});
