/**
 * The provisioned Grafana dashboard and alert rules against what the service really
 * writes and exposes: simulated Telegraf data in a real influxd, the real service
 * process polling it, then every InfluxQL query of the dashboard (as Grafana would send
 * it) and of the alert rules runs and must return data, and every PromQL query must
 * name metrics and labels that the service's /metrics has.
 */
import { readFileSync } from 'node:fs';
import { startInfluxd, type Influxd } from '../helpers/influxd';
import { DB, predictions, storeFor, waitUntil, writeSimulatedRange } from '../helpers/influx-data';
import { normalPoint } from '../helpers/fixtures';
import { startService, type ServiceProcess } from '../helpers/process';
import type { MetricsStore } from '../../src/influx/types';
import type { SimulatedRow } from '../../src/data/simulate';
import { parseYamlStrict } from '../unit/deploy/lib/compose';
import {
  dashboardQueries,
  evaluateRule,
  interpolateInfluxQL,
  loadAlertGroups,
  loadDashboards,
  loadDatasources,
  resolveDatasource,
  type Dashboard,
  type Series,
} from '../unit/deploy/lib/grafana';
import { PROMETHEUS_YML } from '../unit/deploy/lib/paths';
import { parseExposition, promqlProblems, promqlUses } from '../unit/deploy/lib/promql';

const STEP_S = 10;
const STEPS = 120;
const HOSTS = 4;

interface InfluxSeries {
  name: string;
  tags?: Record<string, string>;
  columns: string[];
  values: unknown[][];
}

