/**
 * Kubernetes manifests (k8s/), without a cluster: they parse, kustomization lists them
 * all, probes and ports point at routes and ports the service has, every environment
 * variable is in the config schema and makes a valid configuration for every pod (each
 * StatefulSet ordinal gets its own shard), and the HPA cannot break the sharding.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { CONFIG_ENV_NAMES, loadConfig, type Config } from '../../../src/config';
import { ownsHost } from '../../../src/poller/shard';
import { testApp } from '../../helpers/fixtures';
import { K8S_DIR } from './lib/paths';

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; namespace?: string };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  [k: string]: unknown;
}

interface Probe {
  httpGet?: { path: string; port: string | number };
  periodSeconds?: number;
  failureThreshold?: number;
}

interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  ports?: Array<{ name?: string; containerPort: number }>;
  env?: Array<{
    name: string;
    value?: string;
    valueFrom?: {
      fieldRef?: { fieldPath: string };
      configMapKeyRef?: { name: string; key: string };
      secretKeyRef?: { name: string; key: string };
    };
  }>;
  envFrom?: Array<{ configMapRef?: { name: string }; secretRef?: { name: string } }>;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: Record<string, unknown>;
}

interface PodTemplate {
  metadata: { labels: Record<string, string> };
  spec: { containers: Container[]; terminationGracePeriodSeconds?: number; securityContext?: Record<string, unknown> };
}

const files = readdirSync(K8S_DIR).filter((f) => /\.ya?ml$/.test(f));
const manifests: Array<Manifest & { file: string }> = [];
for (const file of files.filter((f) => f !== 'kustomization.yaml')) {
  for (const doc of parseAllDocuments(readFileSync(join(K8S_DIR, file), 'utf8'), { uniqueKeys: true })) {
    if (doc.errors.length > 0 || doc.warnings.length > 0)
      throw new Error(`${file}: ${[...doc.errors, ...doc.warnings].map((e) => e.message).join('; ')}`);
    const m = doc.toJS() as Manifest | null;
    if (m) manifests.push({ ...m, file });
  }
}
const ofKind = (kind: string) => manifests.filter((m) => m.kind === kind);
const named = (kind: string, name: string): Manifest => {
  const m = manifests.find((x) => x.kind === kind && x.metadata.name === name);
  if (!m) throw new Error(`no ${kind} ${name} in k8s/`);
  return m;
};
const workloads = manifests.filter((m) => m.kind === 'Deployment' || m.kind === 'StatefulSet');
const templateOf = (w: Manifest) => (w.spec as { template: PodTemplate }).template;
const replicasOf = (w: Manifest) => Number((w.spec as { replicas?: number }).replicas ?? 1);
const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

/** The environment a container gets, for a pod with the given labels. */
function containerEnv(c: Container, podLabels: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of c.envFrom ?? []) {
    if (from.configMapRef) Object.assign(env, named('ConfigMap', from.configMapRef.name).data ?? {});
    if (from.secretRef) Object.assign(env, named('Secret', from.secretRef.name).stringData ?? {});
  }
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.fieldRef) {
      const m = /^metadata\.labels\['([^']+)'\]$/.exec(e.valueFrom.fieldRef.fieldPath);
      if (!m) throw new Error(`${e.name}: fieldRef ${e.valueFrom.fieldRef.fieldPath} not understood by the check`);
      const v = podLabels[m[1]];
      if (v === undefined) throw new Error(`${e.name}: pod has no label ${m[1]}`);
      env[e.name] = v;
    } else if (e.valueFrom?.configMapKeyRef)
      env[e.name] = named('ConfigMap', e.valueFrom.configMapKeyRef.name).data?.[e.valueFrom.configMapKeyRef.key] ?? '';
    else if (e.valueFrom?.secretKeyRef)
      env[e.name] = named('Secret', e.valueFrom.secretKeyRef.name).stringData?.[e.valueFrom.secretKeyRef.key] ?? '';
    else throw new Error(`${e.name}: no value`);
  }
  return env;
}

/** Labels of each pod a workload creates (StatefulSets add the ordinal, Kubernetes >= 1.28). */
function pods(w: Manifest): Array<{ name: string; labels: Record<string, string> }> {
  const labels = templateOf(w).metadata.labels;
  return Array.from({ length: replicasOf(w) }, (_, i) =>
    w.kind === 'StatefulSet'
      ? {
          name: `${w.metadata.name}-${i}`,
          labels: { ...labels, 'apps.kubernetes.io/pod-index': String(i), 'statefulset.kubernetes.io/pod-name': `${w.metadata.name}-${i}` },
        }
      : { name: `${w.metadata.name}-${i}`, labels },
  );
}

