import { readFileSync } from 'node:fs';
import { telegrafTags, telegrafVersion, testTelegrafConfig } from '../../helpers/telegraf';
import { loadCompose } from './lib/compose';
import { COMPOSE_FILE, TELEGRAF_CONF } from './lib/paths';
import { parseTelegrafToml } from './lib/toml';

const conf = readFileSync(TELEGRAF_CONF, 'utf8');
const env = { INFLUX_URL: 'http://127.0.0.1:8086', INFLUX_DATABASE: 'system_metrics', TELEGRAF_HEALTH_PORT: '8095' };

describe('Telegraf: the version and plugins the tests build are the ones the stack runs', () => {
  it('pins the compose image to the version scripts/telegraf-env.sh builds', () => {
    const version = telegrafVersion();
    expect(version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(loadCompose(COMPOSE_FILE).compose.services.telegraf?.image).toBe(`telegraf:${version}`);
  });

  it('builds exactly the plugins docker/telegraf.conf uses, and outputs.kafka (a custom build)', () => {
    const plugins = [
      ...new Set(
        parseTelegrafToml(conf, env)
          .filter((t) => t.array)
          .map((t) => t.name),
      ),
    ].sort();
    expect(plugins).toEqual(
      [
        ...['inputs.cpu', 'inputs.mem', 'inputs.net'],
        ...['inputs.diskio', 'inputs.netstat', 'inputs.nstat', 'inputs.swap', 'inputs.system'],
        ...['outputs.health', 'outputs.influxdb'],
      ].sort(),
    );
    // outputs.kafka is not in the stack's configuration: it is built in for the Kafka
    // consumer-group mode (Telegraf writes to Kafka, the service consumes).
    expect(telegrafTags().sort()).toEqual(['custom', 'outputs.kafka', ...plugins].sort());
  });

  it('the test configuration changes only the collection and flush intervals', () => {
    const test = testTelegrafConfig(conf, 1);
    const a = conf.split('\n');
    const b = test.split('\n');
    expect(b.length).toBe(a.length);
    const changed = a.map((l, i) => [l, b[i]]).filter(([l, m]) => l !== m);
    expect(changed).toEqual([
      ['  interval = "10s"', '  interval = "1s"'],
      ['  flush_interval = "10s"', '  flush_interval = "1s"'],
    ]);
    const agent = parseTelegrafToml(test, env).find((t) => t.name === 'agent');
    expect(agent?.values).toMatchObject({ interval: '1s', flush_interval: '1s', collection_jitter: '0s', flush_jitter: '0s' });
  });
});
