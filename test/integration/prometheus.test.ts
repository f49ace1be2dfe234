/**
 * The monitoring a user gets, against a real Prometheus (Debian's package, from
 * scripts/prometheus-env.sh) scraping the real service: the shipped scrape configurations
 * are valid, the exposition parses and follows Prometheus' naming rules, and every
 * Prometheus query of the Grafana dashboard and alert rules runs and finds its series;
 * the detector-down rule's expression is 1 while the service runs and 0 once it is killed.
 * Needs `npm run build` (npm test does).
 */
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { ROOT } from '../helpers/fixtures';
import { startService, type ServiceProcess } from '../helpers/process';
import { promtool, startPrometheus, type Prometheus } from '../helpers/prometheus';

jest.setTimeout(120_000);

const COMPOSE_PROMETHEUS = join(ROOT, 'docker', 'prometheus.yml');
const K8S_SCRAPE_JOB = join(ROOT, 'k8s', 'monitoring', 'prometheus-scrape-job.yaml');

interface ScrapeConfig {
  job_name: string;
  static_configs?: Array<{ targets: string[] }>;
}

/** The Prometheus queries of the dashboard (its `$__rate_interval` as 1m) and of the alert rules, by where they are. */
function shippedQueries(): Array<{ where: string; expr: string }> {
  const out: Array<{ where: string; expr: string }> = [];
  type Panel = { title?: string; panels?: Panel[]; targets?: Array<{ expr?: string; datasource?: { type?: string } }> };
  const dashboard = JSON.parse(readFileSync(join(ROOT, 'grafana', 'dashboards', 'anomaly-detector.json'), 'utf8')) as Panel;
  const walk = (p: Panel): void => {
    for (const t of p.targets ?? [])
      if (t.datasource?.type === 'prometheus' && t.expr)
        out.push({ where: `panel "${p.title}"`, expr: t.expr.replaceAll('$__rate_interval', '1m') });
    for (const c of p.panels ?? []) walk(c);
  };
  walk(dashboard);
  const rules = parse(readFileSync(join(ROOT, 'grafana', 'provisioning', 'alerting', 'alert-rules.yml'), 'utf8')) as {
    groups: Array<{ rules: Array<{ uid: string; data: Array<{ datasourceUid: string; model: { expr?: string } }> }> }>;
  };
  for (const r of rules.groups.flatMap((g) => g.rules))
    for (const d of r.data) if (d.datasourceUid === 'prometheus' && d.model.expr) out.push({ where: `rule ${r.uid}`, expr: d.model.expr });
  return out;
}

