/**
 * A small Dockerfile reader for the deploy checks: instructions with their flags, exec
 * (JSON) or shell form, grouped into build stages. It understands what this project's
 * Dockerfile uses and throws on anything else, so a Dockerfile change that the checks
 * cannot follow fails loudly instead of being skipped.
 */

export interface Instruction {
  /** Upper-case keyword: FROM, RUN, COPY, ... */
  keyword: string;
  /** Everything after the keyword and its --flags, continuation lines joined. */
  args: string;
  /** --name=value flags before the arguments. */
  flags: Record<string, string>;
  /** The argument vector when the arguments are a JSON array (exec form). */
  exec?: string[];
  /** 1-based line of the keyword. */
  line: number;
}

export interface Stage {
  index: number;
  name?: string;
  base: string;
  instructions: Instruction[];
}

export interface Healthcheck {
  flags: Record<string, string>;
  /** Exec form argv, or ['/bin/sh', '-c', cmd] for the shell form. */
  argv: string[];
  execForm: boolean;
}

const KNOWN = new Set([
  'FROM',
  'WORKDIR',
  'COPY',
  'RUN',
  'ENV',
  'USER',
  'EXPOSE',
  'HEALTHCHECK',
  'CMD',
  'ENTRYPOINT',
  'LABEL',
  'ARG',
  'STOPSIGNAL',
]);

function parseJsonArray(s: string): string[] | undefined {
  if (!s.trim().startsWith('[')) return undefined;
  try {
    const v = JSON.parse(s) as unknown;
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  } catch {
    // Docker treats an invalid JSON array as shell form.
  }
  return undefined;
}

/** Splits leading `--name=value` (or `--name`) flags off an argument string. */
function takeFlags(rest: string): { flags: Record<string, string>; args: string } {
  const flags: Record<string, string> = {};
  let s = rest.trimStart();
  for (;;) {
    const m = /^--([a-z-]+)(?:=(\S*))?\s+/.exec(s);
    if (!m) break;
    flags[m[1]] = m[2] ?? 'true';
    s = s.slice(m[0].length);
  }
  return { flags, args: s.trim() };
}

/** Parses a Dockerfile into instructions (comments dropped, continuations joined). */
export function parseDockerfile(text: string): Instruction[] {
  const lines = text.split(/\r?\n/);
  const out: Instruction[] = [];
  let buf = '';
  let start = 0;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i];
    const trimmed = raw.trim();
    // Comments (and parser directives) are whole lines starting with #, also inside continuations.
    if (trimmed.startsWith('#') || (trimmed === '' && buf === '')) continue;
    if (buf === '') start = i + 1;
    if (/\\\s*$/.test(raw)) {
      buf += raw.replace(/\\\s*$/, '') + ' ';
      continue;
    }
    buf += raw;
    const m = /^\s*([A-Za-z]+)\s+([\s\S]*)$/.exec(buf);
    if (!m) throw new Error(`Dockerfile line ${start}: cannot parse ${JSON.stringify(buf.slice(0, 80))}`);
    const keyword = m[1].toUpperCase();
    if (!KNOWN.has(keyword)) throw new Error(`Dockerfile line ${start}: ${keyword} is not understood by the deploy checks`);
    const { flags, args } =
      keyword === 'RUN' || keyword === 'CMD' || keyword === 'ENTRYPOINT' ? { flags: {}, args: m[2].trim() } : takeFlags(m[2]);
    out.push({ keyword, args, flags, exec: parseJsonArray(args), line: start });
    buf = '';
  }
  if (buf !== '') throw new Error('Dockerfile ends inside a line continuation');
  return out;
}

/** Groups instructions into stages (FROM image [AS name]). */
export function stagesOf(instructions: Instruction[]): Stage[] {
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) throw new Error(`Dockerfile line ${ins.line}: FROM ${ins.args}`);
      stages.push({ index: stages.length, base: m[1], name: m[2], instructions: [] });
    } else if (ins.keyword === 'ARG' && stages.length === 0) {
      throw new Error(`Dockerfile line ${ins.line}: ARG before FROM is not understood by the deploy checks`);
    } else {
      if (stages.length === 0) throw new Error(`Dockerfile line ${ins.line}: ${ins.keyword} before FROM`);
      stages[stages.length - 1].instructions.push(ins);
    }
  }
  return stages;
}

/** `ENV A=1 B="two"` (and the legacy `ENV A 1`) as key/value pairs. */
export function parseEnv(args: string): Record<string, string> {
  const out: Record<string, string> = {};
  const legacy = /^([A-Za-z_][A-Za-z0-9_]*)\s+([^=\s].*)$/.exec(args);
  if (legacy && !args.includes('=')) {
    out[legacy[1]] = legacy[2];
    return out;
  }
  const re = /([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|'[^']*'|\S*)/g;
  let m: RegExpExecArray | null;
  let consumed = '';
  while ((m = re.exec(args))) {
    let v = m[2];
    if (v.startsWith('"')) v = v.slice(1, -1).replace(/\\(.)/g, '$1');
    else if (v.startsWith("'")) v = v.slice(1, -1);
    out[m[1]] = v;
    consumed += m[0];
  }
  if (consumed.replace(/\s/g, '').length !== args.replace(/\s/g, '').length) throw new Error(`ENV ${args}: not understood`);
  return out;
}

/** The HEALTHCHECK of a stage (flags and command), or undefined. */
export function healthcheckOf(stage: Stage): Healthcheck | undefined {
  const ins = [...stage.instructions].reverse().find((i) => i.keyword === 'HEALTHCHECK');
  if (!ins) return undefined;
  const m = /^CMD\s+([\s\S]+)$/.exec(ins.args);
  if (!m) throw new Error(`Dockerfile line ${ins.line}: HEALTHCHECK ${ins.args.slice(0, 40)}`);
  const exec = parseJsonArray(m[1]);
  return { flags: ins.flags, argv: exec ?? ['/bin/sh', '-c', m[1]], execForm: exec !== undefined };
}

/** Docker duration (`15s`, `1m30s`) in milliseconds. */
export function durationMs(s: string): number {
  let total = 0;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let m: RegExpExecArray | null;
  let seen = '';
  while ((m = re.exec(s))) {
    total += Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
    seen += m[0];
  }
  if (seen !== s) throw new Error(`not a duration: ${s}`);
  return total;
}

/** True for RUN commands that install OS packages (not reproducible outside the image). */
export function isOsPackageInstall(cmd: string): boolean {
  return /^\s*(apt-get|apt|apk|yum|dnf|microdnf|zypper)\b/.test(cmd);
}
