/**
 * Runs a Dockerfile's build outside Docker, for a machine without a Docker engine:
 * each stage gets its own directory standing in for its root filesystem; COPY copies
 * from the build context (or from an earlier stage's directory), WORKDIR and ENV are
 * followed, RUN commands run with /bin/sh in the stage's working directory (OS package
 * installs are skipped and reported). What comes out is the final stage's directory,
 * environment, CMD and HEALTHCHECK, ready to be started like the container would be.
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join, posix, relative, resolve, sep } from 'node:path';
import { healthcheckOf, isOsPackageInstall, parseDockerfile, parseEnv, stagesOf, type Healthcheck, type Instruction } from './dockerfile';

/** The final stage, as a directory plus what `docker run` would use. */
export interface EmulatedImage {
  /** Directory standing in for the image's root filesystem. */
  root: string;
  /** WORKDIR inside the image, e.g. /app. */
  workdir: string;
  env: Record<string, string>;
  cmd: string[] | undefined;
  user: string | undefined;
  exposed: string[];
  healthcheck: Healthcheck | undefined;
}

export interface BuildReport {
  image: EmulatedImage;
  /** RUN commands that ran, in order. */
  ran: string[];
  /** RUN commands skipped as OS package installs. */
  skipped: string[];
}

interface StageState {
  name?: string;
  root: string;
  workdir: string;
  env: Record<string, string>;
  cmd?: string[];
  user?: string;
  exposed: string[];
}

/** `/app/x` inside a stage -> its path on this machine; refuses paths that escape the root. */
export function hostPath(root: string, containerPath: string): string {
  const p = resolve(root, '.' + posix.resolve('/', containerPath));
  if (p !== root && !p.startsWith(root + sep)) throw new Error(`${containerPath} escapes the stage root`);
  return p;
}

function run(argv: string[], cwd: string, env: Record<string, string>, timeoutMs: number): Promise<void> {
  return new Promise((ok, fail) => {
    const child = spawn(argv[0], argv.slice(1), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out = (out + d).slice(-8000)));
    child.stderr.on('data', (d) => (out = (out + d).slice(-8000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      fail(e);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) ok();
      else fail(new Error(`${argv.join(' ')} exited with ${signal ?? code} in ${cwd}:\n${out}`));
    });
  });
}

