/**
 * Reads docker/docker-compose.yml as `docker compose config` would, for the checks:
 * YAML, then variable interpolation of every string (`${VAR}`, `${VAR:-default}`,
 * `${VAR-default}`, `${VAR:?message}`, `$VAR`, `$$` for a literal `$`).
 */
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';

export interface ComposeHealthcheck {
  test: string[] | string;
  interval?: string;
  timeout?: string;
  retries?: number;
  start_period?: string;
  disable?: boolean;
}

export interface ComposeService {
  image?: string;
  build?: string | { context: string; dockerfile?: string };
  command?: string[] | string;
  entrypoint?: string[] | string;
  environment?: Record<string, string | number | boolean | null> | string[];
  ports?: Array<string | { target: number; published?: string | number; host_ip?: string }>;
  volumes?: Array<string | { type: string; source: string; target: string }>;
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: ComposeHealthcheck;
  network_mode?: string;
  profiles?: string[];
  [key: string]: unknown;
}

export interface ComposeFile {
  name?: string;
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

/** Interpolates one string. `used` collects the variable names referenced. */
export function interpolate(s: string, vars: Record<string, string | undefined>, used?: Set<string>): string {
  return s.replace(
    /\$(\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g,
    (all, dollar: string, name?: string, op?: string, arg?: string, bare?: string) => {
      if (dollar === '$') return '$';
      const v = name ?? bare;
      if (!v) return all;
      used?.add(v);
      const value = vars[v];
      const unsetOrEmpty = value === undefined || value === '';
      switch (op) {
        case undefined:
          return value ?? '';
        case ':-':
          return unsetOrEmpty ? interpolate(arg ?? '', vars, used) : (value as string);
        case '-':
          return value === undefined ? interpolate(arg ?? '', vars, used) : value;
        case ':?':
        case '?':
          if (op === ':?' ? unsetOrEmpty : value === undefined) throw new Error(`required variable ${v} is missing: ${arg}`);
          return value as string;
        case ':+':
          return unsetOrEmpty ? '' : interpolate(arg ?? '', vars, used);
        case '+':
          return value === undefined ? '' : interpolate(arg ?? '', vars, used);
        default:
          throw new Error(`unsupported interpolation ${all}`);
      }
    },
  );
}

/** Deep-interpolates every string value (not keys) of a parsed YAML tree. */
export function interpolateTree<T>(node: T, vars: Record<string, string | undefined>, used?: Set<string>): T {
  if (typeof node === 'string') return interpolate(node, vars, used) as T;
  if (Array.isArray(node)) return node.map((n) => interpolateTree(n, vars, used)) as T;
  if (node && typeof node === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) out[k] = interpolateTree(v, vars, used);
    return out as T;
  }
  return node;
}

/** Parses YAML strictly: any error or warning (duplicate keys, bad indentation) throws. */
export function parseYamlStrict(text: string, what: string): unknown {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  const problems = [...doc.errors, ...doc.warnings];
  if (problems.length > 0) throw new Error(`${what}: ${problems.map((e) => e.message).join('; ')}`);
  return doc.toJS();
}

/** Loads a compose file with `vars` as the environment (the defaults when empty). */
export function loadCompose(path: string, vars: Record<string, string | undefined> = {}): { compose: ComposeFile; used: Set<string> } {
  const used = new Set<string>();
  const raw = parseYamlStrict(readFileSync(path, 'utf8'), path);
  const compose = interpolateTree(raw, vars, used) as ComposeFile;
  return { compose, used };
}

/** A service's environment as a map (list form `A=b` too); values as strings. */
export function environmentOf(svc: ComposeService): Record<string, string> {
  const env = svc.environment;
  const out: Record<string, string> = {};
  if (!env) return out;
  if (Array.isArray(env)) {
    for (const e of env) {
      const i = e.indexOf('=');
      if (i < 0) throw new Error(`environment entry ${e} has no value (taken from the shell): give it one`);
      out[e.slice(0, i)] = e.slice(i + 1);
    }
    return out;
  }
  for (const [k, v] of Object.entries(env)) out[k] = v === null ? '' : String(v);
  return out;
}

/** `depends_on` as name -> condition. */
export function dependsOn(svc: ComposeService): Record<string, string | undefined> {
  const d = svc.depends_on;
  if (!d) return {};
  if (Array.isArray(d)) return Object.fromEntries(d.map((n) => [n, undefined]));
  return Object.fromEntries(Object.entries(d).map(([k, v]) => [k, v?.condition]));
}

export interface PortMapping {
  hostIp?: string;
  published?: number;
  target: number;
}

/** Short (`[ip:]host:container[/proto]`) and long port syntax. */
export function portsOf(svc: ComposeService): PortMapping[] {
  return (svc.ports ?? []).map((p) => {
    if (typeof p === 'object')
      return { hostIp: p.host_ip, published: p.published === undefined ? undefined : Number(p.published), target: Number(p.target) };
    const spec = String(p).replace(/\/(tcp|udp)$/, '');
    const parts = spec.split(':');
    if (parts.length === 1) return { target: Number(parts[0]) };
    if (parts.length === 2) return { published: Number(parts[0]), target: Number(parts[1]) };
    if (parts.length === 3) return { hostIp: parts[0], published: Number(parts[1]), target: Number(parts[2]) };
    throw new Error(`port ${p} not understood`);
  });
}

/** Bind mounts (`./a:/b[:ro]` or long syntax) as {source, target}; named volumes excluded. */
export function bindMountsOf(svc: ComposeService): Array<{ source: string; target: string }> {
  const out: Array<{ source: string; target: string }> = [];
  for (const v of svc.volumes ?? []) {
    if (typeof v === 'object') {
      if (v.type === 'bind') out.push({ source: v.source, target: v.target });
      continue;
    }
    const [source, target] = v.split(':');
    if (source.startsWith('.') || source.startsWith('/')) out.push({ source, target });
  }
  return out;
}

/** A command or healthcheck test as one argv (string forms split on whitespace). */
export function argvOf(v: string[] | string | undefined): string[] {
  if (v === undefined) return [];
  return Array.isArray(v) ? v.map(String) : v.split(/\s+/).filter(Boolean);
}
