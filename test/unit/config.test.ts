import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { CONFIG_ENV_NAMES, loadConfig } from '../../src/config';
import { ConfigError } from '../../src/errors';
import { ROOT } from '../helpers/fixtures';

describe('configuration', () => {
  it('has defaults for everything: the service starts with an empty environment', () => {
    const c = loadConfig({});
    expect(c.port).toBe(8080);
    expect(c.influx).toBeNull();
    expect(c.poller.gate).toEqual({ consecutive: 3, surge: { cpu_usage: 10, memory_usage: 30, network_load: 15000 }, cooldownMs: 0 });
    expect(Object.isFrozen(c)).toBe(true);
    expect(c.detectHistoryHosts).toBe(10_000);
  });

  it('never prints a secret it refuses; refuses tokens no HTTP header can carry and URLs holding a password', () => {
    const refused = (env: NodeJS.ProcessEnv) => {
      try {
        loadConfig(env);
      } catch (e) {
        return (e as Error).message;
      }
      throw new Error('accepted');
    };
    for (const [name, value] of [
      ['MODEL_SIGNING_KEY', 'hunter2-signing'],
      ['ADMIN_TOKEN', 'hunter2'],
      ['API_TOKEN', 'short'],
    ]) {
      const m = refused({ [name]: value });
      expect(m).toContain(`${name}=<redacted>`);
      expect(m).not.toContain(value);
    }
    for (const token of ['abcdefgh\n', ' abcdefgh', 'abc defgh', 'pässwörd1', 'x'.repeat(5000)])
      expect(refused({ API_TOKEN: token })).toMatch(/API_TOKEN=<redacted>: must be/);
    expect(loadConfig({ API_TOKEN: 'abc-DEF_123.~+/=' }).apiToken).toBe('abc-DEF_123.~+/=');
    const m = refused({ MLFLOW_TRACKING_URI: 'http://svc:s3cretpw@mlflow:5000' });
    expect(m).toMatch(/must not hold user:password \(set MLFLOW_TRACKING_USERNAME/);
    expect(refused({ INFLUX_URL: 'http://u:p@influx:8086' })).toMatch(/INFLUX_USERNAME/);
  });

  it('reads the Kafka source settings (SOURCE=kafka)', () => {
    const c = loadConfig({
      SOURCE: 'kafka',
      KAFKA_BROKERS: 'a:9092, b:9093',
      INFLUX_URL: 'http://i:8086',
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: 'u',
      KAFKA_SASL_PASSWORD: 'p',
      KAFKA_TLS: 'true',
    });
    expect(c.kafka).toEqual({
      brokers: ['a:9092', 'b:9093'],
      topic: 'telegraf',
      groupId: 'anomaly-detector',
      clientId: 'anomaly-detector',
      resultsTopic: null,
      tls: {},
      sasl: { mechanism: 'scram-sha-512', username: 'u', password: 'p' },
      sessionTimeoutMs: 10_000,
      concurrency: 4,
    });
    expect(loadConfig({}).kafka).toBeNull();
  });

  it('turns the repeat rule on with GATE_REPEAT_WINDOW_S', () => {
    const c = loadConfig({ GATE_REPEAT_WINDOW_S: '600', GATE_REPEAT_MARGIN: '0.02' });
    expect(c.poller.gate.repeat).toEqual({ level: 0, windowMs: 600_000, peak: false, margin: 0.02 });
  });

  it.each([
    [{ PORT: '70000' }, /PORT="70000"/],
    [{ INFLUX_URL: 'not a url' }, /INFLUX_URL/],
    [{ INFLUX_URL: 'http://x:8086', INFLUX_API: 'v2' }, /INFLUX_API=v2 needs INFLUX_TOKEN, INFLUX_ORG, INFLUX_BUCKET/],
    [{ SHARD_COUNT: '2', SHARD_INDEX: '2' }, /SHARD_INDEX=2: must be < SHARD_COUNT/],
    [{ SHARD_COUNT: '2', SHARD_INDEX: '' }, /SHARD_INDEX is required with SHARD_COUNT=2/],
    [{ MODEL_URI: 'models:/x@champion' }, /MODEL_URI needs MLFLOW_TRACKING_URI/],
    [{ MODEL_URI: 's3://bucket/model' }, /MODEL_URI/],
    [{ GATE_CONSECUTIVE: '0' }, /GATE_CONSECUTIVE/],
    [{ GATE_REPEAT_MARGIN: '2' }, /GATE_REPEAT_MARGIN/],
    [{ DETECT_HISTORY_HOSTS: '0' }, /DETECT_HISTORY_HOSTS/],
    [{ POLL_INTERVAL_S: '-1' }, /POLL_INTERVAL_S/],
    [{ SOURCE: 'kafka' }, /SOURCE=kafka needs KAFKA_BROKERS/],
    [{ SOURCE: 'kafka', KAFKA_BROKERS: 'k:9092' }, /needs somewhere to write predictions: INFLUX_URL and\/or KAFKA_RESULTS_TOPIC/],
    [{ SOURCE: 'kafka', KAFKA_BROKERS: 'k:9092,http://x', INFLUX_URL: 'http://i:8086' }, /KAFKA_BROKERS/],
    [{ SOURCE: 'kafka', KAFKA_BROKERS: 'k:9092', KAFKA_RESULTS_TOPIC: 'bad topic' }, /KAFKA_RESULTS_TOPIC/],
    [{ SOURCE: 'kafka', KAFKA_BROKERS: 'k:9092', KAFKA_RESULTS_TOPIC: 'r', KAFKA_SASL_MECHANISM: 'plain' }, /needs KAFKA_SASL_USERNAME/],
    [{ KAFKA_BROKERS: 'k:9092' }, /KAFKA_BROKERS is set but SOURCE is not kafka/],
    [{ SOURCE: 'kafka', KAFKA_BROKERS: 'k:9092', KAFKA_RESULTS_TOPIC: 'r', KAFKA_SESSION_TIMEOUT_S: '1' }, /KAFKA_SESSION_TIMEOUT_S/],
  ])('rejects %j with one line naming the variable', (env, pattern) => {
    let err: unknown;
    try {
      loadConfig(env as NodeJS.ProcessEnv);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(pattern);
    expect((err as Error).message).not.toContain('\n');
  });

  it('builds the InfluxDB settings for both APIs', () => {
    expect(loadConfig({ INFLUX_URL: 'http://influx:8086', INFLUX_USERNAME: 'u', INFLUX_PASSWORD: 'p' }).influx).toMatchObject({
      api: 'v1',
      url: 'http://influx:8086',
      database: 'system_metrics',
      username: 'u',
      password: 'p',
    });
    expect(
      loadConfig({ INFLUX_URL: 'http://influx:8086', INFLUX_API: 'v2', INFLUX_TOKEN: 't', INFLUX_ORG: 'o', INFLUX_BUCKET: 'b' }).influx,
    ).toMatchObject({ api: 'v2', token: 't', org: 'o', bucket: 'b' });
  });

  it('the configuration table (docs/configuration.md) lists exactly the variables of the schema', () => {
    const table = readFileSync(resolve(ROOT, 'docs/configuration.md'), 'utf8');
    const documented = new Set([...table.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1]));
    for (const name of CONFIG_ENV_NAMES) expect([name, documented.has(name)]).toEqual([name, true]);
    for (const name of documented) expect([name, CONFIG_ENV_NAMES.includes(name)]).toEqual([name, true]);
  });
});
