/**
 * .dockerignore matching as Docker's build context does it: patterns in order, the last
 * one that matches a path or one of its parent directories decides, `!` re-includes;
 * `*` and `?` stay within a path segment, `**` crosses segments.
 */
import { cpSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { listFiles } from './docker-build';

interface Rule {
  re: RegExp;
  include: boolean;
}

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') {
      if (glob[i + 1] === '*') {
        // `**/` matches zero or more directories; a trailing `**` everything.
        if (glob[i + 2] === '/') {
          re += '(?:.*/)?';
          i += 2;
        } else {
          re += '.*';
          i += 1;
        }
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = glob.indexOf(']', i);
      if (end < 0) throw new Error(`.dockerignore: unclosed [ in ${glob}`);
      re += glob.slice(i, end + 1).replace('[!', '[^');
      i = end;
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Returns a predicate: true when the context path (relative, forward slashes) is excluded. */
export function dockerignore(text: string): (path: string) => boolean {
  const rules: Rule[] = [];
  for (const raw of text.split(/\r?\n/)) {
    let line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const include = line.startsWith('!');
    if (include) line = line.slice(1).trim();
    line = line.replace(/^\/+/, '').replace(/\/+$/, '').replace(/^\.\//, '');
    if (line === '') continue;
    rules.push({ re: globToRegExp(line), include });
  }
  return (path: string) => {
    const parts = path.split('/');
    const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
    let excluded = false;
    for (const r of rules) if (candidates.some((c) => r.re.test(c))) excluded = !r.include;
    return excluded;
  };
}

/**
 * Copies the files of `repo` that a build with this .dockerignore would send into
 * `dest`; returns their paths. `skipDirs` (node_modules, .git, dist) are not walked, and
 * must be excluded by the .dockerignore.
 */
export function copyBuildContext(repo: string, ignoreText: string, dest: string, skipDirs: string[]): string[] {
  const excluded = dockerignore(ignoreText);
  for (const d of skipDirs) if (!excluded(`${d}/x`)) throw new Error(`.dockerignore lets ${d}/ into the build context`);
  const files = listFiles(repo, new Set(skipDirs)).filter((f) => !excluded(f));
  for (const f of files) {
    mkdirSync(dirname(join(dest, f)), { recursive: true });
    cpSync(join(repo, f), join(dest, f));
  }
  return files;
}
