import { CONFIG_ENV_NAMES, EnvSchema, loadConfig } from '../../src/config';
import { ConfigError } from '../../src/errors';

/** Issue 11 item 12: values that passed validation but broke the service. */
function reject(env: NodeJS.ProcessEnv): string {
  try {
    loadConfig(env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as Error).message).not.toContain('\n');
    return (e as Error).message;
  }
  throw new Error(`accepted ${JSON.stringify(env)}`);
}

/** Longest delay setTimeout keeps (a longer one fires at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

describe('configuration ranges', () => {
  it.each([
    ['POLL_INTERVAL_S', '3000000'],
    ['INFLUX_TIMEOUT_S', '3000000'],
    ['SHUTDOWN_TIMEOUT_S', '1e10'],
    ['MLFLOW_TIMEOUT_S', '1e9'],
    ['POLL_MAX_BACKOFF_S', '1e9'],
    ['DRIFT_INTERVAL_S', '1e9'],
    ['REFIT_INTERVAL_S', '1e9'],
    ['GATE_SURGE_CPU', '101'],
    ['GATE_SURGE_MEMORY', '101'],
    ['GATE_SURGE_NETWORK', '1e300'],
    ['COLLECTION_INTERVAL_S', '1e9'],
    ['SETTLE_S', '1e9'],
    ['GATE_COOLDOWN_S', '1e12'],
    ['GATE_REPEAT_WINDOW_S', '1e12'],
    ['MAX_LOOKBACK_S', '1e12'],
    ['DRIFT_PSI_WARN', '1e9'],
  ])('refuses %s=%s with one line naming it', (name, value) => {
    expect(reject({ [name]: value })).toMatch(new RegExp(`^invalid configuration: ${name}=`));
  });

  it('every timer-backed setting at its maximum stays within what setTimeout keeps', () => {
    const max = (name: string): string => {
      for (const v of ['1e12', '1e9', '1e7', '2000000', '1e6', '604800', '86400', '3600', '600']) {
        try {
          loadConfig({ [name]: v });
          return v;
        } catch {
          // try a smaller one
        }
      }
      throw new Error(name);
    };
    const c = (name: string) => loadConfig({ [name]: max(name) });
    expect(c('POLL_INTERVAL_S').poller.intervalMs).toBeLessThanOrEqual(MAX_TIMER_MS);
    expect(c('POLL_MAX_BACKOFF_S').poller.maxBackoffMs).toBeLessThanOrEqual(MAX_TIMER_MS);
    expect(c('SHUTDOWN_TIMEOUT_S').shutdownTimeoutS * 1000).toBeLessThanOrEqual(MAX_TIMER_MS);
    expect(c('MLFLOW_TIMEOUT_S').mlflowTimeoutMs * 4).toBeLessThanOrEqual(MAX_TIMER_MS);
    expect(loadConfig({ INFLUX_URL: 'http://x:8086', INFLUX_TIMEOUT_S: max('INFLUX_TIMEOUT_S') }).influx?.timeoutMs).toBeLessThanOrEqual(
      MAX_TIMER_MS,
    );
    expect(c('DRIFT_INTERVAL_S').poller.drift.intervalMs).toBeLessThanOrEqual(MAX_TIMER_MS);
  });

  it('an empty numeric value is its default, never 0', () => {
    const defaults = loadConfig({});
    const numeric = CONFIG_ENV_NAMES.filter((n) => {
      const shape = EnvSchema.shape as Record<string, { safeParse(v: unknown): { success: boolean; data?: unknown } }>;
      return typeof shape[n].safeParse(undefined).data === 'number';
    });
    expect(numeric).toEqual(
      expect.arrayContaining(['PORT', 'POLL_INTERVAL_S', 'GATE_SURGE_CPU', 'SETTLE_S', 'REFIT_INTERVAL_S', 'BODY_LIMIT']),
    );
    for (const name of numeric) {
      const c = loadConfig({ [name]: '' });
      expect([name, JSON.stringify(c)]).toEqual([name, JSON.stringify(defaults)]);
    }
    expect(loadConfig({ PORT: '' }).port).toBe(8080);
    expect(loadConfig({ PORT: '  ' }).port).toBe(8080);
  });
});
