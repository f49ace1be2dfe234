import { addMetric, telegrafPreset, type HostSteps } from '../../src/poller/telegraf';
import { parseInfluxJson } from '../../src/influx/series';
import { startInfluxd, type Influxd } from '../helpers/influxd';
import { storeFor } from '../helpers/influx-data';
import type { MetricsStore } from '../../src/influx/types';

/**
 * Issue 11 item 11: Telegraf's byte counters are int64; above 2^53 JSON.parse rounds them
 * (1e18 + 1001 reads as 1e18 + 1024), so a rate of 100 B/s came out as 102.4. The v1
 * adapter reads them exactly and rates are computed from the exact values.
 */
describe('int64 counters above 2^53', () => {
  it('parseInfluxJson keeps integers beyond 2^53 exactly, and leaves strings and other numbers alone', () => {
    const text =
      '{"results":[{"series":[{"columns":["time","bytes_recv","x"],"tags":{"host":"12345678901234567890"},"values":[[1,1000000000000001001,-9007199254740993],[2,12,1.5e300],[3,"1000000000000001001 \\" ,1000000000000001001",9007199254740991]]}]}]}';
    const body = parseInfluxJson(text) as { results: Array<{ series: Array<{ tags: { host: string }; values: unknown[][] }> }> };
    const s = body.results[0].series[0];
    expect(s.tags.host).toBe('12345678901234567890');
    expect(s.values[0][1]).toBe(1000000000000001001n);
    expect(s.values[0][2]).toBe(-9007199254740993n);
    expect(s.values[1]).toEqual([2, 12, 1.5e300]);
    expect(s.values[2]).toEqual([3, '1000000000000001001 " ,1000000000000001001', 9007199254740991]);
  });

  describe('against a real influxd', () => {
    let influxd: Influxd;
    let store: MetricsStore;
    beforeAll(async () => {
      influxd = await startInfluxd();
      store = storeFor(influxd);
      await store.createDatabase?.();
    }, 60_000);
    afterAll(async () => {
      await store?.close();
      await influxd?.cleanup();
    });

    it('reads the counters exactly and computes the rate from them: 100 B/s, not 102.4', async () => {
      const t0 = Date.parse('2026-01-05T10:00:00Z');
      await store.writeLines([
        `net,host=h,interface=eth0 bytes_recv=1000000000000000001i ${t0}`,
        `net,host=h,interface=eth0 bytes_recv=1000000000000001001i ${t0 + 10_000}`,
      ]);
      const m = telegrafPreset().network_load;
      const groups = await store.readSeries({
        measurement: m.measurement,
        fields: m.fields,
        groupBy: ['host', 'interface'],
        from: t0 - 1,
        to: t0 + 20_000,
      });
      expect(groups[0].rows.map((r) => r.values.bytes_recv)).toEqual([1e18, Number('1000000000000001001')]);
      const steps: HostSteps = new Map();
      addMetric(steps, 'network_load', m, groups, 10_000);
      expect(steps.get('h')?.get(t0 + 10_000)?.network_load).toBe(100);
    });
  });
});
