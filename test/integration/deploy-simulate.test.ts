/**
 * The compose `simulate` profile's command and healthcheck, run as written (the same
 * /bin/sh command line, the built CLI) against a real influxd in place of the influxdb
 * service: it backfills the last 50 minutes of labelled hosts, then keeps writing live
 * steps, and its healthcheck passes once data flows (and fails on a database without it).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { startInfluxd, type Influxd } from '../helpers/influxd';
import { DB, waitUntil } from '../helpers/influx-data';
import { CLI } from '../helpers/cli';
import { argvOf, loadCompose } from '../unit/deploy/lib/compose';
import { COMPOSE_FILE, REPO } from '../unit/deploy/lib/paths';
import { existsSync } from 'node:fs';

const INFLUX_IN_COMPOSE = 'http://influxdb:8086';

describe('compose simulate profile, run outside Docker', () => {
  let influxd: Influxd;
  let child: ChildProcess | undefined;
  const { compose } = loadCompose(COMPOSE_FILE, { SIMULATE_HOSTS: '3' });
  const svc = compose.services.simulate;

  const series = async (q: string) => {
    const body = (await influxd.rawQuery(q, { db: DB })) as {
      results: Array<{ series?: Array<{ tags?: Record<string, string>; values: unknown[][] }>; error?: string }>;
    };
    if (body.results[0].error) throw new Error(body.results[0].error);
    return body.results[0].series ?? [];
  };

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build (npm test does)`);
    influxd = await startInfluxd();
    // As the influxdb service does at first start (INFLUXDB_DB).
    await influxd.rawQuery(`CREATE DATABASE "${DB}"`);
  }, 60_000);

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child?.once('exit', r));
      // The live loop stops at its next step; no need to wait for it here.
      child.kill('SIGKILL');
      await exited;
    }
    await influxd?.cleanup();
  });

  it('backfills labelled hosts, keeps writing live, and passes its healthcheck', async () => {
    const entrypoint = argvOf(svc.entrypoint);
    const command = argvOf(svc.command);
    expect(entrypoint).toEqual(['/bin/sh', '-c']);
    expect(command).toHaveLength(1);
    const script = command[0].split(INFLUX_IN_COMPOSE).join(influxd.url);
    expect(script).not.toContain('influxdb:8086');
    // The image's WORKDIR holds dist/ as the repository does after npm run build.
    child = spawn(entrypoint[0], [...entrypoint.slice(1), script], {
      cwd: REPO,
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout?.on('data', (d) => (out += d));
    child.stderr?.on('data', (d) => (out += d));

    // Backfill: about 50 minutes of 10 s steps for every host, with incident labels.
    await waitUntil(
      async () => (await series('SELECT count("usage_idle") FROM "cpu" GROUP BY "host"')).length === 3,
      30_000,
      `the backfill (${out})`,
    );
    const counts = await series('SELECT count("usage_idle") FROM "cpu" GROUP BY "host"');
    // The compose profile simulates the heterogeneous fleet: batch, idle and network hosts first.
    expect(counts.map((s) => s.tags?.host).sort()).toEqual(['batch-01', 'idle-01', 'network-01']);
    for (const s of counts) expect(Number(s.values[0][1])).toBeGreaterThanOrEqual(290);
    expect((await series('SELECT count("anomaly") FROM "simulation_labels"')).length).toBe(1);

    // Live: a new step arrives after the backfill.
    const before = Number(counts[0].values[0][1]);
    await waitUntil(
      async () =>
        Number((await series(`SELECT count("usage_idle") FROM "cpu" WHERE "host" = '${counts[0].tags?.host}'`))[0].values[0][1]) > before,
      25_000,
      `a live step (${out})`,
    );
    expect(child.exitCode).toBeNull();

    const hc = argvOf(svc.healthcheck?.test);
    expect(hc.slice(0, 3)).toEqual(['CMD', 'node', '-e']);
    const check = (url: string, db = DB) =>
      spawnSync(process.execPath, ['-e', hc[3].split(INFLUX_IN_COMPOSE).join(url).replace(`db=${DB}`, `db=${db}`)], { timeout: 15_000 })
        .status;
    expect(check(influxd.url)).toBe(0);
    expect(check(influxd.url, 'no_such_db')).not.toBe(0);
  }, 90_000);
});
