/**
 * Grafana provisioning, statically: datasources with fixed uids, the dashboard's
 * structure and references, alert rule wiring. The queries themselves run against a
 * real influxd in test/integration/dashboard.test.ts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseYamlStrict } from './lib/compose';
import {
  allPanels,
  dashboardQueries,
  interpolateInfluxQL,
  loadAlertGroups,
  loadDashboards,
  loadDatasources,
  PROVISIONING_DIR,
  resolveDatasource,
  evaluateRule,
  type Dashboard,
} from './lib/grafana';

const sources = loadDatasources();
const dashboards = loadDashboards();
const groups = loadAlertGroups();
const main = dashboards.find((d) => d.dashboard.uid === 'anomaly-detector')?.dashboard as Dashboard;

describe('Grafana datasources', () => {
  it('provisions InfluxDB (InfluxQL, system_metrics) and Prometheus with fixed, unique uids', () => {
    expect(new Set(sources.map((s) => s.uid)).size).toBe(sources.length);
    const influx = sources.filter((s) => s.type === 'influxdb');
    expect(influx).toHaveLength(1);
    expect(influx[0]).toMatchObject({ uid: 'influxdb', jsonData: { version: 'InfluxQL', dbName: 'system_metrics' } });
    expect(sources.filter((s) => s.type === 'prometheus').map((s) => s.uid)).toEqual(['prometheus']);
    for (const s of sources) expect(s.uid).toMatch(/^[a-zA-Z0-9_-]{1,40}$/);
  });

  it('has a dashboard provider', () => {
    const doc = parseYamlStrict(readFileSync(join(PROVISIONING_DIR, 'dashboards', 'dashboards.yml'), 'utf8'), 'dashboards.yml') as {
      apiVersion: number;
      providers: Array<{ type: string; options: { path: string } }>;
    };
    expect(doc.apiVersion).toBe(1);
    expect(doc.providers.map((p) => p.type)).toEqual(['file']);
  });
});

describe('the anomaly detector dashboard', () => {
  it('exists once, with unique panel ids and panels that do not overlap', () => {
    expect(main).toBeDefined();
    expect(new Set(dashboards.map((d) => d.dashboard.uid)).size).toBe(dashboards.length);
    const panels = allPanels(main);
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    const boxes = panels.map((p) => ({ id: p.id, ...(p.gridPos as { x: number; y: number; w: number; h: number }) }));
    for (const b of boxes) {
      expect(b.x + b.w).toBeLessThanOrEqual(24);
      for (const o of boxes) {
        if (o.id <= b.id) continue;
        const overlap = b.x < o.x + o.w && o.x < b.x + b.w && b.y < o.y + o.h && o.y < b.y + b.h;
        expect({ a: b.id, b: o.id, overlap }).toEqual({ a: b.id, b: o.id, overlap: false });
      }
    }
  });

  it("refers only to provisioned datasources, by uid, with queries of the datasource's language", () => {
    const queries = dashboardQueries(main);
    expect(queries.length).toBeGreaterThan(10);
    for (const q of queries) {
      expect({ where: q.where, ref: typeof q.datasource === 'object' && typeof q.datasource.uid === 'string' }).toEqual({
        where: q.where,
        ref: true,
      });
      const ds = resolveDatasource(q.datasource, sources);
      expect({ where: q.where, resolved: ds?.uid }).toEqual({ where: q.where, resolved: expect.any(String) });
      if (typeof q.datasource === 'object' && q.datasource.type) expect(q.datasource.type).toBe(ds?.type);
      if (ds?.type === 'influxdb') expect({ where: q.where, query: typeof q.query }).toEqual({ where: q.where, query: 'string' });
      if (ds?.type === 'prometheus') expect({ where: q.where, expr: typeof q.expr }).toEqual({ where: q.where, expr: 'string' });
    }
    // InfluxDB targets are raw InfluxQL, so the query text is exactly what Grafana sends.
    for (const p of allPanels(main))
      for (const t of p.targets ?? []) if ('query' in t) expect({ panel: p.id, raw: t.rawQuery }).toEqual({ panel: p.id, raw: true });
  });

  it('has a host variable from SHOW TAG VALUES, used by the host panels', () => {
    const host = main.templating?.list.find((v) => v.name === 'host');
    expect(host).toMatchObject({ type: 'query', multi: true, includeAll: true, datasource: { uid: 'influxdb' } });
    expect(String(host?.query)).toMatch(/^SHOW TAG VALUES FROM "ai_predictions" WITH KEY = "host"$/);
    const influx = dashboardQueries(main).filter(
      (q) => q.query && q.kind !== 'variable' && q.query.includes('ai_predictions') && !q.query.includes('"threshold"'),
    );
    for (const q of influx)
      expect({ where: q.where, filtered: q.query?.includes('"host" =~ /^$host$/') }).toEqual({ where: q.where, filtered: true });
  });

  it('has the panels the issue lists', () => {
    const panels = allPanels(main);
    const find = (title: RegExp, type?: string) => panels.filter((p) => title.test(p.title) && (!type || p.type === type));
    const text = (p: { targets?: Array<Record<string, unknown>> }) => (p.targets ?? []).map((t) => String(t.query ?? t.expr)).join('\n');
    const must = (title: RegExp, type: string, query: RegExp) => {
      const found = find(title, type);
      expect({ title: String(title), found: found.length }).toEqual({ title: String(title), found: 1 });
      expect(text(found[0])).toMatch(query);
    };
    must(/^CPU/, 'timeseries', /mean\("cpu_val"\)/);
    must(/^Memory/, 'timeseries', /mean\("mem_val"\)/);
    must(/^Network/, 'timeseries', /mean\("net_val"\)/);
    must(/score against threshold/, 'timeseries', /"score"[\s\S]*"threshold"/);
    must(/Gated alerts/, 'state-timeline', /"is_anomaly"/);
    // Every metric of the set: all contrib_<metric> fields in one panel, and a panel per metric repeated over $metric.
    must(/Contributions per metric/, 'timeseries', /mean\(\/\^contrib_\/\)/);
    must(/^\$metric$/, 'timeseries', /mean\("val_\$metric"\)[\s\S]*mean\("contrib_\$metric"\)/);
    const perMetric = find(/^\$metric$/, 'timeseries')[0] as { repeat?: string };
    expect(perMetric.repeat).toBe('metric');
    const metricVar = main.templating?.list?.find((v) => v.name === 'metric');
    expect(metricVar).toMatchObject({ query: 'SHOW FIELD KEYS FROM "ai_predictions"', regex: '/^contrib_(.*)$/' });
    must(/Anomaly rate per host/, 'table', /mean\("is_anomaly"\)[\s\S]*GROUP BY "host"/);
    must(/Drift/, 'timeseries', /FROM "ai_drift"/);
    must(/Request rate/, 'timeseries', /anomaly_detector_http_request_duration_seconds_count/);
    must(/p99 latency/, 'timeseries', /histogram_quantile\(0\.99, .*anomaly_detector_http_request_duration_seconds_bucket/);
    must(/Poll lag/, 'timeseries', /anomaly_detector_poll_lag_seconds/);
    must(/Write/, 'timeseries', /anomaly_detector_write_errors_total/);
    must(/Dropped/, 'timeseries', /anomaly_detector_write_dropped_points_total/);
    // Gated alerts as annotations too.
    const anno = main.annotations?.list.find((a) => /Gated alerts/.test(String(a.name)));
    expect(String(anno?.query)).toMatch(/"is_anomaly" = 1/);
    // The prototype's queries.
    const all = dashboardQueries(main)
      .map((q) => q.query ?? '')
      .join('\n');
    for (const f of ['is_anomaly', 'cpu_val', 'mem_val', 'net_val']) expect(all).toContain(`SELECT mean("${f}") FROM "ai_predictions"`);
  });

  it('substitutes every variable of every InfluxQL query (no typo left for Grafana to send)', () => {
    for (const q of dashboardQueries(main).filter((x) => x.query)) {
      for (const hosts of ['all', ['host-01'], ['host-01', 'a.b/c']] as const) {
        const out = interpolateInfluxQL(q.query as string, main, {
          from: 1_000,
          to: 2_000,
          interval: '10s',
          variables: { host: hosts === 'all' ? 'all' : [...hosts], metric: ['disk_io_time'] },
        });
        expect(out).not.toMatch(/\$\{?\w|\[\[/);
        if (q.query?.includes('$timeFilter')) expect(out).toContain('time >= 1000ms and time <= 2000ms');
        if (hosts !== 'all' && hosts.length === 2 && q.query?.includes('/^$host$/')) expect(out).toContain('/^(host-01|a\\.b\\/c)$/');
      }
    }
    expect(() => interpolateInfluxQL('SELECT 1 FROM x WHERE $hots', main, { from: 0, to: 1, interval: '1s', variables: {} })).toThrow(
      /\$hots/,
    );
  });
});

describe('provisioned alert rules', () => {
  const rules = groups.flatMap((g) => g.rules);

  it('has a sustained-anomaly rule per host and detector-down and poll-lag rules', () => {
    expect(new Set(rules.map((r) => r.uid)).size).toBe(rules.length);
    const titles = rules.map((r) => r.title);
    expect(titles).toEqual(
      expect.arrayContaining(['Sustained anomaly on a host', 'Anomaly detector down', 'Anomaly detector poll lag high']),
    );
    const host = rules.find((r) => r.title === 'Sustained anomaly on a host');
    expect(String(host?.data[0].model.query)).toMatch(/"is_anomaly"[\s\S]*GROUP BY "host"/);
    expect(host?.annotations?.summary).toContain('{{ $labels.host }}');
    const down = rules.find((r) => r.title === 'Anomaly detector down');
    expect(down?.noDataState).toBe('Alerting');
    for (const g of groups) expect(g.interval).toMatch(/^\d+[sm]$/);
  });

  it('refers to provisioned datasources and to refIds that exist, and evaluates as wired', () => {
    for (const r of rules) {
      const refIds = r.data.map((d) => d.refId);
      expect(new Set(refIds).size).toBe(refIds.length);
      expect(refIds).toContain(r.condition);
      for (const d of r.data) {
        if (d.datasourceUid === '__expr__') continue;
        expect({ rule: r.uid, uid: d.datasourceUid, known: sources.some((s) => s.uid === d.datasourceUid) }).toEqual({
          rule: r.uid,
          uid: d.datasourceUid,
          known: true,
        });
        expect(d.relativeTimeRange?.from).toBeGreaterThan(0);
        const ds = sources.find((s) => s.uid === d.datasourceUid);
        expect(typeof (ds?.type === 'influxdb' ? d.model.query : d.model.expr)).toBe('string');
      }
      // The expression chain runs on a made-up result: a high series fires, a low one does not.
      const first = r.data[0].refId;
      const firing = evaluateRule(r, {
        [first]: [
          { labels: { host: 'hi' }, values: [1e9] },
          { labels: { host: 'lo' }, values: [r.title.includes('down') ? 1 : 0] },
        ],
      });
      if (r.title.includes('down')) expect(firing).toEqual([]);
      else expect(firing).toEqual([{ host: 'hi' }]);
    }
  });
});
