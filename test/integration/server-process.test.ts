import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MODEL_PATH, normalPoint } from '../helpers/fixtures';
import { startExpectingFailure, startService, freePort } from '../helpers/process';
import { NODE_METRICS } from '../../src/core/metrics';
import { trainModel } from '../../src/core/train';

/** A model of the 13 node metrics (raw features), written to `dir`. */
function nodeModel(dir: string): string {
  const m = NODE_METRICS.length;
  const n = 300;
  const raw = new Float64Array(n * m);
  for (let i = 0; i < n * m; i++) raw[i] = 10 + ((i * 7919) % 50);
  const a = trainModel(raw, n, {
    nEstimators: 20,
    maxSamples: 64,
    seed: 1,
    contamination: 0.01,
    createdAt: '2026-01-01T00:00:00.000Z',
    inputs: NODE_METRICS.map((d) => d.name),
    features: NODE_METRICS.map((d) => ({ name: d.name, source: d.name, transform: 'raw' as const, unit: d.unit, min: d.min, max: d.max })),
  });
  const path = join(dir, 'node-model.json');
  writeFileSync(path, JSON.stringify(a));
  return path;
}

describe('the service as a real process (npm start runs the same command)', () => {
  it('answers /health, /detect and /metrics over HTTP, and logs JSON with request ids', async () => {
    const svc = await startService();
    try {
      const health = await fetch(`${svc.url}/health`);
      expect(health.status).toBe(200);
      const detect: Response = await fetch(`${svc.url}/detect`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': 'test-req-42' },
        body: JSON.stringify({ points: [normalPoint(0)] }),
      });
      expect(detect.status).toBe(200);
      expect(((await detect.json()) as { results: unknown[] }).results).toHaveLength(1);
      const metrics = await (await fetch(`${svc.url}/metrics`)).text();
      expect(metrics).toContain('anomaly_detector_points_scored_total{source="http"} 1');
    } finally {
      expect(await svc.stop()).toBe(0);
    }
    const lines = svc
      .output()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.some((l) => l.reqId === 'test-req-42')).toBe(true);
    expect(lines.some((l) => l.msg === 'model loaded')).toBe(true);
  });

  it('on SIGTERM finishes the request in flight, then exits 0', async () => {
    const svc = await startService();
    const port = Number(new URL(svc.url).port);
    const body = JSON.stringify({ points: [normalPoint(0), normalPoint(1)] });
    const half = Math.floor(body.length / 2);
    const socket = connect(port, '127.0.0.1');
    let response = '';
    socket.on('data', (d) => (response += d));
    const closed = new Promise((r) => socket.on('close', r));
    await new Promise((r) => socket.on('connect', r));
    socket.write(
      `POST /detect HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body.slice(0, half)}`,
    );
    await new Promise((r) => setTimeout(r, 200));
    svc.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    // New connections are refused while the old request is still being received.
    await expect(fetch(`${svc.url}/health/live`)).rejects.toThrow();
    socket.write(body.slice(half));
    await closed;
    expect(response).toMatch(/^HTTP\/1.1 200/);
    expect(response).toContain('"results"');
    expect(await svc.exited).toBe(0);
    expect(svc.output()).toContain('shutting down');
  });

  const dir = mkdtempSync(join(tmpdir(), 'iad-bad-model-'));
  const good = readFileSync(MODEL_PATH, 'utf8');
  const write = (name: string, text: string): string => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  it.each([
    ['a missing model', () => join(dir, 'absent.json'), /cannot read \(ENOENT\)/],
    ['a truncated model', () => write('truncated.json', good.slice(0, 5000)), /not valid JSON/],
    ['a tampered model', () => write('tampered.json', good.replace(/"mean":\[([-0-9.e]+)/, '"mean":[1')), /checksum mismatch/],
    [
      'a model of another format version',
      () => write('v9.json', good.replace('"format_version":1', '"format_version":9')),
      /format_version 9 is not supported/,
    ],
    [
      'a model with other features',
      () => write('features.json', good.replace('"source":"cpu_usage"', '"source":"disk_io"')),
      /features.0.source/,
    ],
  ])('refuses to start on %s with one clear line and a non-zero exit', async (_name, path, pattern) => {
    const r = await startExpectingFailure({ MODEL_PATH: path() });
    expect(r.code).not.toBe(0);
    expect(r.output.trim().split('\n')).toHaveLength(1);
    expect(r.output).toMatch(/^anomaly-detector: cannot start: /);
    expect(r.output).toMatch(pattern);
  });

  it.each([
    ['PORT', 'eighty'],
    ['LOG_LEVEL', 'loud'],
    ['BODY_LIMIT', '-1'],
    ['API_TOKEN', 'short'],
  ])('refuses to start with a bad %s, naming it in one line', async (name, value) => {
    const r = await startExpectingFailure({ [name]: value });
    expect(r.code).not.toBe(0);
    expect(r.output.trim().split('\n')).toHaveLength(1);
    expect(r.output).toContain(`invalid configuration: ${name}=`);
  });

  describe('metric sets', () => {
    const nodeDir = mkdtempSync(join(tmpdir(), 'iad-node-model-'));
    const model = nodeModel(nodeDir);

    it('refuses a model whose metrics the mapping does not provide, naming them in one line', async () => {
      const port = await freePort();
      const r = await startExpectingFailure({ MODEL_PATH: model, INFLUX_URL: `http://127.0.0.1:${port}`, METRIC_SET: 'basic' });
      expect(r.code).not.toBe(0);
      expect(r.output.trim().split('\n')).toHaveLength(1);
      expect(r.output).toMatch(/^anomaly-detector: cannot start: model \S+ takes metrics \(cpu_usage, memory_usage, network_load, load1, /);
      expect(r.output).toContain('METRIC_SET=basic does not provide load1, load5, load15, disk_read_bytes');
    });

    it('refuses a mapping file with a bad metric name in one line', async () => {
      const file = join(nodeDir, 'bad-mapping.json');
      writeFileSync(file, JSON.stringify({ 'disk io': { measurement: 'diskio', fields: ['io_time'], transform: 'rate' } }));
      const r = await startExpectingFailure({ METRICS_MAPPING_FILE: file });
      expect(r.code).not.toBe(0);
      expect(r.output.trim().split('\n')).toHaveLength(1);
      expect(r.output).toContain(`METRICS_MAPPING_FILE ${file}: disk io: metric names are lower case letters`);
    });

    it('serves a node-set model over HTTP (no InfluxDB), and starts with it beside InfluxDB when METRIC_SET=node', async () => {
      const svc = await startService({ MODEL_PATH: model });
      try {
        const health = (await (await fetch(`${svc.url}/health`)).json()) as { model: { version: string } };
        expect(health.model.version).toMatch(/^20260101-/);
        // Named metrics, all 13, in any order: one contribution each, in the set's order.
        const metrics = Object.fromEntries(NODE_METRICS.map((d, i) => [d.name, 10 + i]).reverse());
        const res = await fetch(`${svc.url}/detect`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ points: [{ host: 'n1', metrics }] }),
        });
        expect(res.status).toBe(200);
        const body = (await res.json()) as { results: Array<{ contributions: Record<string, number> }> };
        expect(Object.keys(body.results[0].contributions)).toEqual(NODE_METRICS.map((d) => d.name));
        // A point without the node metrics is refused, naming one it lacks.
        const bad = await fetch(`${svc.url}/detect`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ points: [{ cpu_usage: 1, memory_usage: 2, network_load: 3 }] }),
        });
        expect(bad.status).toBe(400);
        expect(await bad.text()).toContain('load1');
      } finally {
        await svc.stop();
      }
      const port = await freePort();
      const withInflux = await startService({ MODEL_PATH: model, INFLUX_URL: `http://127.0.0.1:${port}`, METRIC_SET: 'node' });
      await withInflux.stop();
      expect(withInflux.output()).toContain('model loaded');
    });
  });
});
