/**
 * Issue 11 item 14: the "Anomaly detector down" rule selects up{job="..."} and fires on
 * no data, so every way the service is scraped (compose, the Prometheus Operator, an
 * annotation-based Prometheus on Kubernetes) must produce exactly that job for every
 * pod, or the rule fires for ever.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { K8S_DIR, PROMETHEUS_YML, REPO } from './lib/paths';

type Doc = { kind: string; metadata: { name: string; labels?: Record<string, string> }; spec: Record<string, unknown> };
const docs = (file: string): Doc[] => parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS() as Doc);
const k8s = ['api-deployment.yaml', 'poller-statefulset.yaml', 'service.yaml'].flatMap((f) => docs(join(K8S_DIR, f)));
const services = k8s.filter((d) => d.kind === 'Service');
const workloads = k8s.filter((d) => d.kind === 'Deployment' || d.kind === 'StatefulSet');
const matches = (sel: Record<string, string>, labels: Record<string, string> = {}) =>
  Object.entries(sel).every(([k, v]) => labels[k] === v);

/** The job the rule selects. */
function ruleJob(): string {
  const text = readFileSync(join(REPO, 'grafana', 'provisioning', 'alerting', 'alert-rules.yml'), 'utf8');
  const rules = (
    parse(text) as { groups: Array<{ rules: Array<{ uid: string; noDataState: string; data: Array<{ model: { expr?: string } }> }> }> }
  ).groups.flatMap((g) => g.rules);
  const down = rules.find((r) => r.uid === 'ad-detector-down');
  if (!down) throw new Error('no detector-down rule');
  expect(down.noDataState).toBe('Alerting');
  const m = /up\{job="([^"]+)"\}/.exec(down.data.map((d) => d.model.expr ?? '').join(' '));
  if (!m) throw new Error('the rule selects no job');
  return m[1];
}

describe('scrape configurations agree with the detector-down rule', () => {
  const job = ruleJob();

  it('compose: Prometheus scrapes the service under that job', () => {
    const p = parse(readFileSync(PROMETHEUS_YML, 'utf8')) as {
      scrape_configs: Array<{ job_name: string; static_configs: Array<{ targets: string[] }> }>;
    };
    expect(
      p.scrape_configs.find((s) => s.static_configs.some((c) => c.targets.some((t) => t.startsWith('anomaly-detector:'))))?.job_name,
    ).toBe(job);
  });

  it('Prometheus Operator: the ServiceMonitor selects both Services and labels their targets with that job', () => {
    const [sm] = docs(join(K8S_DIR, 'monitoring', 'servicemonitor.yaml'));
    expect(sm.kind).toBe('ServiceMonitor');
    const spec = sm.spec as {
      jobLabel?: string;
      selector: { matchLabels: Record<string, string> };
      endpoints: Array<{ port: string; path: string }>;
    };
    const selected = services.filter((s) => matches(spec.selector.matchLabels, s.metadata.labels));
    expect(selected.map((s) => s.metadata.name).sort()).toEqual(['anomaly-detector', 'anomaly-detector-poller']);
    for (const s of selected) {
      // The operator sets job to the value of jobLabel on the Service (default: the Service's name).
      const jobOf = spec.jobLabel ? s.metadata.labels?.[spec.jobLabel] : s.metadata.name;
      expect([s.metadata.name, jobOf]).toEqual([s.metadata.name, job]);
      const ports = (s.spec as { ports: Array<{ name: string }> }).ports.map((p) => p.name);
      for (const e of spec.endpoints) expect(ports).toContain(e.port);
    }
    expect(spec.endpoints.map((e) => e.path)).toEqual(['/metrics']);
    const kustomization = parse(readFileSync(join(K8S_DIR, 'monitoring', 'kustomization.yaml'), 'utf8')) as { resources: string[] };
    expect(kustomization.resources).toEqual(['servicemonitor.yaml']);
  });

  it('annotation-based Prometheus: the documented job keeps every pod of both workloads, under that job', () => {
    const cfg = parse(readFileSync(join(K8S_DIR, 'monitoring', 'prometheus-scrape-job.yaml'), 'utf8')) as {
      scrape_configs: Array<{
        job_name: string;
        relabel_configs: Array<{ source_labels?: string[]; regex?: string; action?: string; target_label?: string }>;
      }>;
    };
    const [sc] = cfg.scrape_configs;
    expect(sc.job_name).toBe(job);
    // No relabelling may rename the job.
    expect(sc.relabel_configs.some((r) => r.target_label === 'job')).toBe(false);
    const keep = sc.relabel_configs.filter((r) => r.action === 'keep');
    for (const w of workloads) {
      const t = (w.spec as { template: { metadata: { labels: Record<string, string>; annotations: Record<string, string> } } }).template
        .metadata;
      const meta: Record<string, string> = {};
      for (const [k, v] of Object.entries(t.labels)) meta[`__meta_kubernetes_pod_label_${k.replace(/[^a-zA-Z0-9_]/g, '_')}`] = v;
      for (const [k, v] of Object.entries(t.annotations)) meta[`__meta_kubernetes_pod_annotation_${k.replace(/[^a-zA-Z0-9_]/g, '_')}`] = v;
      for (const r of keep) {
        const value = (r.source_labels ?? []).map((l) => meta[l] ?? '').join(';');
        expect([w.metadata.name, new RegExp(`^(?:${r.regex})$`).test(value)]).toEqual([w.metadata.name, true]);
      }
    }
  });

  it('the README says how Kubernetes scrapes must be labelled', () => {
    expect(readFileSync(join(REPO, 'README.md'), 'utf8')).toMatch(/k8s\/monitoring/);
  });
});
