/**
 * The TOML subset Telegraf configurations use here: [table] and [[array.of.tables]]
 * headers, `key = value` with strings, string arrays, numbers and booleans, comments.
 * Anything else throws. `${VAR}` in strings is replaced from `env`, as Telegraf does.
 */
export interface TomlTable {
  /** `agent`, `inputs.cpu`, ... */
  name: string;
  array: boolean;
  values: Record<string, string | number | boolean | string[]>;
}

export function parseTelegrafToml(text: string, env: Record<string, string> = {}): TomlTable[] {
  const tables: TomlTable[] = [];
  let current: TomlTable | undefined;
  const subst = (s: string) =>
    s.replace(/\$\{(\w+)\}/g, (_a, n: string) => {
      if (env[n] === undefined) throw new Error(`telegraf.conf uses \${${n}}, which the container's environment does not set`);
      return env[n];
    });
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/^\s*#.*$/, '').trim();
    if (line === '') return;
    const header = /^(\[\[?)\s*([A-Za-z0-9_.-]+)\s*(\]\]?)$/.exec(line);
    if (header) {
      current = { name: header[2], array: header[1] === '[[', values: {} };
      tables.push(current);
      return;
    }
    const kv = /^([A-Za-z0-9_-]+)\s*=\s*(.+?)\s*(#.*)?$/.exec(line);
    if (!kv || !current) throw new Error(`telegraf.conf line ${i + 1} not understood: ${raw}`);
    const v = kv[2];
    let value: string | number | boolean | string[];
    if (/^"(?:[^"\\]|\\.)*"$/.test(v)) value = subst(JSON.parse(v) as string);
    else if (/^\[.*\]$/.test(v)) value = (JSON.parse(v) as string[]).map((x) => subst(String(x)));
    else if (v === 'true' || v === 'false') value = v === 'true';
    else if (/^-?\d+(\.\d+)?$/.test(v)) value = Number(v);
    else throw new Error(`telegraf.conf line ${i + 1}: value ${v} not understood`);
    if (kv[1] in current.values) throw new Error(`telegraf.conf line ${i + 1}: ${kv[1]} set twice`);
    current.values[kv[1]] = value;
  });
  return tables;
}
