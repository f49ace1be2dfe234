import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { ROOT } from './fixtures';

export const CLI = resolve(ROOT, 'dist', 'src', 'cli', 'main.js');

/** Runs the built CLI (npm test builds first) and returns its exit code and output. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 60000) {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build (npm test does)`);
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    encoding: 'utf8',
    timeout: timeoutMs,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
