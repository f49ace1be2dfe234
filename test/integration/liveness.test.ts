import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { resolve } from 'node:path';
import { freePort } from '../helpers/ports';
import { startExpectingFailure, startService } from '../helpers/process';

const DIST_LIVENESS = resolve(__dirname, '..', '..', 'dist', 'src', 'liveness.js');

/** A process running the liveness thread (the built module) whose main loop blocks for `ms` on each line of stdin. */
function blockingProcess(port: number, stallMs: number): ChildProcessWithoutNullStreams {
  const script = `
    const { startLiveness } = require(${JSON.stringify(DIST_LIVENESS)});
    startLiveness({ port: ${port}, host: '127.0.0.1', stallMs: ${stallMs}, beatMs: 50 }).then((l) => {
      process.stdout.write('listening ' + l.port + '\\n');
      process.stdin.on('data', (d) => {
        const until = Date.now() + Number(String(d).trim());
        while (Date.now() < until) {} // a wedged event loop
        process.stdout.write('unblocked\\n');
      });
    });
  `;
  return spawn(process.execPath, ['-e', script]);
}

const lineFrom = (child: ChildProcessWithoutNullStreams, prefix: string): Promise<string> =>
  new Promise((ok, fail) => {
    let buf = '';
    const on = (d: Buffer) => {
      buf += d.toString();
      const line = buf.split('\n').find((l) => l.startsWith(prefix));
      if (line) {
        child.stdout.off('data', on);
        ok(line);
      }
    };
    child.stdout.on('data', on);
    child.once('exit', (code) => fail(new Error(`exited ${code} before "${prefix}"`)));
  });

describe('liveness on its own thread (LIVENESS_PORT)', () => {
  it('answers while the main loop turns, 503 once it has not turned for LIVENESS_STALL_S, 200 again after', async () => {
    const port = await freePort();
    const child = blockingProcess(port, 400);
    try {
      await lineFrom(child, 'listening');
      const probe = async () => {
        const r = await fetch(`http://127.0.0.1:${port}/health/live`, { signal: AbortSignal.timeout(2000) });
        return { status: r.status, body: (await r.json()) as { status: string; event_loop_beat_age_ms: number } };
      };
      expect(await probe()).toMatchObject({ status: 200, body: { status: 'alive' } });
      // The main loop blocks for 1.5 s: the thread still answers, and says it is stalled.
      child.stdin.write('1500\n');
      await new Promise((r) => setTimeout(r, 900));
      const t0 = performance.now();
      const stalled = await probe();
      expect(performance.now() - t0).toBeLessThan(500);
      expect(stalled).toMatchObject({ status: 503, body: { status: 'stalled' } });
      expect(stalled.body.event_loop_beat_age_ms).toBeGreaterThanOrEqual(400);
      await lineFrom(child, 'unblocked');
      await new Promise((r) => setTimeout(r, 200));
      expect(await probe()).toMatchObject({ status: 200, body: { status: 'alive' } });
      // Only the probe is served there.
      expect((await fetch(`http://127.0.0.1:${port}/detect`, { method: 'POST' })).status).toBe(404);
    } finally {
      child.kill('SIGKILL');
    }
  }, 30_000);

  it('the service with LIVENESS_PORT serves the probe there; a taken port stops the start with one line', async () => {
    const port = await freePort();
    const svc = await startService({ LIVENESS_PORT: String(port) });
    try {
      const r = await fetch(`http://127.0.0.1:${port}/health/live`);
      expect(r.status).toBe(200);
      expect(await r.json()).toMatchObject({ status: 'alive' });
      expect(svc.output()).toContain('liveness probe on its own thread');
      const taken = await startExpectingFailure({ LIVENESS_PORT: String(port) });
      expect(taken.code).not.toBe(0);
      // One line that says what to fix (the JSON lines before it are the log of the start).
      const lines = taken.output.split('\n').filter((l) => l.startsWith('anomaly-detector: '));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`^anomaly-detector: cannot start: LIVENESS_PORT ${port}: .*EADDRINUSE`));
      expect(taken.output).not.toContain('Server listening');
    } finally {
      await svc.stop();
    }
  }, 30_000);
});
