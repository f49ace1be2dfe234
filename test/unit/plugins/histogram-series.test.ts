import { Histogram, Registry } from 'prom-client';
import { Rng } from '../../../src/core/random';
import { histogramSeries } from '../../../src/plugins/metrics';

const make = () => {
  const registry = new Registry();
  const h = new Histogram({ name: 'h', help: 'h', labelNames: ['source', 'x'], buckets: [0.3, 0.5, 0.8], registers: [registry] });
  return { registry, h };
};

describe('histogramSeries', () => {
  it('leaves /metrics as observe per value does: buckets, edges, sum order, several series, reset and remove', async () => {
    const r = new Rng(3);
    const a = make();
    const b = make();
    const fast = histogramSeries(b.h, { source: 'http' });
    const other = histogramSeries(b.h, { source: 'kafka', x: 'y' });
    for (let round = 0; round < 30; round++) {
      const n = r.int(40);
      const values = Float64Array.from({ length: n }, () => [0.3, 0.5, 0.8, 0, 2, r.next(), r.next() * 1e-3][r.int(7)]);
      for (const v of values) a.h.observe({ source: 'http' }, v);
      fast(values, n);
      if (round % 3 === 0) {
        a.h.observe({ source: 'kafka', x: 'y' }, values[0] ?? 0.1);
        other(values.length ? values : [0.1], 1);
      }
      if (round === 10) [a, b].forEach((t) => t.h.reset());
      if (round === 20) [a, b].forEach((t) => t.h.remove({ source: 'http' }));
      expect(await b.registry.metrics()).toBe(await a.registry.metrics());
    }
    expect(await b.registry.metrics()).toContain('h_count{source="http"}');
  });

  it('throws at a value that is not finite, as observe does, keeping the ones before it', async () => {
    const a = make();
    const b = make();
    a.h.observe({ source: 'http' }, 0.4);
    a.h.observe({ source: 'http' }, 0.6);
    expect(() => a.h.observe({ source: 'http' }, NaN)).toThrow(TypeError);
    const fast = histogramSeries(b.h, { source: 'http' });
    fast([0.1], 1);
    b.h.reset();
    expect(() => fast([0.4, 0.6, NaN, 0.7], 4)).toThrow(TypeError);
    expect(await b.registry.metrics()).toBe(await a.registry.metrics());
  });
});
