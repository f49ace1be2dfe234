import { presetMapping } from '../../../src/poller/telegraf';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { CONFIG_ENV_NAMES, loadConfig } from '../../../src/config';
import { simulate, DEFAULT_SIMULATION } from '../../../src/data/simulate';
import { testApp } from '../../helpers/fixtures';
import {
  argvOf,
  bindMountsOf,
  dependsOn,
  environmentOf,
  loadCompose,
  parseYamlStrict,
  portsOf,
  type ComposeFile,
  type ComposeService,
} from './lib/compose';
import { loadDatasources } from './lib/grafana';
import { COMPOSE_FILE, ENV_EXAMPLE, PROMETHEUS_YML, REPO, TELEGRAF_CONF } from './lib/paths';
import { parseTelegrafToml, type TomlTable } from './lib/toml';

const COMPOSE_DIR = dirname(COMPOSE_FILE);
const envExample: Record<string, string> = Object.fromEntries(
  readFileSync(ENV_EXAMPLE, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
);
const { compose, used } = loadCompose(COMPOSE_FILE);
const services = Object.entries(compose.services);
const svc = (name: string): ComposeService => {
  const s = compose.services[name];
  if (!s) throw new Error(`docker-compose.yml has no service ${name}`);
  return s;
};

/** Services that run this repository's image. */
const builtHere = (s: ComposeService): boolean =>
  s.build !== undefined && resolve(COMPOSE_DIR, typeof s.build === 'string' ? s.build : s.build.context) === REPO;
/** Services that run `anomaly-detector serve` (the image's CMD or an explicit serve). */
const runsServe = (s: ComposeService): boolean =>
  builtHere(s) && (s.command === undefined || argvOf(s.command).includes('serve')) && s.entrypoint === undefined;
const serviceNames = services.filter(([, s]) => runsServe(s)).map(([n]) => n);

/** Services that run Telegraf. */
const telegrafServices = services.filter(([, s]) => /^telegraf:/.test(s.image ?? '')).map(([n]) => n);
/** The configuration a Telegraf service runs: the file mounted at /etc/telegraf/telegraf.conf, with its environment. */
function telegraf(name = 'telegraf'): TomlTable[] {
  const mount = bindMountsOf(svc(name)).find((m) => m.target === '/etc/telegraf/telegraf.conf');
  if (!mount) throw new Error(`${name} mounts no /etc/telegraf/telegraf.conf`);
  const file = resolve(COMPOSE_DIR, mount.source);
  if (name === 'telegraf') expect(file).toBe(TELEGRAF_CONF);
  return parseTelegrafToml(readFileSync(file, 'utf8'), environmentOf(svc(name)));
}
const table = (tables: TomlTable[], name: string): TomlTable => {
  const t = tables.find((x) => x.name === name);
  if (!t) throw new Error(`telegraf.conf has no [${name}]`);
  return t;
};
/** A service that runs once to completion (others wait for service_completed_successfully). */
const oneShot = (name: string): boolean =>
  svc(name).restart === 'no' &&
  services.some(([, s]) => dependsOn(s)[name] === 'service_completed_successfully') &&
  portsOf(svc(name)).length === 0;

/** Kafka's listeners (`NAME://host:port,...`, as KAFKA_LISTENERS and KAFKA_ADVERTISED_LISTENERS take them). */
function kafkaListeners(value: string | undefined): Array<{ name: string; host: string; port: number }> {
  return (value ?? '')
    .split(',')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const m = /^\s*([A-Za-z0-9_]+):\/\/([^:]*):(\d+)\s*$/.exec(l);
      if (!m) throw new Error(`Kafka listener ${l} not understood`);
      return { name: m[1], host: m[2], port: Number(m[3]) };
    });
}
/** The value after a flag in an argv (`--flag value` or `--flag=value`). */
function flagOf(args: string[], f: string): string | undefined {
  const i = args.findIndex((a) => a === f || a.startsWith(`${f}=`));
  if (i < 0) return undefined;
  return args[i].includes('=') ? args[i].slice(args[i].indexOf('=') + 1) : args[i + 1];
}
const seconds = (s: string): number => {
  const m = /^(\d+)(s|m)$/.exec(s);
  if (!m) throw new Error(`duration ${s}`);
  return Number(m[1]) * (m[2] === 'm' ? 60 : 1);
};