describe('Grafana dashboard and alert queries against a real influxd fed by the real service', () => {
  let influxd: Influxd;
  let store: MetricsStore;
  let svc: ServiceProcess | undefined;
  let rows: SimulatedRow[];
  let hosts: string[];
  let metricsText: string;
  const dashboard = loadDashboards().find((d) => d.dashboard.uid === 'anomaly-detector')?.dashboard as Dashboard;
  const sources = loadDatasources();
  const rules = loadAlertGroups().flatMap((g) => g.rules);

  const query = async (q: string): Promise<InfluxSeries[]> => {
    const body = (await influxd.rawQuery(q, { db: DB })) as { results: Array<{ series?: InfluxSeries[]; error?: string }>; error?: string };
    if (body.error) throw new Error(`${q}: ${body.error}`);
    const r = body.results[0];
    if (r.error) throw new Error(`${q}: ${r.error}`);
    return r.series ?? [];
  };
  const hasValues = (series: InfluxSeries[]) => series.some((s) => s.values.some((v) => v.slice(1).some((x) => x !== null)));

  beforeAll(async () => {
    influxd = await startInfluxd();
    store = storeFor(influxd);
    rows = await writeSimulatedRange(store, { hosts: HOSTS, steps: STEPS, stepS: STEP_S, seed: 11 });
    hosts = [...new Set(rows.map((r) => r.host))].sort();
    svc = await startService({
      INFLUX_URL: influxd.url,
      POLL_INTERVAL_S: '1',
      COLLECTION_INTERVAL_S: String(STEP_S),
      DRIFT_INTERVAL_S: '1',
    });
    await waitUntil(async () => (await predictions(influxd)).length >= HOSTS * STEPS, 60_000, 'the poller to score every simulated point');
    await waitUntil(async () => (await query('SELECT count("psi") FROM "ai_drift"')).length > 0, 20_000, 'drift to be written');
    // Traffic for the HTTP panels' metrics.
    const detect = await fetch(`${svc.url}/detect`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ points: [normalPoint(0)] }),
    });
    expect(detect.status).toBe(200);
    metricsText = await (await fetch(`${svc.url}/metrics`)).text();
  }, 120_000);

  afterAll(async () => {
    await svc?.stop();
    await store?.close();
    await influxd?.cleanup();
  });

  const range = () => ({ from: rows[0].timestamp - STEP_S * 1000, to: Date.now() });

  it('runs every InfluxQL query of the dashboard (panels, annotations, host variable) and gets data back', async () => {
    const influxQueries = dashboardQueries(dashboard).filter((q) => resolveDatasource(q.datasource, sources)?.type === 'influxdb');
    expect(influxQueries.length).toBeGreaterThanOrEqual(12);
    const empty: string[] = [];
    for (const q of influxQueries) {
      // "All" hosts (the default), then one host and two hosts (Grafana's regex forms).
      for (const host of ['all', [hosts[0]], hosts.slice(1, 3)] as const) {
        const text = interpolateInfluxQL(q.query as string, dashboard, {
          ...range(),
          interval: '30s',
          // The repeated per-metric panel: one of the set's metrics (each is checked below).
          variables: { host: host === 'all' ? 'all' : [...host], metric: ['network_load'] },
        });
        const series = await query(text);
        if (host === 'all' && !hasValues(series)) empty.push(`${q.where}: ${text}`);
        if (q.query?.includes('$host') && host !== 'all') {
          const got = new Set(
            series.flatMap((s) =>
              s.tags?.host ? [s.tags.host] : s.columns.includes('host') ? s.values.map((v) => String(v[s.columns.indexOf('host')])) : [],
            ),
          );
          for (const h of got)
            expect({ where: q.where, host: h, selected: host.includes(h) }).toEqual({ where: q.where, host: h, selected: true });
        }
      }
    }
    expect(empty).toEqual([]);
  });

  it("lists the set's metrics in the metric variable, and the repeated panel has data for each of them", async () => {
    const variable = dashboardQueries(dashboard).find((q) => q.kind === 'variable' && q.where.includes('metric'));
    const def = dashboard.templating?.list?.find((v) => v.name === 'metric') as { regex: string };
    const re = new RegExp(def.regex.slice(1, -1));
    const keys = (await query(variable?.query as string)).flatMap((s) => s.values.map((v) => String(v[0])));
    const metrics = keys.flatMap((k) => re.exec(k)?.[1] ?? []);
    expect(metrics.sort()).toEqual(['cpu_usage', 'memory_usage', 'network_load']);
    const repeated = dashboardQueries(dashboard).filter((q) => q.query?.includes('$metric'));
    expect(repeated).toHaveLength(2);
    for (const metric of metrics)
      for (const q of repeated) {
        const text = interpolateInfluxQL(q.query as string, dashboard, {
          ...range(),
          interval: '30s',
          variables: { host: 'all', metric: [metric] },
        });
        expect([text, hasValues(await query(text))]).toEqual([text, true]);
      }
  });

  it('lists the hosts in the host variable and reports one row per host and step in the rate table', async () => {
    const variable = dashboardQueries(dashboard).find((q) => q.kind === 'variable');
    const values = (await query(variable?.query as string)).flatMap((s) => s.values.map((v) => String(v[1])));
    expect(values.sort()).toEqual(hosts);

    const table = dashboardQueries(dashboard).find((q) => q.where.includes('Anomaly rate per host')) as { query: string };
    const series = await query(interpolateInfluxQL(table.query, dashboard, { ...range(), interval: '30s', variables: { host: 'all' } }));
    expect(series.map((s) => s.tags?.host).sort()).toEqual(hosts);
    for (const s of series) {
      const row = s.values[0];
      expect(row[s.columns.indexOf('points')]).toBe(STEPS);
      const expected = (await predictions(influxd, s.tags?.host as string)).filter((p) => p.is_anomaly === 1).length / STEPS;
      expect(row[s.columns.indexOf('alert rate')]).toBeCloseTo(expected, 9);
    }
  });

  it("runs the alert rules' InfluxQL queries; the sustained-anomaly rule fires for exactly the hosts with gated alerts", async () => {
    const influxRules = rules.filter((r) => r.data.some((d) => sources.find((s) => s.uid === d.datasourceUid)?.type === 'influxdb'));
    expect(influxRules.length).toBeGreaterThan(0);
    for (const rule of influxRules) {
      const results: Record<string, Series[]> = {};
      const wide: Record<string, Series[]> = {};
      for (const d of rule.data.filter((x) => x.datasourceUid !== '__expr__')) {
        const rtr = d.relativeTimeRange as { from: number; to: number };
        const now = Date.now();
        // As Grafana evaluates it now (the simulated data ends seconds ago), and over the whole run.
        const recent = await query(
          interpolateInfluxQL(String(d.model.query), undefined, {
            from: now - rtr.from * 1000,
            to: now - rtr.to * 1000,
            interval: '10s',
            variables: {},
          }),
        );
        expect({ rule: rule.uid, series: recent.length }).toEqual({ rule: rule.uid, series: expect.any(Number) });
        expect(recent.length).toBeGreaterThan(0);
        const all = await query(interpolateInfluxQL(String(d.model.query), undefined, { ...range(), interval: '10s', variables: {} }));
        const toSeries = (ss: InfluxSeries[]): Series[] =>
          ss.map((s) => ({ labels: s.tags ?? {}, values: s.values.map((v) => (v[1] === null ? null : Number(v[1]))) }));
        results[d.refId] = toSeries(recent);
        wide[d.refId] = toSeries(all);
      }
      evaluateRule(rule, results);
      if (rule.uid === 'ad-host-sustained-anomaly') {
        const firing = evaluateRule(rule, wide)
          .map((l) => l.host)
          .sort();
        const flagged: string[] = [];
        for (const h of hosts) if ((await predictions(influxd, h)).some((p) => p.is_anomaly === 1)) flagged.push(h);
        expect(flagged.length).toBeGreaterThan(0);
        expect(firing).toEqual(flagged);
      }
    }
  });

  it('uses only metrics and labels the service exposes in its PromQL (panels and alert rules)', () => {
    const expo = parseExposition(metricsText);
    const exprs = [
      ...dashboardQueries(dashboard)
        .filter((q) => q.expr)
        .map((q) => ({ where: q.where, expr: q.expr as string })),
      ...rules.flatMap((r) =>
        r.data.filter((d) => typeof d.model.expr === 'string').map((d) => ({ where: `rule ${r.uid}`, expr: String(d.model.expr) })),
      ),
    ];
    expect(exprs.length).toBeGreaterThanOrEqual(10);
    const problems = exprs.flatMap((e) =>
      promqlProblems(e.expr.replace(/\$__rate_interval|\$__interval/g, '1m'), expo).map((p) => `${e.where}: ${p}`),
    );
    expect(problems).toEqual([]);
    // `up{job=...}` selects the job that Prometheus scrapes the service as.
    const prom = parseYamlStrict(readFileSync(PROMETHEUS_YML, 'utf8'), 'prometheus.yml') as { scrape_configs: Array<{ job_name: string }> };
    const jobs = prom.scrape_configs.map((j) => j.job_name);
    for (const e of exprs.filter((x) => promqlUses(x.expr).metrics.includes('up'))) {
      const job = /job="([^"]+)"/.exec(e.expr)?.[1];
      expect(jobs).toContain(job);
    }
    // The check itself notices a wrong name or label.
    expect(promqlProblems('sum by (host) (rate(anomaly_detector_points_scored_total[1m]))', expo)).toEqual([
      'anomaly_detector_points_scored_total: has no label host',
    ]);
    expect(promqlProblems('anomaly_detector_no_such_thing', expo)).toEqual(['anomaly_detector_no_such_thing: not exposed by the service']);
  });
});
