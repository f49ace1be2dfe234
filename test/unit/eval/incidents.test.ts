import { incidentFigures, summarizeIncidents } from '../../../src/eval/incidents';

const MIN = 60_000;

describe('incidentFigures', () => {
  // Two hosts, one-minute steps over a day: a has an incident at rows 10-14 (alerted at 12),
  // an alert 5 minutes after it (grace) and one an hour later (false); b has a missed one.
  const n = 2 * 1440;
  const hosts: string[] = [];
  const times: number[] = [];
  const labels = new Uint8Array(n);
  const alerts = new Uint8Array(n);
  for (let k = 0; k < 1440; k++) {
    for (const h of ['a', 'b']) {
      const i = hosts.length;
      hosts.push(h);
      times.push(k * MIN);
      if (h === 'a' && k >= 10 && k <= 14) labels[i] = 1;
      if (h === 'a' && (k === 12 || k === 13 || k === 19 || k === 75)) alerts[i] = 1;
      if (h === 'b' && k >= 100 && k < 103) labels[i] = 1;
    }
  }
  const rows = { n, hosts, times, labels, alerts };

  it('finds the runs, their first alert and delay, and the alerts outside them', () => {
    const f = incidentFigures(rows);
    expect(f.incidents.map((x) => [x.host, x.rows, x.delaySteps, x.start])).toEqual([
      ['a', 5, 2, 10 * MIN],
      ['b', 3, null, 100 * MIN],
    ]);
    expect(f.incidents[0].alertRow).toBe(2 * 12);
    expect(Object.fromEntries(f.falseAlerts)).toEqual({ a: 1, b: 0 });
    expect(f.days.get('a')).toBeCloseTo(1, 12);
    expect(summarizeIncidents(f)).toEqual({
      grace_ms: 600_000,
      hosts: 2,
      incidents: 2,
      alerted: 1,
      median_delay_steps: 2,
      max_delay_steps: 2,
      false_alerts: 1,
      false_alerts_per_host_per_day: { mean: 0.5, max: 1 },
    });
  });

  it('counts only the rows `include` keeps, and a shorter grace makes the tail alert false', () => {
    const later = incidentFigures(rows, { include: (i) => times[i] >= 60 * MIN });
    expect(later.incidents.map((x) => x.host)).toEqual(['b']);
    expect(later.falseAlerts.get('a')).toBe(1);
    expect(incidentFigures(rows, { graceMs: 4 * MIN }).falseAlerts.get('a')).toBe(2);
  });
});