describe('Kubernetes manifests', () => {
  it('parse, have kind, apiVersion and a name, and are all listed in kustomization.yaml', () => {
    expect(manifests.length).toBeGreaterThanOrEqual(8);
    for (const m of manifests) {
      expect({ file: m.file, apiVersion: typeof m.apiVersion, kind: typeof m.kind, name: m.metadata?.name }).toEqual({
        file: m.file,
        apiVersion: 'string',
        kind: 'string',
        name: expect.stringMatching(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/),
      });
    }
    const keys = manifests.map((m) => `${m.kind}/${m.metadata.name}`);
    expect(new Set(keys).size).toBe(keys.length);
    const kustomization = parseAllDocuments(readFileSync(join(K8S_DIR, 'kustomization.yaml'), 'utf8'))[0].toJS() as { resources: string[] };
    expect([...kustomization.resources].sort()).toEqual(files.filter((f) => f !== 'kustomization.yaml').sort());
    for (const kind of ['StatefulSet', 'Deployment', 'Service', 'ConfigMap', 'Secret', 'PodDisruptionBudget', 'HorizontalPodAutoscaler'])
      expect({ kind, present: ofKind(kind).length > 0 }).toEqual({ kind, present: true });
  });

  it('pin the image and set resources, a non-root user and a read-only root filesystem', () => {
    for (const w of workloads) {
      const t = templateOf(w);
      expect(t.spec.securityContext).toMatchObject({ runAsNonRoot: true });
      for (const c of t.spec.containers) {
        expect(c.image).toMatch(/^[^:@]+:(?!latest$)[\w.-]+$/);
        expect(c.resources?.requests?.cpu).toBeDefined();
        expect(c.resources?.requests?.memory).toBeDefined();
        expect(c.resources?.limits?.memory).toBeDefined();
        expect(c.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true });
        // The image's CMD (node as PID 1) starts the service: no override.
        expect(c.command).toBeUndefined();
        expect(c.args).toBeUndefined();
      }
    }
  });

  it('give every pod only variables from the config schema, and a valid configuration', () => {
    for (const w of workloads) {
      for (const pod of pods(w)) {
        for (const c of templateOf(w).spec.containers) {
          const env = containerEnv(c, pod.labels);
          for (const k of Object.keys(env))
            expect({ pod: pod.name, variable: k, known: CONFIG_ENV_NAMES.includes(k) }).toEqual({
              pod: pod.name,
              variable: k,
              known: true,
            });
          expect(() => loadConfig(env)).not.toThrow();
        }
      }
    }
  });

  it("shard the hosts across the StatefulSet's pods by ordinal: each host belongs to exactly one pod", () => {
    const sts = ofKind('StatefulSet');
    expect(sts).toHaveLength(1);
    const configs: Config[] = pods(sts[0]).map((p) => loadConfig(containerEnv(templateOf(sts[0]).spec.containers[0], p.labels)));
    const replicas = replicasOf(sts[0]);
    expect(replicas).toBeGreaterThanOrEqual(2);
    for (const c of configs) {
      expect(c.influx).not.toBeNull();
      expect(c.poller.shard.count).toBe(replicas);
    }
    expect(configs.map((c) => c.poller.shard.index)).toEqual(Array.from({ length: replicas }, (_, i) => i));
    // SHARD_INDEX comes from the pod, not from a fixed value.
    const shardEnv = templateOf(sts[0]).spec.containers[0].env?.find((e) => e.name === 'SHARD_INDEX');
    expect(shardEnv?.valueFrom?.fieldRef?.fieldPath).toBe("metadata.labels['apps.kubernetes.io/pod-index']");
    for (let i = 0; i < 500; i++) {
      const host = `host-${i}.example.internal`;
      expect(configs.filter((c) => ownsHost(c.poller.shard, host))).toHaveLength(1);
    }
  });

  it('scale only the HTTP replicas with the HPA (CPU); they run without the poller', () => {
    const hpas = ofKind('HorizontalPodAutoscaler');
    expect(hpas.length).toBeGreaterThan(0);
    for (const h of hpas) {
      const spec = h.spec as {
        scaleTargetRef: { kind: string; name: string; apiVersion: string };
        minReplicas: number;
        maxReplicas: number;
        metrics: Array<{ type: string; resource?: { name: string; target: { type: string } } }>;
      };
      expect(h.apiVersion).toBe('autoscaling/v2');
      expect(spec.scaleTargetRef.kind).toBe('Deployment');
      const target = named('Deployment', spec.scaleTargetRef.name);
      expect(spec.minReplicas).toBeGreaterThanOrEqual(1);
      expect(spec.maxReplicas).toBeGreaterThan(spec.minReplicas);
      expect(
        spec.metrics.some((m) => m.type === 'Resource' && m.resource?.name === 'cpu' && m.resource.target.type === 'Utilization'),
      ).toBe(true);
      for (const c of templateOf(target).spec.containers) {
        expect(c.resources?.requests?.cpu).toBeDefined();
        // A scaled replica with the poller on would score every host again.
        expect(loadConfig(containerEnv(c, templateOf(target).metadata.labels)).influx).toBeNull();
      }
    }
  });

  it('probe /health/live (liveness) and /health (readiness) on the port the service listens on', async () => {
    const app = await testApp();
    try {
      for (const w of workloads) {
        const t = templateOf(w);
        for (const c of t.spec.containers) {
          const config = loadConfig(containerEnv(c, pods(w)[0].labels));
          const ports = c.ports ?? [];
          expect(ports.map((p) => p.containerPort)).toEqual([config.port]);
          expect(c.livenessProbe?.httpGet?.path).toBe('/health/live');
          expect(c.readinessProbe?.httpGet?.path).toBe('/health');
          for (const probe of [c.livenessProbe, c.readinessProbe, c.startupProbe].filter((p): p is Probe => p !== undefined)) {
            const port = probe.httpGet?.port;
            const number = typeof port === 'number' ? port : ports.find((p) => p.name === port)?.containerPort;
            expect({ workload: w.metadata.name, port, resolves: number === config.port }).toEqual({
              workload: w.metadata.name,
              port,
              resolves: true,
            });
            const res = await app.inject({ method: 'GET', url: probe.httpGet?.path as string });
            expect({ path: probe.httpGet?.path, status: res.statusCode }).toEqual({ path: probe.httpGet?.path, status: 200 });
          }
          // Pods get time to finish requests in flight before SIGKILL.
          expect(t.spec.terminationGracePeriodSeconds ?? 30).toBeGreaterThan(config.shutdownTimeoutS);
        }
      }
    } finally {
      await app.close();
    }
  });

  it("route Services, PDBs and the StatefulSet's headless Service to existing pods and ports", () => {
    for (const s of ofKind('Service')) {
      const spec = s.spec as {
        selector: Record<string, string>;
        ports: Array<{ port: number; targetPort: string | number }>;
        clusterIP?: string;
      };
      const selected = workloads.filter((w) => matches(spec.selector, templateOf(w).metadata.labels));
      expect({ service: s.metadata.name, selects: selected.length }).toEqual({ service: s.metadata.name, selects: 1 });
      for (const p of spec.ports) {
        const container = templateOf(selected[0]).spec.containers[0];
        const ok =
          typeof p.targetPort === 'number'
            ? container.ports?.some((cp) => cp.containerPort === p.targetPort)
            : container.ports?.some((cp) => cp.name === p.targetPort);
        expect({ service: s.metadata.name, targetPort: p.targetPort, ok }).toEqual({
          service: s.metadata.name,
          targetPort: p.targetPort,
          ok: true,
        });
      }
    }
    for (const w of workloads) {
      const sel = (w.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels;
      expect(matches(sel, templateOf(w).metadata.labels)).toBe(true);
      // Selectors are distinct: no workload adopts the other's pods.
      for (const o of workloads.filter((x) => x !== w)) expect(matches(sel, templateOf(o).metadata.labels)).toBe(false);
    }
    const sts = ofKind('StatefulSet')[0];
    const headless = named('Service', (sts.spec as { serviceName: string }).serviceName);
    expect((headless.spec as { clusterIP?: string }).clusterIP).toBe('None');
    for (const pdb of ofKind('PodDisruptionBudget')) {
      const sel = (pdb.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels;
      expect({ pdb: pdb.metadata.name, selects: workloads.filter((w) => matches(sel, templateOf(w).metadata.labels)).length }).toEqual({
        pdb: pdb.metadata.name,
        selects: 1,
      });
    }
    expect(
      ofKind('PodDisruptionBudget')
        .map((p) => p.metadata.name)
        .sort(),
    ).toEqual(workloads.map((w) => w.metadata.name).sort());
  });

  it('keep secrets in the Secret and annotate pods for Prometheus on the service port', () => {
    const secretKeys = new Set(ofKind('Secret').flatMap((s) => Object.keys(s.stringData ?? {})));
    expect([...secretKeys].sort()).toEqual(['API_TOKEN', 'INFLUX_TOKEN']);
    for (const cm of ofKind('ConfigMap')) for (const k of Object.keys(cm.data ?? {})) expect(k).not.toMatch(/TOKEN|PASSWORD/);
    for (const w of workloads) {
      const ann = (templateOf(w).metadata as { annotations?: Record<string, string> }).annotations ?? {};
      expect(ann['prometheus.io/scrape']).toBe('true');
      expect(ann['prometheus.io/path']).toBe('/metrics');
      expect(Number(ann['prometheus.io/port'])).toBe(templateOf(w).spec.containers[0].ports?.[0].containerPort);
    }
  });
});
