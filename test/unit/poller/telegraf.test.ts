import { addMetric, isComplete, presetMapping, telegrafPreset, type HostSteps } from '../../../src/poller/telegraf';
import { ownsHost, shardOf } from '../../../src/poller/shard';
import type { SeriesGroup } from '../../../src/influx/types';

const preset = telegrafPreset();
const rows = (pairs: Array<[number, number]>, field: string) => pairs.map(([time, v]) => ({ time, values: { [field]: v } }));

describe('Telegraf mapping', () => {
  it('turns usage_idle into CPU usage and keeps used_percent', () => {
    const out: HostSteps = new Map();
    addMetric(out, 'cpu_usage', preset.cpu_usage, [{ tags: { host: 'a' }, rows: rows([[10000, 75]], 'usage_idle') }], 10000);
    addMetric(out, 'memory_usage', preset.memory_usage, [{ tags: { host: 'a' }, rows: rows([[10000, 42.5]], 'used_percent') }], 10000);
    expect(out.get('a')?.get(10000)).toEqual({ cpu_usage: 25, memory_usage: 42.5 });
  });

  it('computes network rates per interface, sums them, ignores lo, and survives counter resets', () => {
    const out: HostSteps = new Map();
    const groups: SeriesGroup[] = [
      {
        tags: { host: 'a', interface: 'eth0' },
        rows: rows(
          [
            [0, 1000],
            [10000, 11000],
            [20000, 500],
            [30000, 10500],
          ],
          'bytes_recv',
        ),
      },
      {
        tags: { host: 'a', interface: 'eth1' },
        rows: rows(
          [
            [0, 0],
            [10000, 2000],
            [20000, 4000],
            [30000, 6000],
          ],
          'bytes_recv',
        ),
      },
      {
        tags: { host: 'a', interface: 'lo' },
        rows: rows(
          [
            [0, 0],
            [10000, 1e9],
            [20000, 2e9],
            [30000, 3e9],
          ],
          'bytes_recv',
        ),
      },
    ];
    addMetric(out, 'network_load', preset.network_load, groups, 10000);
    const a = out.get('a');
    expect(a?.has(0)).toBe(false); // first sample: no rate yet
    expect(a?.get(10000)?.network_load).toBe(1000 + 200);
    expect(a?.get(20000)?.network_load).toBe(50 + 200); // eth0 reset: 500 bytes since the reset
    expect(a?.get(30000)?.network_load).toBe(1000 + 200);
  });

  it('takes the previous counter sample from the history of earlier reads', () => {
    const history = new Map();
    const first: HostSteps = new Map();
    addMetric(
      first,
      'network_load',
      preset.network_load,
      [
        {
          tags: { host: 'a', interface: 'eth0' },
          rows: rows(
            [
              [0, 0],
              [10000, 1000],
            ],
            'bytes_recv',
          ),
        },
      ],
      10000,
      history,
    );
    expect(first.get('a')?.get(10000)?.network_load).toBe(100);
    // The next read starts after the last sample: its first row still gets a rate.
    const next: HostSteps = new Map();
    addMetric(
      next,
      'network_load',
      preset.network_load,
      [{ tags: { host: 'a', interface: 'eth0' }, rows: rows([[20000, 3000]], 'bytes_recv') }],
      10000,
      history,
    );
    expect(next.get('a')?.get(20000)?.network_load).toBe(200);
    // A read that covers an already seen sample again uses the sample before it.
    const again: HostSteps = new Map();
    addMetric(
      again,
      'network_load',
      preset.network_load,
      [
        {
          tags: { host: 'a', interface: 'eth0' },
          rows: rows(
            [
              [20000, 3000],
              [30000, 3500],
            ],
            'bytes_recv',
          ),
        },
      ],
      10000,
      history,
    );
    expect(again.get('a')?.get(20000)?.network_load).toBe(200);
    expect(again.get('a')?.get(30000)?.network_load).toBe(50);
    expect(history.get('a').get('network_load\u0000eth0').length).toBeLessThanOrEqual(8);
  });

  it('keeps one history per counter when one series holds several (a disk: bytes read, written, I/O time)', () => {
    const node = presetMapping('node');
    const history = new Map();
    const disk = (points: [number, number, number, number][]): SeriesGroup[] => [
      {
        tags: { host: 'a', name: 'vda' },
        rows: points.map(([time, read_bytes, write_bytes, io_time]) => ({ time, values: { read_bytes, write_bytes, io_time } })),
      },
    ];
    const read = (points: [number, number, number, number][]): HostSteps => {
      const out: HostSteps = new Map();
      for (const metric of ['disk_read_bytes', 'disk_write_bytes', 'disk_io_time'])
        addMetric(out, metric, node[metric], disk(points), 10000, history);
      return out;
    };
    read([
      [0, 4e10, 1.4e11, 5000],
      [10000, 4e10, 1.4e11 + 8192, 5010],
    ]);
    // The next read's first sample takes each counter's own previous sample.
    const next = read([[20000, 4e10, 1.4e11 + 16384, 5030]])
      .get('a')
      ?.get(20000);
    expect(next).toEqual({ disk_read_bytes: 0, disk_write_bytes: 819.2, disk_io_time: 2 });
  });

  it('keeps the last value of a series in a step that holds two of its samples, summed over interfaces once', () => {
    // Telegraf every 5 s, steps of 10 s: eth0 at 100 B/s, eth1 at 1,000 B/s, 5 s apart.
    const out: HostSteps = new Map();
    const iface = (name: string, rate: number) => ({
      tags: { host: 'a', interface: name },
      rows: rows(
        [0, 5000, 10000, 15000, 20000, 25000].map((t): [number, number] => [t, (rate * t) / 1000]),
        'bytes_recv',
      ),
    });
    addMetric(out, 'network_load', preset.network_load, [iface('eth0', 100), iface('eth1', 1000)], 10000);
    expect([...(out.get('a') ?? new Map())].map(([t, v]) => [t, v.network_load])).toEqual([
      [0, 1100],
      [10000, 1100],
      [20000, 1100],
    ]);
    // Without a sum over a tag, the same: one series, its last value.
    const cpu: HostSteps = new Map();
    addMetric(
      cpu,
      'cpu_usage',
      preset.cpu_usage,
      [
        {
          tags: { host: 'a' },
          rows: rows(
            [
              [10000, 80],
              [15000, 70],
            ],
            'usage_idle',
          ),
        },
      ],
      10000,
    );
    expect(cpu.get('a')?.get(10000)).toEqual({ cpu_usage: 30 });
  });

  it('joins on the collection step and knows when a step is complete', () => {
    const out: HostSteps = new Map();
    addMetric(out, 'cpu_usage', preset.cpu_usage, [{ tags: { host: 'a' }, rows: rows([[10003, 90]], 'usage_idle') }], 10000);
    addMetric(out, 'memory_usage', preset.memory_usage, [{ tags: { host: 'a' }, rows: rows([[10001, 50]], 'used_percent') }], 10000);
    const step = out.get('a')?.get(10000) ?? {};
    expect(isComplete(step)).toBe(false);
    step.network_load = 1;
    expect(isComplete(step)).toBe(true);
  });

  it('drops rows with missing or non-numeric fields and groups without a host', () => {
    const out: HostSteps = new Map();
    addMetric(
      out,
      'memory_usage',
      preset.memory_usage,
      [
        { tags: { host: 'a' }, rows: [{ time: 0, values: { used_percent: null } }] },
        { tags: { host: '' }, rows: rows([[0, 1]], 'used_percent') },
      ],
      10000,
    );
    expect(out.get('a')?.size ?? 0).toBe(0);
    expect(out.has('')).toBe(false);
  });
});

describe('sharding', () => {
  it('puts every host in exactly one shard, spread evenly', () => {
    const counts = [0, 0, 0];
    for (let i = 0; i < 3000; i++) {
      const host = `host-${i}`;
      const owners = [0, 1, 2].filter((index) => ownsHost({ count: 3, index }, host));
      expect(owners).toHaveLength(1);
      expect(owners[0]).toBe(shardOf(host, 3));
      counts[owners[0]]++;
    }
    for (const c of counts) expect(c).toBeGreaterThan(900);
    expect(ownsHost({ count: 1, index: 0 }, 'anything')).toBe(true);
  });
});