/** Ports each service listens on inside its container (image defaults, or as configured). */
function listeningPorts(c: ComposeFile): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const [name, s] of Object.entries(c.services)) {
    const env = environmentOf(s);
    const args = [...argvOf(s.command), ...argvOf(s.entrypoint)];
    const flag = (f: string): string | undefined => flagOf(args, f);
    const image = s.image ?? '';
    if (runsServe(s)) out[name] = [loadConfig(env).port];
    else if (builtHere(s)) out[name] = [];
    else if (/^influxdb:1\./.test(image)) out[name] = [Number((env.INFLUXDB_HTTP_BIND_ADDRESS ?? ':8086').split(':').pop())];
    else if (/^grafana\/grafana(-oss)?:/.test(image)) out[name] = [Number(env.GF_SERVER_HTTP_PORT ?? 3000)];
    else if (/^prom\/prometheus:/.test(image)) out[name] = [Number((flag('--web.listen-address') ?? ':9090').split(':').pop())];
    else if (/^ghcr\.io\/mlflow\/mlflow:/.test(image)) out[name] = [Number(flag('--port') ?? 5000)];
    else if (/^apache\/kafka:/.test(image))
      // The image's CMD runs the broker; with a command (a one-shot tool) nothing listens.
      out[name] = s.command === undefined ? kafkaListeners(env.KAFKA_LISTENERS).map((l) => l.port) : [];
    else if (/^telegraf:/.test(image)) {
      const health = telegraf(name).find((t) => t.name === 'outputs.health');
      out[name] = health ? [Number(new URL(String(health.values.service_address)).port)] : [];
    } else throw new Error(`service ${name} (${image}): the check does not know which port this image listens on; add it`);
  }
  return out;
}

interface Ref {
  from: string;
  host: string;
  port: number;
  where: string;
  /** A Kafka client's bootstrap address (host:port, no scheme), or a URL. */
  kafka?: boolean;
}

/** Every host:port that a service's configuration points at. */
function references(c: ComposeFile): Ref[] {
  const refs: Ref[] = [];
  const scan = (from: string, where: string, text: string) => {
    for (const m of text.matchAll(/https?:\/\/([A-Za-z0-9_.-]+):(\d+)/g)) refs.push({ from, host: m[1], port: Number(m[2]), where });
  };
  /** Kafka bootstrap lists: comma-separated host:port. */
  const brokers = (from: string, where: string, list: string | string[] | undefined) => {
    for (const b of (Array.isArray(list) ? list : (list ?? '').split(',')).filter((x) => x.trim() !== '')) {
      const m = /^([A-Za-z0-9_.-]+):(\d+)$/.exec(b.trim());
      if (!m) throw new Error(`${from} ${where}: broker ${b} is not host:port`);
      refs.push({ from, host: m[1], port: Number(m[2]), where, kafka: true });
    }
  };
  for (const [name, s] of Object.entries(c.services)) {
    const env = environmentOf(s);
    for (const [k, v] of Object.entries(env)) scan(name, `environment ${k}`, v);
    scan(name, 'command', argvOf(s.command).join(' '));
    scan(name, 'healthcheck', argvOf(s.healthcheck?.test).join(' '));
    if (runsServe(s)) brokers(name, 'environment KAFKA_BROKERS', env.KAFKA_BROKERS);
    brokers(name, 'command --bootstrap-server', flagOf(argvOf(s.command), '--bootstrap-server'));
    brokers(name, 'healthcheck', flagOf(argvOf(s.healthcheck?.test), '--bootstrap-server'));
  }
  for (const name of telegrafServices) {
    const tables = telegraf(name);
    for (const t of tables) for (const [k, v] of Object.entries(t.values)) scan(name, `telegraf.conf [${t.name}] ${k}`, String(v));
    for (const t of tables.filter((x) => x.name === 'outputs.kafka'))
      brokers(name, 'telegraf.conf [outputs.kafka] brokers', t.values.brokers as string[]);
  }
  const prom = parseYamlStrict(readFileSync(PROMETHEUS_YML, 'utf8'), 'prometheus.yml') as {
    scrape_configs: Array<{ job_name: string; static_configs: Array<{ targets: string[] }> }>;
  };
  for (const job of prom.scrape_configs) {
    for (const t of job.static_configs.flatMap((sc) => sc.targets)) {
      const [host, port] = t.split(':');
      refs.push({ from: 'prometheus', host, port: Number(port), where: `prometheus.yml job ${job.job_name}` });
    }
  }
  for (const ds of loadDatasources()) scan('grafana', `datasource ${ds.uid}`, ds.url);
  return refs;
}

