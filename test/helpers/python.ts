import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { ROOT } from './fixtures';

/**
 * The python with the pinned scikit-learn: $SKLEARN_PYTHON, or the cached environment
 * that scripts/python-env.sh creates (it is created here when missing). Failing to
 * provision it fails the test with one line; it never skips.
 */
export function sklearnPython(): string {
  if (process.env.SKLEARN_PYTHON) return process.env.SKLEARN_PYTHON;
  try {
    return execFileSync('bash', [resolve(ROOT, 'scripts', 'python-env.sh')], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 600000,
    })
      .trim()
      .split('\n')
      .pop() as string;
  } catch (e) {
    throw new Error(
      `scikit-learn is not available: run scripts/python-env.sh (needs python3 with venv and PyPI access): ${(e as Error).message.split('\n')[0]}`,
    );
  }
}
