import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Kafka as KafkaClient, logLevel, type KafkaConfig } from 'kafkajs';
import { DEFAULT_SIMULATION, simulate } from '../../src/data/simulate';
import { TelegrafEncoder } from '../../src/data/telegraf-sim';
import { MODEL_PATH } from '../helpers/fixtures';
import { DB, predictions, storeFor, waitUntil } from '../helpers/influx-data';
import { startInfluxd, type Influxd } from '../helpers/influxd';
import { KAFKA_START_TIMEOUT_MS, startKafka, type Kafka } from '../helpers/kafka';
import { startExpectingFailure, startService, type ServiceProcess } from '../helpers/process';

/**
 * SOURCE=kafka against a broker that wants credentials and/or TLS: the service as a
 * process (`serve`), configured only through KAFKA_*, on
 * - a SASL_PLAINTEXT listener with SASL/PLAIN (JAAS users) and SASL/SCRAM-SHA-512 (a user
 *   stored with `kafka-storage format --add-scram`),
 * - an SSL listener whose server certificate a CA made here signs (KAFKA_TLS_CA_FILE),
 * - a SASL_SSL listener (SCRAM-SHA-512 over TLS, the same CA);
 * a producer authenticated the same way sends Telegraf-schema steps, and every step of
 * every host must reach ai_predictions with /health's kafka entry ok. A wrong password
 * stops the start with one line that names Kafka; no password ever appears in the output.
 */
const HOSTS = 2;
const STEPS = 3;
const STEP_S = 10;

const PLAIN_PASSWORD = 'plain-Secret-4711';
const SCRAM_PASSWORD = 'scram-Secret-0815';
const TELEGRAF_PASSWORD = 'telegraf-Secret-2342';
const WRONG_PASSWORD = 'wrong-Secret-9999';
const SECRETS = [PLAIN_PASSWORD, SCRAM_PASSWORD, TELEGRAF_PASSWORD, WRONG_PASSWORD];

/** A CA and a server certificate for 127.0.0.1 signed by it; the broker's PEM keystore (key, certificate, CA). */
function makeCertificates(dir: string): { caFile: string; keystore: string } {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '2',
    '-subj',
    '/CN=kafka-security-test-ca',
  );
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  fs.writeFileSync(path.join(dir, 'server.ext'), 'subjectAltName = IP:127.0.0.1\nextendedKeyUsage = serverAuth\n');
  // -set_serial: no ca.srl file next to the CA.
  openssl(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-set_serial',
    '2',
    '-days',
    '2',
    '-extfile',
    'server.ext',
    '-out',
    'server.crt',
  );
  const keystore = path.join(dir, 'server.pem');
  // An unencrypted PKCS#8 key (openssl 3's default) and the chain: Kafka's PEM keystore without ssl.key.password.
  fs.writeFileSync(keystore, ['server.key', 'server.crt', 'ca.crt'].map((f) => fs.readFileSync(path.join(dir, f), 'utf8')).join(''));
  return { caFile: path.join(dir, 'ca.crt'), keystore };
}

interface Case {
  name: string;
  listener: 'SASL' | 'TLS' | 'SASL_TLS';
  /** The service's KAFKA_* settings besides KAFKA_BROKERS. */
  env: (caFile: string) => Record<string, string>;
  /** The test producer's kafkajs settings (the same listener, authenticated as telegraf). */
  client: (ca: string) => Pick<KafkaConfig, 'ssl' | 'sasl'>;
}

const CASES: Case[] = [
  {
    name: 'SASL_PLAINTEXT, SASL/PLAIN',
    listener: 'SASL',
    env: () => ({ KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'detector', KAFKA_SASL_PASSWORD: PLAIN_PASSWORD }),
    client: () => ({ sasl: { mechanism: 'plain', username: 'telegraf', password: TELEGRAF_PASSWORD } }),
  },
  {
    name: 'SASL_PLAINTEXT, SASL/SCRAM-SHA-512',
    listener: 'SASL',
    env: () => ({ KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'detector-scram', KAFKA_SASL_PASSWORD: SCRAM_PASSWORD }),
    client: () => ({ sasl: { mechanism: 'scram-sha-512', username: 'telegraf', password: TELEGRAF_PASSWORD } }),
  },
  {
    name: 'SSL, the test CA',
    listener: 'TLS',
    env: (caFile) => ({ KAFKA_TLS: 'true', KAFKA_TLS_CA_FILE: caFile }),
    client: (ca) => ({ ssl: { ca: [ca] } }),
  },
  {
    name: 'SASL_SSL, SASL/SCRAM-SHA-512 and the test CA',
    listener: 'SASL_TLS',
    env: (caFile) => ({
      KAFKA_TLS: 'true',
      KAFKA_TLS_CA_FILE: caFile,
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: 'detector-scram',
      KAFKA_SASL_PASSWORD: SCRAM_PASSWORD,
    }),
    client: (ca) => ({ ssl: { ca: [ca] }, sasl: { mechanism: 'scram-sha-512', username: 'telegraf', password: TELEGRAF_PASSWORD } }),
  },
];

