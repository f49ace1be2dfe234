import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MODEL_PATH, normalPoint } from '../helpers/fixtures';
import { startExpectingFailure, startService } from '../helpers/process';

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
});
