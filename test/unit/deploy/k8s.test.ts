/**
 * Kubernetes manifests (k8s/), without a cluster: they parse, kustomization lists them
 * all, probes and ports point at routes and ports the service has, every environment
 * variable is in the config schema and makes a valid configuration for every pod (each
 * StatefulSet ordinal gets its own shard), and the HPA cannot break the sharding.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { CONFIG_ENV_NAMES, loadConfig, type Config } from '../../../src/config';
import { ownsHost } from '../../../src/poller/shard';
import { testApp } from '../../helpers/fixtures';
import { argvOf, loadCompose } from './lib/compose';
import { COMPOSE_FILE, DOCKERFILE, K8S_DIR, REPO } from './lib/paths';

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

/** Every manifest in a directory's YAML files (not its kustomization.yaml nor subdirectories). */
function loadDir(dir: string): Array<Manifest & { file: string }> {
  const out: Array<Manifest & { file: string }> = [];
  for (const file of readdirSync(dir).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml')) {
    for (const doc of parseAllDocuments(readFileSync(join(dir, file), 'utf8'), { uniqueKeys: true })) {
      if (doc.errors.length > 0 || doc.warnings.length > 0)
        throw new Error(`${file}: ${[...doc.errors, ...doc.warnings].map((e) => e.message).join('; ')}`);
      const m = doc.toJS() as Manifest | null;
      if (m) out.push({ ...m, file });
    }
  }
  return out;
}
/** What a Kafka consumer runs: the image's entry point with a consumer's V8 flags. */
const KAFKA_COMMAND = ['node', '--max-semi-space-size=16', 'dist/src/cli/main.js', 'serve'];
const files = readdirSync(K8S_DIR).filter((f) => /\.ya?ml$/.test(f));
const manifests = loadDir(K8S_DIR);
const ofKind = (kind: string) => manifests.filter((m) => m.kind === kind);
const named = (kind: string, name: string, set: Manifest[] = manifests): Manifest => {
  const m = set.find((x) => x.kind === kind && x.metadata.name === name);
  if (!m) throw new Error(`no ${kind} ${name} in k8s/`);
  return m;
};
const namedIn = named;
const workloads = manifests.filter((m) => m.kind === 'Deployment' || m.kind === 'StatefulSet');
const templateOf = (w: Manifest) => (w.spec as { template: PodTemplate }).template;
const replicasOf = (w: Manifest) => Number((w.spec as { replicas?: number }).replicas ?? 1);
const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