/** The job the detector-down rule selects (up{job="..."}). */
function ruleJob(): string {
  const down = shippedQueries().find((q) => q.where === 'rule ad-detector-down');
  const m = /job="([^"]+)"/.exec(down?.expr ?? '');
  if (!m) throw new Error('the detector-down rule selects no job');
  return m[1];
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('Prometheus scraping the service', () => {
  let service: ServiceProcess;
  let prometheus: Prometheus;

  beforeAll(async () => {
    service = await startService({ LOG_LEVEL: 'warn' });
    // Compose's configuration, its targets pointed here and scraped every second.
    const config = parse(readFileSync(COMPOSE_PROMETHEUS, 'utf8')) as { global: Record<string, string>; scrape_configs: ScrapeConfig[] };
    config.global = { ...config.global, scrape_interval: '1s', evaluation_interval: '1s' };
    for (const job of config.scrape_configs)
      for (const sc of job.static_configs ?? [])
        sc.targets = sc.targets.map((t) =>
          t.startsWith('anomaly-detector:') ? new URL(service.url).host : t.startsWith('localhost:') ? 'PROMETHEUS_SELF' : t,
        );
    prometheus = await startPrometheus(stringify(config));
  });

  afterAll(async () => {
    await service?.stop('SIGKILL');
    await prometheus?.stop();
  });

  it('ships a compose scrape configuration that promtool accepts', () => {
    const r = promtool(['check', 'config', COMPOSE_PROMETHEUS]);
    expect({ code: r.code, output: r.output }).toEqual({ code: 0, output: expect.stringContaining('SUCCESS') });
    // A broken one is refused: the check can fail.
    const dir = mkdtempSync(join(tmpdir(), 'iad-promtool-'));
    writeFileSync(join(dir, 'bad.yml'), 'scrape_configs:\n  - job_name: a\n    scrape_interval: often\n');
    expect(promtool(['check', 'config', join(dir, 'bad.yml')]).code).not.toBe(0);
  });

  it("keeps the Kubernetes scrape job's pods (by label and annotation) and scrapes them under the rule's job, with namespace and pod", async () => {
    // Debian's Prometheus is built without Kubernetes discovery: the job's pods are given as
    // static targets carrying the labels Kubernetes discovery sets (annotations from k8s/*.yaml).
    const k8s = parse(readFileSync(K8S_SCRAPE_JOB, 'utf8')) as { scrape_configs: Array<ScrapeConfig & Record<string, unknown>> };
    const [job] = k8s.scrape_configs;
    const port = new URL(service.url).port;
    const pod = (name: string, scrape: string, app = 'anomaly-detector') => ({
      targets: ['127.0.0.1:9'],
      labels: {
        __meta_kubernetes_pod_label_app_kubernetes_io_name: app,
        __meta_kubernetes_pod_annotation_prometheus_io_scrape: scrape,
        __meta_kubernetes_pod_annotation_prometheus_io_port: port,
        __meta_kubernetes_pod_annotation_prometheus_io_path: '/metrics',
        __meta_kubernetes_namespace: 'observability',
        __meta_kubernetes_pod_name: name,
      },
    });
    const { kubernetes_sd_configs: sd, ...rest } = job;
    expect(sd).toEqual([{ role: 'pod' }]);
    const config = {
      global: { scrape_interval: '1s' },
      scrape_configs: [
        { ...rest, static_configs: [pod('anomaly-detector-0', 'true'), pod('not-annotated', 'false'), pod('other-app', 'true', 'other')] },
      ],
    };
    const dir = mkdtempSync(join(tmpdir(), 'iad-promtool-'));
    writeFileSync(join(dir, 'k8s.yml'), stringify(config));
    expect(promtool(['check', 'config', join(dir, 'k8s.yml')]).code).toBe(0);
    const p = await startPrometheus(stringify(config));
    try {
      const up = await until('the pod to be scraped', async () => {
        const v = await p.query('up');
        return v.length > 0 && v[0].value[1] === '1' ? v : undefined;
      });
      expect(up.map((s) => s.metric)).toEqual([
        { __name__: 'up', job: ruleJob(), instance: `127.0.0.1:${port}`, namespace: 'observability', pod: 'anomaly-detector-0' },
      ]);
    } finally {
      await p.stop();
    }
  });

  it('exposes metrics that parse and follow the naming rules (the three exceptions are prom-client defaults)', async () => {
    const text = await (await fetch(`${service.url}/metrics`)).text();
    const r = promtool(['check', 'metrics'], text);
    const findings = r.output
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => l.split(' ')[0]);
    // prom-client's default gauges of active handles, requests and resources end in _total.
    const PROM_CLIENT = [
      'anomaly_detector_nodejs_active_handles_total',
      'anomaly_detector_nodejs_active_requests_total',
      'anomaly_detector_nodejs_active_resources_total',
    ];
    expect(findings.filter((f) => !PROM_CLIENT.includes(f))).toEqual([]);
    // A badly named counter is reported: the check can fail.
    expect(promtool(['check', 'metrics'], '# HELP x_seconds_total y\n# TYPE x_seconds_total gauge\nx_seconds_total 1\n').output).toMatch(
      /x_seconds_total/,
    );
  });

  it('scrapes the service under the job the rules select, and counts what /detect scored', async () => {
    const post = (body: string) =>
      fetch(`${service.url}/detect`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const point = (i: number) => ({ host: `web-${i}`, cpu_usage: 20 + i, memory_usage: 40, network_load: 1000 * i });
    expect((await post(JSON.stringify({ points: [point(1), point(2)] }))).status).toBe(200);
    expect((await post(JSON.stringify({ points: [point(3)] }))).status).toBe(200);
    expect((await post('{"points":[{"cpu_usage":"x"}]}')).status).toBe(400);
    const scored = await until('the scored points in Prometheus', async () => {
      const v = await prometheus.query('anomaly_detector_points_scored_total{job="anomaly-detector",source="http"}');
      return v.length === 1 && v[0].value[1] === '3' ? v : undefined;
    });
    expect(scored[0].metric).toMatchObject({ instance: new URL(service.url).host });
    const targets = await prometheus.targets();
    expect(targets.find((t) => t.labels.job === 'anomaly-detector')).toMatchObject({ health: 'up', lastError: '' });
    const refused = await prometheus.query('anomaly_detector_http_request_duration_seconds_count{route="/detect",status_code="400"}');
    expect(refused.map((s) => s.value[1])).toEqual(['1']);
  });

  it('runs every Prometheus query of the dashboard and the alert rules, each finding its series', async () => {
    const queries = shippedQueries();
    expect(queries.length).toBeGreaterThanOrEqual(10);
    // rate() needs two scrapes in its window after the requests above.
    await new Promise((r) => setTimeout(r, 2500));
    for (const { where, expr } of queries) {
      const result = await prometheus.query(expr);
      expect({ where, expr, series: result.length > 0 }).toEqual({ where, expr, series: true });
    }
  });

  it("makes the detector-down rule's expression 1 while the service runs and 0 once it is killed", async () => {
    const down = shippedQueries().find((q) => q.where === 'rule ad-detector-down');
    if (!down) throw new Error('no detector-down rule with a Prometheus query');
    const value = async () => (await prometheus.query(down.expr)).map((s) => Number(s.value[1]));
    expect(await value()).toEqual([1]);
    await service.stop('SIGKILL');
    await until('up to fall to 0', async () => ((await value())[0] === 0 ? true : undefined), 20_000);
  });
});