interface KafkaHealth {
  status: string;
  partitions: number[];
  scored: number;
  last_error: string | null;
}

async function kafkaHealth(url: string): Promise<{ status: string; kafka: KafkaHealth } | null> {
  try {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
    return (await res.json()) as { status: string; kafka: KafkaHealth };
  } catch {
    return null;
  }
}

function expectNoSecret(output: string): void {
  for (const s of SECRETS) expect(output).not.toContain(s);
}

describe('SOURCE=kafka with SASL and TLS: the service as a process, a real broker and influxd', () => {
  let dir: string;
  let caFile: string;
  let ca: string;
  let kafka: Kafka;
  let influxd: Influxd;
  const services: ServiceProcess[] = [];

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kafka-security-'));
    const certs = makeCertificates(dir);
    caFile = certs.caFile;
    ca = fs.readFileSync(caFile, 'utf8');
    const plainJaas =
      'org.apache.kafka.common.security.plain.PlainLoginModule required ' +
      `user_detector="${PLAIN_PASSWORD}" user_telegraf="${TELEGRAF_PASSWORD}";`;
    const scramJaas = 'org.apache.kafka.common.security.scram.ScramLoginModule required;';
    // Both started before either failure is thrown: afterAll stops whichever did start.
    const started = await Promise.allSettled([
      startKafka({
        listeners: { SASL: 'SASL_PLAINTEXT', TLS: 'SSL', SASL_TLS: 'SASL_SSL' },
        addScram: [
          `SCRAM-SHA-512=[name=detector-scram,password=${SCRAM_PASSWORD}]`,
          `SCRAM-SHA-512=[name=telegraf,password=${TELEGRAF_PASSWORD}]`,
        ],
        extraConfig: {
          'sasl.enabled.mechanisms': 'PLAIN,SCRAM-SHA-512',
          'listener.name.sasl.plain.sasl.jaas.config': plainJaas,
          'listener.name.sasl.scram-sha-512.sasl.jaas.config': scramJaas,
          'listener.name.sasl_tls.scram-sha-512.sasl.jaas.config': scramJaas,
          'listener.name.sasl_tls.sasl.enabled.mechanisms': 'SCRAM-SHA-512',
          'ssl.keystore.type': 'PEM',
          'ssl.keystore.location': certs.keystore,
          'ssl.client.auth': 'none',
        },
      }).then((k) => (kafka = k)),
      startInfluxd().then((i) => (influxd = i)),
    ]);
    for (const s of started) if (s.status === 'rejected') throw s.reason;
    const store = storeFor(influxd);
    await store.createDatabase?.();
    await store.close?.();
    for (let i = 0; i < CASES.length; i++) await kafka.createTopic(`telegraf-${i}`, 2);
  }, KAFKA_START_TIMEOUT_MS);

  afterAll(async () => {
    await Promise.all(services.map((s) => s.stop()));
    await Promise.all([kafka?.stop(), influxd?.cleanup()]);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  const serviceEnv = (c: Case, i: number): Record<string, string> => ({
    SOURCE: 'kafka',
    KAFKA_BROKERS: kafka.listeners[c.listener],
    KAFKA_TOPIC: `telegraf-${i}`,
    KAFKA_GROUP_ID: `detectors-${i}`,
    COLLECTION_INTERVAL_S: String(STEP_S),
    MODEL_PATH,
    INFLUX_URL: influxd.url,
    INFLUX_DATABASE: DB,
    ...c.env(caFile),
  });

  it.each(CASES.map((c, i) => [c.name, c, i] as const))(
    '%s: scores every step, /health kafka ok',
    async (_name, c, i) => {
      const svc = await startService(serviceEnv(c, i), 30_000);
      services.push(svc);
      const hosts = Array.from({ length: HOSTS }, (_, h) => `sec${i}-host-${h + 1}`);
      try {
        // Joined (partitions assigned): from here on what is produced is scored.
        await waitUntil(
          async () => ((await kafkaHealth(svc.url))?.kafka.partitions.length ?? 0) > 0,
          30_000,
          'the service to join its group',
        );
        const producer = new KafkaClient({
          clientId: `test-telegraf-${i}`,
          brokers: [kafka.listeners[c.listener]],
          logLevel: logLevel.NOTHING,
          ...c.client(ca),
        }).producer();
        await producer.connect();
        try {
          const stepMs = STEP_S * 1000;
          const start = Math.floor(Date.now() / stepMs) * stepMs - STEPS * stepMs;
          const rows = simulate({ ...DEFAULT_SIMULATION, hosts: HOSTS, steps: STEPS, stepS: STEP_S, start, seed: 20 + i });
          const enc = new TelegrafEncoder(3, 'ns');
          for (let s = 0; s < STEPS; s++) {
            const step = rows.filter((r) => r.timestamp === start + s * stepMs);
            const messages = step.flatMap((r) => {
              const host = hosts[Number(r.host.slice(5)) - 1];
              return enc.lines({ ...r, host }, STEP_S, false).map((value) => ({ key: host, value }));
            });
            await producer.send({ topic: `telegraf-${i}`, messages });
          }
        } finally {
          await producer.disconnect();
        }
        const mine = async () => (await predictions(influxd)).filter((r) => hosts.includes(r.host));
        await waitUntil(async () => (await mine()).length >= HOSTS * STEPS, 30_000, 'every step to be written').catch(async (e: Error) => {
          throw new Error(
            `${e.message}: ${(await mine()).length} rows; health ${JSON.stringify(await kafkaHealth(svc.url))}; ${svc.output()}`,
          );
        });
        expect(await mine()).toHaveLength(HOSTS * STEPS);
        const h = await kafkaHealth(svc.url);
        expect(h?.status).toBe('ok');
        expect(h?.kafka.status).toBe('ok');
        expect(h?.kafka.scored).toBe(HOSTS * STEPS);
        expect(h?.kafka.last_error).toBeNull();
      } finally {
        await svc.stop();
        expectNoSecret(svc.output());
      }
      expect(svc.child.exitCode).toBe(0);
    },
    60_000,
  );

  it.each([
    ['SASL/PLAIN', CASES[0]],
    ['SASL/SCRAM-SHA-512 over TLS', CASES[3]],
  ] as const)(
    'a wrong password (%s): the start fails with one line naming Kafka, no password in the output',
    async (_name, c) => {
      const env: Record<string, string> = {
        ...serviceEnv(c, CASES.indexOf(c)),
        KAFKA_GROUP_ID: 'wrong-password',
        KAFKA_SASL_PASSWORD: WRONG_PASSWORD,
      };
      const t0 = Date.now();
      const r = await startExpectingFailure(env, 30_000);
      expect(r.code).not.toBe(0);
      expect(r.code).not.toBeNull();
      expect(Date.now() - t0).toBeLessThan(20_000);
      // One line that says what to fix (the JSON lines around it are kafkajs's warnings).
      const lines = r.output.split('\n').filter((l) => l.startsWith('anomaly-detector: '));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(
        `anomaly-detector: cannot start: Kafka (${env.KAFKA_BROKERS}) refused KAFKA_SASL_USERNAME=${env.KAFKA_SASL_USERNAME} ` +
          `(KAFKA_SASL_MECHANISM=${env.KAFKA_SASL_MECHANISM}): SASL `,
      );
      expect(lines[0]).toMatch(/authentication failed/i);
      expectNoSecret(r.output);
    },
    40_000,
  );

  it('a TLS certificate the service does not trust (KAFKA_TLS without the CA): the start fails at once with one line naming it', async () => {
    const c = CASES[2];
    const env: Record<string, string> = { ...serviceEnv(c, 2), KAFKA_GROUP_ID: 'untrusted-ca' };
    delete env.KAFKA_TLS_CA_FILE;
    const t0 = Date.now();
    const r = await startExpectingFailure(env, 30_000);
    expect(r.code).not.toBe(0);
    expect(r.code).not.toBeNull();
    // Not kafkajs's ~90 s of retries.
    expect(Date.now() - t0).toBeLessThan(10_000);
    const lines = r.output.split('\n').filter((l) => l.startsWith('anomaly-detector: '));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^anomaly-detector: cannot start: the TLS certificate of Kafka broker \S+ is refused \([A-Z_]+: /);
    expect(lines[0]).toContain('set KAFKA_TLS_CA_FILE to the CA that signed it');
  }, 40_000);
});