/** The environment a container gets, for a pod with the given labels. */
function containerEnv(c: Container, podLabels: Record<string, string>, set: Manifest[] = manifests): Record<string, string> {
  const named = (kind: string, name: string) => namedIn(kind, name, set);
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

  it("probe /health/live on the liveness thread's port (LIVENESS_PORT) and /health (readiness) on the port the service listens on", async () => {
    const app = await testApp();
    try {
      for (const w of workloads) {
        const t = templateOf(w);
        for (const c of t.spec.containers) {
          const config = loadConfig(containerEnv(c, pods(w)[0].labels));
          const ports = c.ports ?? [];
          // The HTTP port and the liveness thread's (src/liveness.ts): a busy event loop does not delay the probe.
          expect(config.liveness).not.toBeNull();
          expect(ports.map((p) => p.containerPort)).toEqual([config.port, config.liveness?.port]);
          expect(c.livenessProbe?.httpGet?.path).toBe('/health/live');
          expect(c.readinessProbe?.httpGet?.path).toBe('/health');
          const resolve = (probe: Probe | undefined) => {
            const port = probe?.httpGet?.port;
            return typeof port === 'number' ? port : ports.find((p) => p.name === port)?.containerPort;
          };
          expect({ workload: w.metadata.name, liveness: resolve(c.livenessProbe) }).toEqual({
            workload: w.metadata.name,
            liveness: config.liveness?.port,
          });
          for (const probe of [c.readinessProbe, c.startupProbe].filter((p): p is Probe => p !== undefined)) {
            const port = probe.httpGet?.port;
            expect({ workload: w.metadata.name, port, resolves: resolve(probe) === config.port }).toEqual({
              workload: w.metadata.name,
              port,
              resolves: true,
            });
          }
          // The same path on the main port answers too (the in-loop check), as the liveness thread does (test/integration/liveness.test.ts).
          for (const probe of [c.livenessProbe, c.readinessProbe, c.startupProbe].filter((p): p is Probe => p !== undefined)) {
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

/**
 * k8s/kafka: a kustomize Component on the base (kustomize cannot build an overlay inside
 * its base's directory). Built here as kustomize would: the base's manifests, minus the
 * ones its `$patch: delete` patches remove, plus its own resources.
 */
describe('Kubernetes manifests: the Kafka mode (k8s/kafka, a Component on the base)', () => {
  const KAFKA_DIR = join(K8S_DIR, 'kafka');
  const component = parse(readFileSync(join(KAFKA_DIR, 'kustomization.yaml'), 'utf8')) as {
    apiVersion: string;
    kind: string;
    resources: string[];
    patches: Array<{ patch?: string; path?: string; target?: unknown }>;
    labels?: Array<{ pairs: Record<string, string> }>;
  };
  const added = loadDir(KAFKA_DIR);
  const key = (m: Manifest) => `${m.kind}/${m.metadata.name}`;
  const deleted = component.patches.map((p) => {
    const d = (p.patch === undefined ? undefined : parse(p.patch)) as (Manifest & { $patch?: string }) | undefined;
    if (!d || d.$patch !== 'delete' || p.path !== undefined || p.target !== undefined)
      throw new Error(`k8s/kafka: patch ${JSON.stringify(p)}: only inline \`$patch: delete\` patches are understood by the check`);
    return key(d);
  });
  const set: Manifest[] = [...manifests.filter((m) => !deleted.includes(key(m))), ...added];
  const of = (kind: string) => set.filter((m) => m.kind === kind);
  const loads = set.filter((m) => m.kind === 'Deployment' || m.kind === 'StatefulSet');
  const consumers = () => named('Deployment', 'anomaly-detector-kafka', set);
  const envOf = (w: Manifest) => containerEnv(templateOf(w).spec.containers[0], templateOf(w).metadata.labels, set);
  const scaled = () => named('ScaledObject', 'anomaly-detector-kafka', set);
  interface KafkaTrigger {
    type: string;
    metadata: Record<string, string>;
    authenticationRef?: { name: string; kind?: string };
  }
  const scaledSpec = () =>
    scaled().spec as {
      scaleTargetRef: { apiVersion?: string; kind?: string; name: string };
      minReplicaCount?: number;
      maxReplicaCount?: number;
      pollingInterval?: number;
      advanced?: { horizontalPodAutoscalerConfig?: { behavior?: { scaleDown?: { stabilizationWindowSeconds?: number } } } };
      triggers: KafkaTrigger[];
    };

  it('is a Component listing all its files; it removes exactly the pollers, and the base stays in InfluxDB mode', () => {
    expect(component).toMatchObject({ apiVersion: 'kustomize.config.k8s.io/v1alpha1', kind: 'Component' });
    const own = readdirSync(KAFKA_DIR).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml');
    expect([...component.resources].sort()).toEqual(own.sort());
    // What it deletes exists in the base: a renamed poller would otherwise stay and score every host a second time.
    for (const d of deleted) expect({ d, inBase: manifests.some((m) => key(m) === d) }).toEqual({ d, inBase: true });
    expect(deleted.sort()).toEqual(
      manifests
        .filter((m) => m.metadata.labels?.['app.kubernetes.io/component'] === 'poller')
        .map(key)
        .sort(),
    );
    expect(of('StatefulSet')).toEqual([]);
    const keys = set.map(key);
    expect(keys.filter((k, i) => keys.indexOf(k) !== i)).toEqual([]);
    for (const m of added) {
      expect({ m: key(m), name: m.metadata.name }).toEqual({ m: key(m), name: expect.stringMatching(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/) });
      expect(m.metadata.labels).toMatchObject({ 'app.kubernetes.io/name': 'anomaly-detector', 'app.kubernetes.io/component': 'kafka' });
    }
    expect(component.labels?.[0]?.pairs).toEqual({ 'app.kubernetes.io/part-of': 'anomaly-detector' });
    // `kubectl apply -k k8s/` is unchanged: the component is only mentioned there, not used.
    const base = parse(readFileSync(join(K8S_DIR, 'kustomization.yaml'), 'utf8')) as { components?: string[] };
    expect(base.components).toBeUndefined();
    for (const kind of ['Deployment', 'Service', 'ConfigMap', 'Secret', 'PodDisruptionBudget', 'ScaledObject', 'TriggerAuthentication'])
      expect({ kind, present: added.some((m) => m.kind === kind) }).toEqual({ kind, present: true });
  });

  it('pin the image and set resources, a non-root user and a read-only root filesystem', () => {
    for (const w of loads) {
      const t = templateOf(w);
      expect(t.spec.securityContext).toMatchObject({ runAsNonRoot: true });
      for (const c of t.spec.containers) {
        expect(c.image).toBe(templateOf(named('Deployment', 'anomaly-detector-api')).spec.containers[0].image);
        expect(c.resources?.requests?.cpu).toBeDefined();
        expect(c.resources?.requests?.memory).toBeDefined();
        expect(c.resources?.limits?.memory).toBeDefined();
        expect(c.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true });
        // The image's CMD; the consumers' with their V8 flags (a larger young generation,
        // the default old-generation growth): node as PID 1, the same entry point and command.
        expect(c.command).toEqual(w === consumers() ? KAFKA_COMMAND : undefined);
        expect(c.args).toBeUndefined();
      }
    }
  });

  it('run the consumers as the Kafka service of compose and `npm run bench:kafka` do: the entry point of the image with other V8 flags', () => {
    const { compose } = loadCompose(COMPOSE_FILE);
    expect(argvOf(compose.services['anomaly-detector-kafka'].command)).toEqual(KAFKA_COMMAND);
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts['bench:kafka']).toContain(`node ${KAFKA_COMMAND.slice(1, -2).join(' ')} dist/bench/kafka.js`);
    const cmd = /^CMD (\[.*\])$/m.exec(readFileSync(DOCKERFILE, 'utf8'));
    const image = JSON.parse(cmd?.[1] ?? '[]') as string[];
    expect([image[0], ...image.slice(-2)]).toEqual([KAFKA_COMMAND[0], ...KAFKA_COMMAND.slice(-2)]);
  });

  it('give every pod only variables from the config schema: the consumers in Kafka mode, the HTTP replicas with no source', () => {
    for (const w of loads) {
      const env = envOf(w);
      for (const k of Object.keys(env))
        expect({ workload: w.metadata.name, variable: k, known: CONFIG_ENV_NAMES.includes(k) }).toEqual({
          workload: w.metadata.name,
          variable: k,
          known: true,
        });
      expect(() => loadConfig(env)).not.toThrow();
    }
    const config = loadConfig(envOf(consumers()));
    expect(config.kafka).toMatchObject({ topic: 'telegraf', tls: null, sasl: null });
    expect(config.kafka?.brokers.length).toBeGreaterThan(0);
    // Predictions where the pollers wrote them (Grafana reads them there); the poller is off in Kafka mode.
    expect(config.influx).toMatchObject({ api: 'v1', database: 'system_metrics' });
    const api = loadConfig(envOf(named('Deployment', 'anomaly-detector-api', set)));
    expect([api.kafka, api.influx]).toEqual([null, null]);
    // TLS and SASL as configmap.yaml's comments describe them make a valid configuration too.
    const secure = loadConfig({
      ...envOf(consumers()),
      KAFKA_TLS: 'true',
      KAFKA_TLS_CA_FILE: '/etc/anomaly-detector/kafka-ca/ca.crt',
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: 'anomaly-detector',
      KAFKA_SASL_PASSWORD: 'secret',
    });
    expect(secure.kafka).toMatchObject({ tls: { caFile: '/etc/anomaly-detector/kafka-ca/ca.crt' }, sasl: { mechanism: 'scram-sha-512' } });
  });

  it('probe /health/live (liveness) and /health (readiness) on the port the service listens on', async () => {
    const w = consumers();
    const c = templateOf(w).spec.containers[0];
    const config = loadConfig(envOf(w));
    expect((c.ports ?? []).map((p) => p.containerPort)).toEqual([config.port]);
    expect(c.livenessProbe?.httpGet?.path).toBe('/health/live');
    expect(c.startupProbe?.httpGet?.path).toBe('/health/live');
    expect(c.readinessProbe?.httpGet?.path).toBe('/health');
    const app = await testApp(envOf(w));
    try {
      for (const probe of [c.livenessProbe, c.readinessProbe, c.startupProbe].filter((p): p is Probe => p !== undefined)) {
        const port = probe.httpGet?.port;
        expect((typeof port === 'number' ? port : c.ports?.find((p) => p.name === port)?.containerPort) === config.port).toBe(true);
        const res = await app.inject({ method: 'GET', url: probe.httpGet?.path as string });
        expect({ path: probe.httpGet?.path, status: res.statusCode }).toEqual({ path: probe.httpGet?.path, status: 200 });
      }
    } finally {
      await app.close();
    }
    expect(templateOf(w).spec.terminationGracePeriodSeconds ?? 30).toBeGreaterThan(config.shutdownTimeoutS);
  });

  it("scale the consumers with KEDA on their group's lag, within the topic's partitions; nothing else scales them", () => {
    const so = scaled();
    const spec = scaledSpec();
    expect(so.apiVersion).toBe('keda.sh/v1alpha1');
    expect(spec.scaleTargetRef).toMatchObject({ name: 'anomaly-detector-kafka' });
    expect(spec.scaleTargetRef.kind ?? 'Deployment').toBe('Deployment');
    // KEDA's HPA owns the count: a replicas field would be reset on every apply.
    expect((consumers().spec as { replicas?: number }).replicas).toBeUndefined();
    // The base's CPU HPA scales only the HTTP replicas.
    for (const h of of('HorizontalPodAutoscaler'))
      expect((h.spec as { scaleTargetRef: { name: string } }).scaleTargetRef.name).not.toBe('anomaly-detector-kafka');
    expect(spec.triggers).toHaveLength(1);
    const [t] = spec.triggers;
    expect(t.type).toBe('kafka');
    const k = loadConfig(envOf(consumers())).kafka;
    // The lag KEDA reads is the consumers' own: same brokers, group and topic.
    expect(t.metadata.bootstrapServers).toBe(k?.brokers.join(','));
    expect(t.metadata.consumerGroup).toBe(k?.groupId);
    expect(t.metadata.topic).toBe(k?.topic);
    expect(t.metadata.lagThreshold).toMatch(/^[1-9]\d*$/);
    // A new group starts at the newest messages, as the service does.
    expect(t.metadata.offsetResetPolicy).toBe('latest');
    expect(t.metadata.allowIdleConsumers ?? 'false').toBe('false');
    // Never to zero (no member, no commits, and each start replays); at most the partitions.
    const min = spec.minReplicaCount ?? 0;
    const max = spec.maxReplicaCount ?? 100;
    expect(min).toBeGreaterThanOrEqual(1);
    expect(max).toBeGreaterThan(min);
    const init = argvOf(loadCompose(COMPOSE_FILE).compose.services['kafka-init']?.command);
    const partitions = Number(init[init.indexOf('--partitions') + 1]);
    expect(init[init.indexOf('--topic') + 1]).toBe(t.metadata.topic);
    expect(max).toBeLessThanOrEqual(partitions);
    // Each change rebalances the group and replays moved partitions: scale down slowly.
    expect(spec.advanced?.horizontalPodAutoscalerConfig?.behavior?.scaleDown?.stabilizationWindowSeconds ?? 300).toBeGreaterThanOrEqual(
      300,
    );
  });

  it("give KEDA the consumers' TLS and SASL settings and credentials", () => {
    const [t] = scaledSpec().triggers;
    const k = loadConfig(envOf(consumers())).kafka;
    const sasl = { plain: 'plaintext', 'scram-sha-256': 'scram_sha256', 'scram-sha-512': 'scram_sha512' } as const;
    expect(t.metadata.sasl ?? 'none').toBe(k?.sasl ? sasl[k.sasl.mechanism] : 'none');
    expect(t.metadata.tls ?? 'disable').toBe(k?.tls ? 'enable' : 'disable');
    const auth = named('TriggerAuthentication', t.authenticationRef?.name ?? '', set);
    expect(auth.apiVersion).toBe('keda.sh/v1alpha1');
    const refs = (auth.spec as { secretTargetRef: Array<{ parameter: string; name: string; key: string }> }).secretTargetRef;
    const secretOf = (parameter: string) => refs.find((r) => r.parameter === parameter);
    // The keys the consumers read their credentials from (envFrom of the same Secret).
    const fromSecrets = (templateOf(consumers()).spec.containers[0].envFrom ?? []).flatMap((f) => (f.secretRef ? [f.secretRef.name] : []));
    for (const [parameter, variable] of [
      ['username', 'KAFKA_SASL_USERNAME'],
      ['password', 'KAFKA_SASL_PASSWORD'],
    ]) {
      const r = secretOf(parameter);
      expect({ parameter, key: r?.key, consumersRead: fromSecrets.includes(r?.name ?? '') }).toEqual({
        parameter,
        key: variable,
        consumersRead: true,
      });
      expect(Object.keys(named('Secret', r?.name ?? '', set).stringData ?? {})).toContain(variable);
    }
    for (const r of refs) expect(Object.keys(named('Secret', r.name, set).stringData ?? {})).toContain(r.key);
    // Credentials only in Secrets.
    for (const cm of of('ConfigMap')) for (const key of Object.keys(cm.data ?? {})) expect(key).not.toMatch(/TOKEN|PASSWORD|USERNAME/);
  });

  it("route Services and PDBs to one workload each, and have the consumers scraped under the alert rule's job", () => {
    for (const s of of('Service')) {
      const spec = s.spec as { selector: Record<string, string>; ports: Array<{ name: string; targetPort: string | number }> };
      const selected = loads.filter((w) => matches(spec.selector, templateOf(w).metadata.labels));
      expect({ service: s.metadata.name, selects: selected.length }).toEqual({ service: s.metadata.name, selects: 1 });
      for (const p of spec.ports)
        expect(
          templateOf(selected[0]).spec.containers[0].ports?.some((cp) => cp.name === p.targetPort || cp.containerPort === p.targetPort),
        ).toBe(true);
    }
    for (const w of loads) {
      const sel = (w.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels;
      expect(matches(sel, templateOf(w).metadata.labels)).toBe(true);
      for (const o of loads.filter((x) => x !== w)) expect(matches(sel, templateOf(o).metadata.labels)).toBe(false);
    }
    for (const pdb of of('PodDisruptionBudget')) {
      const sel = (pdb.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels;
      expect({ pdb: pdb.metadata.name, selects: loads.filter((w) => matches(sel, templateOf(w).metadata.labels)).length }).toEqual({
        pdb: pdb.metadata.name,
        selects: 1,
      });
    }
    expect(
      of('PodDisruptionBudget')
        .map((p) => p.metadata.name)
        .sort(),
    ).toEqual(loads.map((w) => w.metadata.name).sort());
    // k8s/monitoring's ServiceMonitor selects the consumers' Service (job label: app.kubernetes.io/name).
    const [sm] = loadDir(join(K8S_DIR, 'monitoring')).filter((m) => m.kind === 'ServiceMonitor');
    const smSpec = sm.spec as { jobLabel: string; selector: { matchLabels: Record<string, string> }; endpoints: Array<{ port: string }> };
    const svc = named('Service', 'anomaly-detector-kafka', set);
    expect(matches(smSpec.selector.matchLabels, svc.metadata.labels ?? {})).toBe(true);
    expect(svc.metadata.labels?.[smSpec.jobLabel]).toBe('anomaly-detector');
    expect((svc.spec as { ports: Array<{ name: string }> }).ports.map((p) => p.name)).toContain(smSpec.endpoints[0].port);
    const ann = (templateOf(consumers()).metadata as { annotations?: Record<string, string> }).annotations ?? {};
    expect(ann).toMatchObject({ 'prometheus.io/scrape': 'true', 'prometheus.io/path': '/metrics' });
    expect(Number(ann['prometheus.io/port'])).toBe(templateOf(consumers()).spec.containers[0].ports?.[0].containerPort);
  });
});