function copy(ins: Instruction, st: StageState, context: string, stages: Map<string, StageState>): void {
  const parts = ins.exec ?? ins.args.split(/\s+/);
  if (parts.length < 2) throw new Error(`line ${ins.line}: COPY needs a source and a destination`);
  const unsupported = Object.keys(ins.flags).filter((f) => f !== 'from' && f !== 'chown' && f !== 'chmod' && f !== 'link');
  if (unsupported.length > 0) throw new Error(`line ${ins.line}: COPY --${unsupported[0]} is not understood by the deploy checks`);
  const sources = parts.slice(0, -1);
  const destArg = parts[parts.length - 1];
  let srcRoot = context;
  if (ins.flags.from !== undefined) {
    const from = stages.get(ins.flags.from);
    if (!from) throw new Error(`line ${ins.line}: COPY --from=${ins.flags.from}: no such stage before this one`);
    srcRoot = from.root;
  }
  const dest = hostPath(st.root, posix.resolve(st.workdir, destArg));
  const destIsDir = destArg.endsWith('/') || sources.length > 1 || (existsSync(dest) && statSync(dest).isDirectory());
  for (const s of sources) {
    if (/[*?[]/.test(s)) throw new Error(`line ${ins.line}: COPY wildcards are not understood by the deploy checks`);
    const src = hostPath(srcRoot, s);
    if (!existsSync(src))
      throw new Error(
        `line ${ins.line}: COPY source ${s} does not exist${ins.flags.from ? ` in stage ${ins.flags.from}` : ' in the build context (.dockerignore?)'}`,
      );
    if (lstatSync(src).isDirectory()) {
      // Docker copies a directory's contents, not the directory itself.
      mkdirSync(dest, { recursive: true });
      cpSync(src, dest, { recursive: true, verbatimSymlinks: true, force: true });
    } else {
      const target = destIsDir ? join(dest, basename(src)) : dest;
      mkdirSync(dirname(target), { recursive: true });
      cpSync(src, target, { verbatimSymlinks: true, force: true });
    }
  }
}

/**
 * Builds `dockerfileText` with `context` as the build context, in directories under
 * `workRoot`. `runEnv` adds variables to every RUN (PATH and HOME come from this process,
 * so npm uses this machine's cache).
 */
export async function emulateBuild(opts: {
  dockerfileText: string;
  context: string;
  workRoot: string;
  runEnv?: Record<string, string>;
  runTimeoutMs?: number;
}): Promise<BuildReport> {
  const stages = stagesOf(parseDockerfile(opts.dockerfileText));
  const byName = new Map<string, StageState>();
  const ran: string[] = [];
  const skipped: string[] = [];
  let last: StageState | undefined;
  for (const stage of stages) {
    const root = resolve(opts.workRoot, `stage-${stage.index}${stage.name ? `-${stage.name}` : ''}`);
    mkdirSync(root, { recursive: true });
    const parent = byName.get(stage.base);
    const st: StageState = parent
      ? {
          name: stage.name,
          root,
          workdir: parent.workdir,
          env: { ...parent.env },
          cmd: parent.cmd,
          user: parent.user,
          exposed: [...parent.exposed],
        }
      : { name: stage.name, root, workdir: '/', env: {}, exposed: [] };
    if (parent) cpSync(parent.root, root, { recursive: true, verbatimSymlinks: true });
    for (const ins of stage.instructions) {
      switch (ins.keyword) {
        case 'WORKDIR':
          st.workdir = posix.resolve(st.workdir, ins.args);
          mkdirSync(hostPath(root, st.workdir), { recursive: true });
          break;
        case 'ENV':
          Object.assign(st.env, parseEnv(ins.args));
          break;
        case 'COPY':
          copy(ins, st, opts.context, byName);
          break;
        case 'RUN': {
          const cmd = ins.exec ? ins.exec.join(' ') : ins.args;
          if (isOsPackageInstall(cmd)) {
            skipped.push(cmd);
            break;
          }
          const cwd = hostPath(root, st.workdir);
          mkdirSync(cwd, { recursive: true });
          const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...st.env, ...(opts.runEnv ?? {}) };
          await run(ins.exec ?? ['/bin/sh', '-c', ins.args], cwd, env, opts.runTimeoutMs ?? 300_000);
          ran.push(cmd);
          break;
        }
        case 'CMD':
          st.cmd = ins.exec ?? ['/bin/sh', '-c', ins.args];
          break;
        case 'USER':
          st.user = ins.args;
          break;
        case 'EXPOSE':
          st.exposed.push(...ins.args.split(/\s+/));
          break;
        case 'ENTRYPOINT':
          throw new Error(`line ${ins.line}: ENTRYPOINT is not understood by the deploy checks (CMD alone starts the service)`);
        default:
          // LABEL, HEALTHCHECK (read below), STOPSIGNAL, ARG: nothing to do on disk.
          break;
      }
    }
    byName.set(String(stage.index), st);
    if (stage.name) byName.set(stage.name, st);
    last = st;
  }
  if (!last) throw new Error('Dockerfile has no stage');
  const final = stages[stages.length - 1];
  return {
    image: {
      root: last.root,
      workdir: last.workdir,
      env: last.env,
      cmd: last.cmd,
      user: last.user,
      exposed: last.exposed,
      healthcheck: healthcheckOf(final),
    },
    ran,
    skipped,
  };
}

/** Every file below `dir`, as paths relative to it with forward slashes. */
export function listFiles(dir: string, skipDirs: ReadonlySet<string> = new Set()): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      const rel = relative(dir, p).split(sep).join('/');
      if (e.isDirectory()) {
        if (!skipDirs.has(rel)) walk(p);
      } else out.push(rel);
    }
  };
  walk(dir);
  return out.sort();
}