describe('docker/docker-compose.yml', () => {
  it('parses, with the defaults documented in .env.example', () => {
    expect(services.length).toBeGreaterThanOrEqual(7);
    // .env.example documents exactly the variables the file uses, with its defaults.
    expect([...used].sort()).toEqual(Object.keys(envExample).sort());
    expect(loadCompose(COMPOSE_FILE, envExample).compose).toEqual(compose);
    // Changing a variable changes the file (interpolation is real).
    expect(portsOf(loadCompose(COMPOSE_FILE, { GRAFANA_PORT: '3999' }).compose.services.grafana)[0].published).toBe(3999);
  });

  it('has the whole stack: InfluxDB 1.8, Telegraf, Grafana, MLflow, Prometheus, the service, and a simulate profile', () => {
    expect(svc('influxdb').image).toMatch(/^influxdb:1\.8\.\d+$/);
    expect(svc('telegraf').image).toMatch(/^telegraf:/);
    expect(svc('grafana').image).toMatch(/^grafana\/grafana(-oss)?:/);
    expect(svc('mlflow').image).toMatch(/^ghcr\.io\/mlflow\/mlflow:/);
    expect(svc('prometheus').image).toMatch(/^prom\/prometheus:/);
    expect(serviceNames).toEqual(['anomaly-detector', 'anomaly-detector-kafka']);
    expect(svc('simulate').profiles).toEqual(['simulate']);
    expect(builtHere(svc('simulate'))).toBe(true);
    // Only the simulator and the Kafka mode are optional.
    expect(services.filter(([, s]) => s.profiles).map(([n]) => n)).toEqual([
      'simulate',
      'kafka',
      'kafka-init',
      'telegraf-kafka',
      'anomaly-detector-kafka',
    ]);
    expect(services.filter(([, s]) => s.profiles?.includes('kafka')).every(([, s]) => s.profiles?.length === 1)).toBe(true);
  });

  it('gives every service a healthcheck (one-shots excepted: others wait for them to complete)', () => {
    expect(services.filter(([n]) => oneShot(n)).map(([n]) => n)).toEqual(['kafka-init']);
    for (const [name, s] of services.filter(([n]) => !oneShot(n))) {
      const test = argvOf(s.healthcheck?.test);
      expect({ name, test: test[0] }).toEqual({ name, test: expect.stringMatching(/^CMD(-SHELL)?$/) });
      expect(test.length).toBeGreaterThan(1);
      expect(s.healthcheck?.disable).not.toBe(true);
    }
  });

  it('pins every image to a version (no latest, no bare name)', () => {
    for (const [name, s] of services) {
      expect({ name, image: s.image }).toEqual({ name, image: expect.any(String) });
      const m = /^(.+?)(?::([^:@/]+))?(@sha256:[0-9a-f]{64})?$/.exec(s.image as string);
      const tag = m?.[2];
      expect({ name, tag }).toEqual({ name, tag: expect.stringMatching(/^v?\d+\.\d+\.\d+([.-][A-Za-z0-9.-]+)?$/) });
    }
  });

  it('pins MLflow to the version the tests and scripts/mlflow-env.sh use', () => {
    const pinned = /^MLFLOW_VERSION="([^"]+)"/m.exec(readFileSync(resolve(REPO, 'scripts', 'mlflow-env.sh'), 'utf8'))?.[1];
    expect(pinned).toMatch(/^\d+\.\d+\.\d+$/);
    expect(svc('mlflow').image).toBe(`ghcr.io/mlflow/mlflow:v${pinned}`);
    // SQLite store and artifacts under the repository's mlflow/ (git-ignored working data).
    const args = argvOf(svc('mlflow').command);
    const mount = bindMountsOf(svc('mlflow')).find((b) => resolve(COMPOSE_DIR, b.source) === resolve(REPO, 'mlflow'));
    expect(mount).toBeDefined();
    expect(args).toContain(`--backend-store-uri=sqlite:///${mount?.target}/mlflow.db`);
    expect(args).toContain(`--artifacts-destination=${mount?.target}/artifacts`);
    // MLflow 3 refuses unknown Host headers: the service name other containers use must be allowed.
    expect(args.find((a) => a.startsWith('--allowed-hosts='))).toMatch(/(=|,)mlflow:5000(,|$)/);
  });

  it('waits for healthy dependencies (one-shots: to complete), with no cycles', () => {
    for (const [name, s] of services) {
      for (const [dep, condition] of Object.entries(dependsOn(s))) {
        expect({ name, dep, exists: dep in compose.services, condition }).toEqual({
          name,
          dep,
          exists: true,
          condition: dep in compose.services && oneShot(dep) ? 'service_completed_successfully' : 'service_healthy',
        });
      }
    }
    const visiting = new Set<string>();
    const done = new Set<string>();
    const visit = (n: string, path: string[]): void => {
      if (done.has(n)) return;
      if (visiting.has(n)) throw new Error(`depends_on cycle: ${[...path, n].join(' -> ')}`);
      visiting.add(n);
      for (const d of Object.keys(dependsOn(svc(n)))) visit(d, [...path, n]);
      visiting.delete(n);
      done.add(n);
    };
    for (const [n] of services) visit(n, []);
    expect(Object.keys(dependsOn(svc('anomaly-detector')))).toContain('influxdb');
    expect(Object.keys(dependsOn(svc('grafana')))).toEqual(expect.arrayContaining(['influxdb', 'prometheus']));
  });

  it('gives the service only environment variables from the config schema, and a valid configuration', async () => {
    for (const name of serviceNames) {
      const env = environmentOf(svc(name));
      for (const k of Object.keys(env))
        expect({ service: name, variable: k, known: CONFIG_ENV_NAMES.includes(k) }).toEqual({ service: name, variable: k, known: true });
      const config = loadConfig(env);
      expect(config.influx).toMatchObject({ api: 'v1', database: environmentOf(svc('influxdb')).INFLUXDB_DB });
      // Shutdown finishes before Docker's SIGKILL.
      expect(seconds(String(svc(name).stop_grace_period ?? '10s'))).toBeGreaterThan(config.shutdownTimeoutS);
      // Its healthcheck asks the readiness route on the port it listens on.
      const hc = argvOf(svc(name).healthcheck?.test).join(' ');
      expect(hc).toContain(`http://127.0.0.1:${config.port}/health'`);
      const app = await testApp(env);
      try {
        expect((await app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
      } finally {
        await app.close();
      }
    }
  });

  it('agrees on ports and URLs between services (compose, telegraf.conf, prometheus.yml, Grafana datasources)', () => {
    const listening = listeningPorts(compose);
    const byName = new Set(Object.keys(compose.services));
    const problems: string[] = [];
    for (const [name, s] of services) {
      for (const p of portsOf(s))
        if (!listening[name].includes(p.target))
          problems.push(`${name}: publishes container port ${p.target}, listens on ${listening[name].join(', ') || 'nothing'}`);
    }
    const edges = new Set<string>();
    for (const r of references(compose)) {
      const from = svc(r.from);
      const hostNet = from.network_mode === 'host';
      if (byName.has(r.host)) {
        if (hostNet) problems.push(`${r.from} (host network) cannot resolve service name ${r.host} (${r.where})`);
        else if (svc(r.host).network_mode === 'host')
          problems.push(`${r.host} uses the host network: ${r.from} cannot reach it by name (${r.where})`);
        else if (!listening[r.host].includes(r.port))
          problems.push(`${r.from} ${r.where}: ${r.host}:${r.port}, but ${r.host} listens on ${listening[r.host].join(', ')}`);
        edges.add(`${r.from}->${r.host}`);
      } else if (r.host === 'localhost' || r.host === '127.0.0.1') {
        if (hostNet && r.where !== 'healthcheck' && !r.where.includes('outputs.health')) {
          // On the host network, loopback reaches the ports other services publish.
          const target = services.find(([n, s]) =>
            portsOf(s).some(
              (p) => p.published === r.port && ['127.0.0.1', '0.0.0.0', undefined].includes(p.hostIp) && listening[n].includes(p.target),
            ),
          );
          if (!target) problems.push(`${r.from} ${r.where}: nothing publishes port ${r.port} on the host`);
          else edges.add(`${r.from}->${target[0]}`);
        } else if (!listening[r.from].includes(r.port))
          problems.push(`${r.from} ${r.where}: its own port ${r.port}, but it listens on ${listening[r.from].join(', ') || 'nothing'}`);
      } else problems.push(`${r.from} ${r.where}: unknown host ${r.host}`);
    }
    expect(problems).toEqual([]);
    // The data flow of the stack, as wired.
    expect([...edges].sort()).toEqual(
      expect.arrayContaining([
        'anomaly-detector->influxdb',
        'grafana->influxdb',
        'grafana->prometheus',
        'prometheus->anomaly-detector',
        'simulate->influxdb',
        'telegraf->influxdb',
        'anomaly-detector-kafka->influxdb',
        'anomaly-detector-kafka->kafka',
        'kafka-init->kafka',
        'telegraf-kafka->kafka',
      ]),
    );
  });

  it('agrees on the database and the collection interval (Telegraf, service, simulator, Grafana)', () => {
    const db = environmentOf(svc('influxdb')).INFLUXDB_DB;
    expect(db).toBe('system_metrics');
    const tables = telegraf();
    const agent = table(tables, 'agent');
    const out = table(tables, 'outputs.influxdb');
    expect(out.values.database).toBe(db);
    const config = loadConfig(environmentOf(svc('anomaly-detector')));
    expect(seconds(String(agent.values.interval))).toBe(config.poller.collectionIntervalMs / 1000);
    const sim = argvOf(svc('simulate').command).join(' ');
    for (const run of sim.split(';').filter((c) => c.includes(' simulate '))) {
      expect(run).toContain(`--database ${db}`);
      expect(run).toContain(`--step ${config.poller.collectionIntervalMs / 1000}`);
    }
    expect(sim).toContain('--live');
    const influxDs = loadDatasources().find((d) => d.type === 'influxdb');
    expect(influxDs?.jsonData?.dbName).toBe(db);
    // The simulator's healthcheck looks for its first host by the name the simulator gives it.
    const first = simulate({ ...DEFAULT_SIMULATION, hosts: 1, steps: 1, profile: 'fleet' })[0].host;
    expect(argvOf(svc('simulate').healthcheck?.test).join(' ')).toContain(`host = '${first}'`);
  });

  it("feeds Telegraf's inputs of both metric sets (cpu, mem, net; system, diskio, swap, netstat, nstat) in the schema the poller reads", () => {
    const tables = telegraf();
    const cpu = table(tables, 'inputs.cpu');
    expect(cpu.values.totalcpu).toBe(true);
    table(tables, 'inputs.mem');
    const net = table(tables, 'inputs.net');
    expect(net.values.ignore_protocol_stats).toBe(true);
    // Host network: the net input sees the Docker host's interfaces, and the host tag is its name.
    expect(svc('telegraf').network_mode).toBe('host');
    expect(
      tables
        .filter((t) => t.name.startsWith('inputs.'))
        .map((t) => t.name)
        .sort(),
    ).toEqual([...new Set(Object.values(presetMapping('node')).map((m) => `inputs.${m.measurement}`))].sort());
    // A host without retransmits must still send TcpRetransSegs, or its node steps stay incomplete.
    expect(table(tables, 'inputs.nstat').values.dump_zeros).toBe(true);
    // The output lets every mapped measurement through.
    const namepass = table(tables, 'outputs.influxdb').values.namepass as string[];
    for (const m of Object.values(presetMapping('node'))) expect(namepass).toContain(m.measurement);
  });

  it("has Prometheus scrape the service's /metrics", async () => {
    const prom = parseYamlStrict(readFileSync(PROMETHEUS_YML, 'utf8'), 'prometheus.yml') as {
      scrape_configs: Array<{ job_name: string; metrics_path?: string; static_configs: Array<{ targets: string[] }> }>;
    };
    const job = prom.scrape_configs.find((j) => j.static_configs.some((sc) => sc.targets.some((t) => t.startsWith('anomaly-detector:'))));
    expect(job?.job_name).toBe('anomaly-detector');
    const app = await testApp();
    try {
      const res = await app.inject({ method: 'GET', url: job?.metrics_path ?? '/metrics' });
      expect(res.statusCode).toBe(200);
      expect(res.body).toContain('anomaly_detector_');
    } finally {
      await app.close();
    }
  });

  it("mounts files and directories that exist, and Grafana's provisioning where Grafana reads it", () => {
    for (const [name, s] of services) {
      for (const b of bindMountsOf(s))
        expect({ name, source: b.source, exists: existsSync(resolve(COMPOSE_DIR, b.source)) }).toEqual({
          name,
          source: b.source,
          exists: true,
        });
    }
    const mounts = bindMountsOf(svc('grafana'));
    const prov = mounts.find((m) => m.target === '/etc/grafana/provisioning');
    expect(prov && resolve(COMPOSE_DIR, prov.source)).toBe(resolve(REPO, 'grafana', 'provisioning'));
    const provider = parseYamlStrict(
      readFileSync(resolve(REPO, 'grafana', 'provisioning', 'dashboards', 'dashboards.yml'), 'utf8'),
      'dashboards.yml',
    ) as { providers: Array<{ options: { path: string } }> };
    for (const p of provider.providers) {
      const m = mounts.find((x) => x.target === p.options.path);
      expect(m).toBeDefined();
      const dir = resolve(COMPOSE_DIR, (m as { source: string }).source);
      expect(statSync(dir).isDirectory()).toBe(true);
      expect(readdirSync(dir).filter((f) => f.endsWith('.json')).length).toBeGreaterThan(0);
    }
    const home = environmentOf(svc('grafana')).GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH;
    const homeMount = mounts.find((m) => home.startsWith(`${m.target}/`));
    expect(homeMount && existsSync(resolve(COMPOSE_DIR, homeMount.source, home.slice(homeMount.target.length + 1)))).toBe(true);
    // Admin credentials come from the environment, with the documented defaults.
    expect(environmentOf(svc('grafana'))).toMatchObject({
      GF_SECURITY_ADMIN_USER: envExample.GRAFANA_ADMIN_USER,
      GF_SECURITY_ADMIN_PASSWORD: envExample.GRAFANA_ADMIN_PASSWORD,
    });
    expect(
      environmentOf(loadCompose(COMPOSE_FILE, { GRAFANA_ADMIN_PASSWORD: 's3cret' }).compose.services.grafana).GF_SECURITY_ADMIN_PASSWORD,
    ).toBe('s3cret');
  });
});

