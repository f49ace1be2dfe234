/**
 * Just enough PromQL and Prometheus text exposition for the deploy checks: which metric
 * names and label names a query uses, and which families and labels a /metrics page has.
 */

const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
  'inf',
  'nan',
  'atan2',
]);

export interface PromQLUse {
  metrics: string[];
  /** Label names in selectors and in by/without/on/ignoring clauses. */
  labels: string[];
}

/** Metric names and label names that a PromQL expression refers to. */
export function promqlUses(expr: string): PromQLUse {
  const labels = new Set<string>();
  // Drop string literals (label values) first.
  let s = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""');
  // Selectors: {name op "v", ...}
  s = s.replace(/\{([^}]*)\}/g, (_all, body: string) => {
    for (const m of body.matchAll(/([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)/g)) labels.add(m[1]);
    return ' ';
  });
  // Grouping clauses.
  s = s.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g, (_all, _kw: string, body: string) => {
    for (const l of body
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean))
      labels.add(l);
    return ' ';
  });
  // Range and subquery brackets, Grafana's $__rate_interval and friends.
  s = s.replace(/\[[^\]]*\]/g, ' ');
  const metrics = new Set<string>();
  for (const m of s.matchAll(/([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?/g)) {
    const name = m[1];
    if (m[2]) continue; // a function or aggregation
    if (KEYWORDS.has(name.toLowerCase())) continue;
    metrics.add(name);
  }
  return { metrics: [...metrics], labels: [...labels] };
}

export interface Exposition {
  /** Family name -> type (# TYPE lines). */
  types: Map<string, string>;
  /** Sample name (with _bucket/_count/_sum) -> label names seen on its samples. */
  samples: Map<string, Set<string>>;
}

/** Parses the Prometheus text format. */
export function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const samples = new Map<string, Set<string>>();
  for (const line of text.split('\n')) {
    const t = /^# TYPE (\S+) (\S+)/.exec(line);
    if (t) {
      types.set(t[1], t[2]);
      continue;
    }
    if (line.startsWith('#') || line.trim() === '') continue;
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(\{([^}]*)\})?\s+\S+/.exec(line);
    if (!m) throw new Error(`exposition line not understood: ${line}`);
    let set = samples.get(m[1]);
    if (!set) samples.set(m[1], (set = new Set()));
    for (const l of (m[3] ?? '').matchAll(/([A-Za-z_][A-Za-z0-9_]*)="/g)) set.add(l[1]);
  }
  return { types, samples };
}

/** Labels Prometheus adds to every scraped series. */
export const TARGET_LABELS = ['job', 'instance'];

/**
 * Problems with a PromQL expression against a service's exposition: unknown metric
 * names, labels the metric does not carry. `up` is Prometheus' own (job, instance).
 */
export function promqlProblems(expr: string, expo: Exposition): string[] {
  const { metrics, labels } = promqlUses(expr);
  const problems: string[] = [];
  if (metrics.length === 0) problems.push(`no metric in ${expr}`);
  for (const metric of metrics) {
    let have: Set<string> | undefined;
    if (metric === 'up') have = new Set();
    else {
      const family = metric.replace(/_(bucket|count|sum)$/, '');
      const type = expo.types.get(metric) ?? expo.types.get(family);
      if (!type) {
        problems.push(`${metric}: not exposed by the service`);
        continue;
      }
      if (metric !== family && type !== 'histogram' && type !== 'summary')
        problems.push(`${metric}: ${family} is a ${type}, not a histogram`);
      have = expo.samples.get(metric);
      if (!have && labels.some((l) => !TARGET_LABELS.includes(l))) {
        problems.push(`${metric}: no samples on /metrics to check its labels ${labels.join(', ')} against`);
        continue;
      }
    }
    for (const l of labels) if (!TARGET_LABELS.includes(l) && !have?.has(l)) problems.push(`${metric}: has no label ${l}`);
  }
  return problems;
}
