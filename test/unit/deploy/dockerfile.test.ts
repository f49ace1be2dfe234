import { existsSync, readFileSync } from 'node:fs';
import { posix, resolve } from 'node:path';
import { CONFIG_ENV_NAMES, loadConfig } from '../../../src/config';
import { testApp } from '../../helpers/fixtures';
import { healthcheckOf, parseDockerfile, parseEnv, stagesOf, type Stage } from './lib/dockerfile';
import { dockerignore } from './lib/dockerignore';
import { DOCKERFILE, DOCKERIGNORE, REPO } from './lib/paths';

const text = readFileSync(DOCKERFILE, 'utf8');
const stages = stagesOf(parseDockerfile(text));
const final = stages[stages.length - 1];
const pkg = JSON.parse(readFileSync(resolve(REPO, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
  bin: Record<string, string>;
  engines: { node: string };
};

const all = (s: Stage, keyword: string) => s.instructions.filter((i) => i.keyword === keyword);
const envOf = (s: Stage): Record<string, string> => Object.assign({}, ...all(s, 'ENV').map((i) => parseEnv(i.args)));
const workdirOf = (s: Stage): string => all(s, 'WORKDIR').reduce((wd, i) => posix.resolve(wd, i.args), '/');

describe('Dockerfile (static checks; test/integration/deploy-dockerfile.test.ts runs it)', () => {
  it('is multi-stage on a pinned Node 20 base that satisfies package.json engines', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const s of stages) {
      if (stages.some((o) => o.name === s.base)) continue;
      const m = /^node:(\d+)\.(\d+)\.(\d+)-(bookworm-slim|bullseye-slim|trixie-slim|alpine\d*(?:\.\d+)?)(@sha256:[0-9a-f]{64})?$/.exec(
        s.base,
      );
      expect({ stage: s.name, base: s.base, pinned: m !== null }).toEqual({ stage: s.name, base: s.base, pinned: true });
      const [major, minor] = [Number(m?.[1]), Number(m?.[2])];
      expect(major).toBe(20);
      const engine = /^>=(\d+)\.(\d+)/.exec(pkg.engines.node);
      expect(engine).not.toBeNull();
      expect(major > Number(engine?.[1]) || (major === Number(engine?.[1]) && minor >= Number(engine?.[2]))).toBe(true);
    }
    // The build check runs the Dockerfile's commands with this machine's node: same major.
    expect(process.versions.node.split('.')[0]).toBe('20');
  });

  it('builds with dev dependencies and hands only production ones to the runtime stage', () => {
    const build = stages.find((s) => all(s, 'RUN').some((r) => /\bnpm run build\b/.test(r.args)));
    expect(build).toBeDefined();
    const runs = all(build as Stage, 'RUN').map((r) => r.args);
    const ci = runs.findIndex((r) => /^npm ci\b/.test(r) && !/--omit=dev|--production/.test(r));
    const compile = runs.findIndex((r) => /\bnpm run build\b/.test(r));
    const prune = runs.findIndex((r) => /^npm prune\b.*--omit=dev/.test(r));
    expect(ci).toBeGreaterThanOrEqual(0);
    expect(compile).toBeGreaterThan(ci);
    expect(prune).toBeGreaterThan(compile);
    // The runtime stage installs nothing itself; its node_modules come from the pruned build.
    expect(all(final, 'RUN')).toEqual([]);
    const copies = all(final, 'COPY');
    const nm = copies.find((c) => /node_modules/.test(c.args));
    expect(nm?.flags.from).toBe((build as Stage).name);
  });

  it('runs as a non-root user', () => {
    const users = all(final, 'USER').map((u) => u.args);
    expect(users.length).toBeGreaterThan(0);
    expect(users[users.length - 1]).not.toMatch(/^(root|0)(:|$)/);
  });

  it('starts node directly (exec form, no npm or shell), the same command as npm start', () => {
    const cmd = all(final, 'CMD').pop();
    // The heap flags of docs/benchmarks.md ("The poller"), then the service.
    expect(cmd?.exec).toEqual(['node', '--heap-growing-percent=20', '--max-semi-space-size=2', 'dist/src/cli/main.js', 'serve']);
    expect(all(final, 'ENTRYPOINT')).toEqual([]);
    // npm start: the image's malloc setting (its ENV), then the same command.
    expect(envOf(final).MALLOC_ARENA_MAX).toBe('2');
    expect(pkg.scripts.start).toBe(`MALLOC_ARENA_MAX=2 ${cmd?.exec?.join(' ')}`);
    expect(pkg.bin['anomaly-detector']).toBe(cmd?.exec?.[3]);
    // bench:poller measures the poller as the image runs it.
    expect(pkg.scripts['bench:poller']).toContain(`MALLOC_ARENA_MAX=2 node ${cmd?.exec?.slice(1, 3).join(' ')} dist/bench/poller.js`);
  });

  it('has a HEALTHCHECK that asks /health with node on the configured port', async () => {
    const hc = healthcheckOf(final);
    expect(hc?.execForm).toBe(true);
    expect(hc?.argv[0]).toBe('node');
    const script = hc?.argv.join(' ') ?? '';
    expect(script).toMatch(/127\.0\.0\.1:' \+ \(process\.env\.PORT \|\| (\d+)\) \+ '\/health'/);
    const defaultPort = /process\.env\.PORT \|\| (\d+)/.exec(script)?.[1];
    expect(defaultPort).toBe(envOf(final).PORT);
    // Timeout flags are shorter than the interval, and the script has its own abort.
    expect(hc?.flags.interval).toBeDefined();
    expect(hc?.flags.timeout).toBeDefined();
    expect(script).toContain('AbortSignal.timeout');
    // The route answers 200 when a model is loaded.
    const app = await testApp();
    try {
      expect((await app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('configures the service by environment with names from the config schema, and EXPOSEs its PORT', () => {
    const env = envOf(final);
    expect(Object.keys(env).length).toBeGreaterThan(0);
    // Every name is the service's configuration, but glibc's malloc setting (read by the C library, not the service).
    const runtime = ['MALLOC_ARENA_MAX'];
    for (const name of Object.keys(env))
      expect({ name, known: CONFIG_ENV_NAMES.includes(name) || runtime.includes(name) }).toEqual({ name, known: true });
    const config = loadConfig(env);
    expect(all(final, 'EXPOSE').flatMap((e) => e.args.split(/\s+/))).toEqual([String(config.port)]);
    // The image learns each host by default: it names no model (LEARN=auto).
    expect(config.poller.learn).not.toBeNull();
    expect(env.MODEL_PATH).toBeUndefined();
    // The bundled model is copied to where MODEL_PATH points.
    const modelCopy = all(final, 'COPY').find((c) => !c.flags.from && /models\/model\.json/.test(c.args));
    expect(modelCopy).toBeDefined();
    const dest = modelCopy?.args.split(/\s+/).pop() as string;
    expect(posix.resolve(workdirOf(final), dest)).toBe(posix.resolve(workdirOf(final), config.modelPath));
  });

  it('.dockerignore keeps dependencies, build output, git, tests, data and env files out, and lets every COPY source in', () => {
    const excluded = dockerignore(readFileSync(DOCKERIGNORE, 'utf8'));
    for (const p of [
      'node_modules/fastify/package.json',
      'dist/src/app.js',
      '.git/HEAD',
      'test/unit/x.test.ts',
      'data/system_metrics.csv',
      'docker/.env',
      '.env',
      'mlflow/mlflow.db',
      'coverage/index.html',
    ]) {
      expect({ p, excluded: excluded(p) }).toEqual({ p, excluded: true });
    }
    for (const s of stages) {
      for (const c of all(s, 'COPY').filter((i) => !i.flags.from)) {
        const sources = (c.exec ?? c.args.split(/\s+/)).slice(0, -1);
        for (const src of sources) {
          expect(existsSync(resolve(REPO, src))).toBe(true);
          expect({ src, excluded: excluded(src) }).toEqual({ src, excluded: false });
        }
      }
    }
  });
});

describe('.dockerignore matching (as Docker does it)', () => {
  it('lets the last matching pattern decide, matches parent directories, and re-includes with !', () => {
    const ex = dockerignore('*\n!src\n!models/model.json\nsrc/**/*.test.ts\n');
    expect(ex('src/app.ts')).toBe(false);
    expect(ex('src/core/x.test.ts')).toBe(true);
    expect(ex('models/model.json')).toBe(false);
    expect(ex('models/other.json')).toBe(true);
    expect(ex('package.json')).toBe(true);
    const ex2 = dockerignore('node_modules\n**/*.log\n');
    expect(ex2('node_modules/a/b.js')).toBe(true);
    expect(ex2('deep/dir/x.log')).toBe(true);
    expect(ex2('x.log')).toBe(true);
    expect(ex2('src/node_modules.ts')).toBe(false);
  });
});