describe('docker/docker-compose.yml: the kafka profile (SOURCE=kafka)', () => {
  const inProfile = (s: ComposeService, p: string) => s.profiles?.includes(p) ?? false;
  const kafkaNames = services.filter(([, s]) => inProfile(s, 'kafka')).map(([n]) => n);
  const broker = () => svc('kafka');
  const brokerEnv = () => environmentOf(broker());
  const consumer = () => loadConfig(environmentOf(svc('anomaly-detector-kafka')));
  const initArgs = () => argvOf(svc('kafka-init').command);

  it('leaves the default profile as it was: no default service needs a profile service, and host ports do not collide', () => {
    const defaults = services.filter(([, s]) => !s.profiles).map(([n]) => n);
    expect(defaults).toEqual(['influxdb', 'telegraf', 'anomaly-detector', 'prometheus', 'grafana', 'mlflow']);
    for (const n of defaults)
      for (const dep of Object.keys(dependsOn(svc(n))))
        expect({ service: n, dep, optional: Boolean(svc(dep).profiles) }).toEqual({ service: n, dep, optional: false });
    // Both profiles run at once (`--profile kafka` adds to the default stack): every port
    // taken on the host, published or listened on with the host network, is taken once.
    const listening = listeningPorts(compose);
    const taken = services.flatMap(([n, s]) => [
      ...portsOf(s).map((p) => ({ n, port: p.published })),
      ...(s.network_mode === 'host' ? listening[n].map((port) => ({ n, port })) : []),
    ]);
    const ports = taken.map((t) => t.port);
    expect(ports.filter((p, i) => ports.indexOf(p) !== i)).toEqual([]);
    expect(kafkaNames.sort()).toEqual(['anomaly-detector-kafka', 'kafka', 'kafka-init', 'telegraf-kafka']);
  });

  it('runs Apache Kafka 4 (the official image) as one KRaft node, its tools from the same image', () => {
    expect(broker().image).toMatch(/^apache\/kafka:4\.\d+\.\d+$/);
    expect(svc('kafka-init').image).toBe(broker().image);
    const env = brokerEnv();
    // The image's KRaft mode needs a cluster id; one node is broker and controller, and
    // the internal topics cannot have more replicas than there are brokers.
    expect(env.CLUSTER_ID).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(env.KAFKA_PROCESS_ROLES.split(',').sort()).toEqual(['broker', 'controller']);
    const controller = kafkaListeners(env.KAFKA_LISTENERS).find((l) => l.name === env.KAFKA_CONTROLLER_LISTENER_NAMES);
    expect(controller).toBeDefined();
    expect(env.KAFKA_CONTROLLER_QUORUM_VOTERS).toBe(`${env.KAFKA_NODE_ID}@${controller?.host || 'localhost'}:${controller?.port}`);
    for (const k of Object.keys(env).filter((x) => /REPLICATION_FACTOR$|MIN_ISR$/.test(x))) expect({ k, v: env[k] }).toEqual({ k, v: '1' });
    expect(env.KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR).toBe('1');
    // Every listener has a security protocol; the controller's is not advertised to clients.
    const protocols = Object.fromEntries(env.KAFKA_LISTENER_SECURITY_PROTOCOL_MAP.split(',').map((p) => p.split(':')));
    for (const l of kafkaListeners(env.KAFKA_LISTENERS))
      expect({ l: l.name, protocol: protocols[l.name] }).toEqual({ l: l.name, protocol: 'PLAINTEXT' });
    expect(kafkaListeners(env.KAFKA_ADVERTISED_LISTENERS).map((l) => l.name)).not.toContain(env.KAFKA_CONTROLLER_LISTENER_NAMES);
    // Its data survives a restart (same CLUSTER_ID, formatted once).
    expect(argvOf((broker().volumes ?? []).map(String)).some((v) => v.endsWith(`:${env.KAFKA_LOG_DIRS}`))).toBe(true);
    // Topics come from kafka-init (partitions, retention), never from a first write.
    expect(env.KAFKA_AUTO_CREATE_TOPICS_ENABLE).toBe('false');
  });

  it('hands every Kafka client the advertised address of the listener it bootstraps on, one it can reach', () => {
    const env = brokerEnv();
    const listeners = kafkaListeners(env.KAFKA_LISTENERS);
    const advertised = kafkaListeners(env.KAFKA_ADVERTISED_LISTENERS);
    const refs = references(compose).filter((r) => r.kafka);
    expect([...new Set(refs.map((r) => r.from))].sort()).toEqual(['anomaly-detector-kafka', 'kafka', 'kafka-init', 'telegraf-kafka']);
    const problems: string[] = [];
    for (const r of refs.filter((x) => x.from !== 'kafka')) {
      const loopback = r.host === '127.0.0.1' || r.host === 'localhost';
      // The container port the client reaches: by service name, or a port published on the host's loopback.
      const port = loopback ? portsOf(broker()).find((p) => p.published === r.port)?.target : r.host === 'kafka' ? r.port : undefined;
      const listener = listeners.find((l) => l.port === port);
      const adv = advertised.find((a) => a.name === listener?.name);
      if (!listener || !adv) {
        problems.push(`${r.from} ${r.where}: ${r.host}:${r.port} reaches no advertised listener`);
        continue;
      }
      const same = (a: string, b: string) => a === b || (['127.0.0.1', 'localhost'].includes(a) && ['127.0.0.1', 'localhost'].includes(b));
      // The broker sends the client to adv: it must be the address the client could reach.
      if (!same(adv.host, r.host) || adv.port !== r.port)
        problems.push(`${r.from} bootstraps on ${r.host}:${r.port} but is then sent to ${adv.host}:${adv.port} (listener ${adv.name})`);
    }
    expect(problems).toEqual([]);
  });

  it('creates the topic both sides use before either starts, with partitions to share and retention for the replay', () => {
    const args = initArgs();
    expect(args[0]).toBe('/opt/kafka/bin/kafka-topics.sh');
    expect(args).toEqual(expect.arrayContaining(['--create', '--if-not-exists']));
    const topic = flagOf(args, '--topic');
    const config = consumer();
    expect(config.kafka?.topic).toBe(topic);
    expect(table(telegraf('telegraf-kafka'), 'outputs.kafka').values.topic).toBe(topic);
    // More than one partition, or a second replica would have nothing to do.
    expect(Number(flagOf(args, '--partitions'))).toBeGreaterThanOrEqual(2);
    expect(flagOf(args, '--replication-factor')).toBe('1');
    // A replica that gets a partition replays LEARN_WINDOW_S of it: the topic keeps that long.
    const retention = args
      .filter((a, i) => args[i - 1] === '--config' && a.startsWith('retention.ms='))
      .map((a) => Number(a.split('=')[1]));
    expect(retention).toHaveLength(1);
    expect(retention[0]).toBeGreaterThanOrEqual(config.poller.learn?.windowMs ?? 0);
    expect(config.poller.learn).not.toBeNull();
    for (const n of ['telegraf-kafka', 'anomaly-detector-kafka'])
      expect(dependsOn(svc(n))['kafka-init']).toBe('service_completed_successfully');
  });

  it("has its Telegraf collect telegraf.conf's inputs every collection interval and write them to the topic, keyed by host, as line protocol", () => {
    const base = telegraf('telegraf');
    const tables = telegraf('telegraf-kafka');
    expect(svc('telegraf-kafka').image).toBe(svc('telegraf').image);
    expect(svc('telegraf-kafka').network_mode).toBe('host');
    const inputs = (t: TomlTable[]) => t.filter((x) => x.name.startsWith('inputs.'));
    expect(inputs(tables)).toEqual(inputs(base));
    // The agent as telegraf.conf's, apart from the host tag.
    const { hostname, ...agent } = table(tables, 'agent').values;
    const { hostname: baseHostname, ...baseAgent } = table(base, 'agent').values;
    expect(agent).toEqual(baseAgent);
    expect(seconds(String(agent.interval))).toBe(consumer().poller.collectionIntervalMs / 1000);
    // Its own host name: the default Telegraf reports the Docker host under its name
    // (hostname ""), which the poller scores; the same host from both paths would have two
    // detectors overwriting each other's ai_predictions.
    expect(baseHostname).toBe('');
    expect(hostname).toMatch(/^[A-Za-z0-9._-]+$/);
    const out = table(tables, 'outputs.kafka');
    expect(out.values).toMatchObject({ routing_tag: 'host', data_format: 'influx' });
    expect(out.values.namepass).toEqual(table(base, 'outputs.influxdb').values.namepass);
    expect(
      tables
        .filter((t) => t.name.startsWith('outputs.'))
        .map((t) => t.name)
        .sort(),
    ).toEqual(['outputs.health', 'outputs.kafka']);
  });

  it("runs the service in Kafka mode, writing ai_predictions to the stack's InfluxDB (the dashboard's database)", async () => {
    const env = environmentOf(svc('anomaly-detector-kafka'));
    // Every variable is in the config schema (the general check above covers this service too).
    for (const k of Object.keys(env).filter((x) => x.startsWith('KAFKA_') || x === 'SOURCE'))
      expect({ variable: k, known: CONFIG_ENV_NAMES.includes(k) }).toEqual({ variable: k, known: true });
    const config = consumer();
    expect(config.kafka).toMatchObject({ brokers: ['kafka:9092'], tls: null, sasl: null });
    expect(config.kafka?.groupId).toMatch(/\S/);
    expect(config.influx).toMatchObject({ api: 'v1', url: 'http://influxdb:8086', database: environmentOf(svc('influxdb')).INFLUXDB_DB });
    expect(loadDatasources().find((d) => d.type === 'influxdb')?.jsonData?.dbName).toBe(environmentOf(svc('influxdb')).INFLUXDB_DB);
    // The same image, gate and refit settings as the poller's service.
    const poller = environmentOf(svc('anomaly-detector'));
    expect(svc('anomaly-detector-kafka').image).toBe(svc('anomaly-detector').image);
    for (const k of ['GATE_CONSECUTIVE', 'REFIT_INTERVAL_S', 'COLLECTION_INTERVAL_S', 'API_TOKEN', 'LOG_LEVEL'])
      expect({ k, v: env[k] }).toEqual({ k, v: poller[k] });
    expect(Object.keys(dependsOn(svc('anomaly-detector-kafka'))).sort()).toEqual(['influxdb', 'kafka', 'kafka-init']);
    const app = await testApp(env);
    try {
      expect((await app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });
});
