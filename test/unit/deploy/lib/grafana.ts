/**
 * Reads the Grafana provisioning (datasources, dashboard provider, dashboard JSON, alert
 * rules) and turns dashboard queries into what Grafana would send: InfluxQL with
 * $timeFilter, $__interval, $interval and template variables substituted the way
 * Grafana's InfluxDB datasource does it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseYamlStrict } from './compose';

export const GRAFANA_DIR = resolve(__dirname, '..', '..', '..', '..', 'grafana');
export const DASHBOARDS_DIR = join(GRAFANA_DIR, 'dashboards');
export const PROVISIONING_DIR = join(GRAFANA_DIR, 'provisioning');

export interface Datasource {
  name: string;
  uid: string;
  type: string;
  url: string;
  jsonData?: Record<string, unknown>;
}

export interface DatasourceRef {
  type?: string;
  uid?: string;
}

/** One query found in a dashboard. */
export interface DashboardQuery {
  /** Where it is, for messages: `panel 3 "CPU usage" target A`. */
  where: string;
  kind: 'panel' | 'annotation' | 'variable';
  datasource: DatasourceRef | string | undefined;
  /** InfluxQL (raw query) */
  query?: string;
  /** PromQL */
  expr?: string;
  resultFormat?: string;
}

export interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: DatasourceRef;
  targets?: Array<Record<string, unknown>>;
  panels?: Panel[];
  gridPos?: { h: number; w: number; x: number; y: number };
  [k: string]: unknown;
}

export interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating?: { list: Array<Record<string, unknown>> };
  annotations?: { list: Array<Record<string, unknown>> };
  [k: string]: unknown;
}

export function loadDatasources(): Datasource[] {
  const dir = join(PROVISIONING_DIR, 'datasources');
  const out: Datasource[] = [];
  for (const f of readdirSync(dir).filter((n) => /\.ya?ml$/.test(n))) {
    const doc = parseYamlStrict(readFileSync(join(dir, f), 'utf8'), f) as { apiVersion: number; datasources: Datasource[] };
    out.push(...doc.datasources);
  }
  return out;
}

export function loadDashboards(): Array<{ file: string; dashboard: Dashboard }> {
  return readdirSync(DASHBOARDS_DIR)
    .filter((n) => n.endsWith('.json'))
    .map((file) => ({ file, dashboard: JSON.parse(readFileSync(join(DASHBOARDS_DIR, file), 'utf8')) as Dashboard }));
}

/** Every panel, rows' nested panels included. */
export function allPanels(d: Dashboard): Panel[] {
  const out: Panel[] = [];
  const walk = (ps: Panel[]) => {
    for (const p of ps) {
      out.push(p);
      if (p.panels) walk(p.panels);
    }
  };
  walk(d.panels);
  return out;
}

/** Every query of a dashboard: panel targets, annotations and template variables. */
export function dashboardQueries(d: Dashboard): DashboardQuery[] {
  const out: DashboardQuery[] = [];
  for (const p of allPanels(d)) {
    for (const t of p.targets ?? []) {
      const ds = (t.datasource as DatasourceRef | undefined) ?? p.datasource;
      out.push({
        where: `panel ${p.id} "${p.title}" target ${String(t.refId)}`,
        kind: 'panel',
        datasource: ds,
        query: typeof t.query === 'string' ? t.query : undefined,
        expr: typeof t.expr === 'string' ? t.expr : undefined,
        resultFormat: t.resultFormat as string | undefined,
      });
    }
  }
  for (const a of d.annotations?.list ?? []) {
    if (a.builtIn) continue;
    const target = a.target as Record<string, unknown> | undefined;
    const texts = new Set([a.query, target?.query, a.expr, target?.expr].filter((q): q is string => typeof q === 'string'));
    for (const q of texts) {
      const isProm = q === a.expr || q === target?.expr;
      out.push({
        where: `annotation "${String(a.name)}"`,
        kind: 'annotation',
        datasource: a.datasource as DatasourceRef,
        query: isProm ? undefined : q,
        expr: isProm ? q : undefined,
      });
    }
  }
  for (const v of d.templating?.list ?? []) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : (v.query as { query?: string } | undefined)?.query;
    out.push({ where: `variable $${String(v.name)}`, kind: 'variable', datasource: v.datasource as DatasourceRef, query: q });
  }
  return out;
}

/** Resolves a datasource reference (uid object or legacy name) against the provisioning. */
export function resolveDatasource(ref: DatasourceRef | string | undefined, sources: Datasource[]): Datasource | undefined {
  if (ref === undefined) return sources.find((s) => (s as { isDefault?: boolean }).isDefault);
  if (typeof ref === 'string') return sources.find((s) => s.name === ref || s.uid === ref);
  return sources.find((s) => s.uid === ref.uid);
}

/** Grafana's regex escaping of variable values in InfluxQL regex context. */
export const escapeRegex = (v: string): string => v.replace(/[\\^$*+?.()|[\]{}/]/g, '\\$&');

export interface InfluxInterpolation {
  /** Dashboard time range, epoch ms. */
  from: number;
  to: number;
  /** $__interval and $interval, e.g. `10s`. */
  interval: string;
  /** Template variable values: `all` selects the variable's All (its allValue). */
  variables: Record<string, string[] | 'all'>;
}

/**
 * InfluxQL as Grafana's InfluxDB datasource sends it. Multi-value or include-all
 * variables are regex-escaped and joined as `(a|b)`; All uses the variable's allValue.
 * Throws when a `$name` is left that nothing substitutes (a typo in the dashboard).
 */
export function interpolateInfluxQL(query: string, dash: Dashboard | undefined, ctx: InfluxInterpolation): string {
  const vars = new Map((dash?.templating?.list ?? []).map((v) => [String(v.name), v]));
  const builtins: Record<string, string> = {
    timeFilter: `time >= ${ctx.from}ms and time <= ${ctx.to}ms`,
    __interval: ctx.interval,
    interval: ctx.interval,
    __interval_ms: String(intervalMs(ctx.interval)),
  };
  const value = (name: string): string => {
    if (name in builtins) return builtins[name];
    const v = vars.get(name);
    const given = ctx.variables[name];
    if (!v || given === undefined)
      throw new Error(`query uses $${name}, which is neither a Grafana built-in nor a dashboard variable with a value`);
    if (given === 'all') {
      if (typeof v.allValue === 'string' && v.allValue !== '') return v.allValue;
      throw new Error(`variable $${name} has no allValue; give the test its values`);
    }
    if (!v.multi && !v.includeAll) return given[0];
    const escaped = given.map(escapeRegex);
    return escaped.length === 1 ? escaped[0] : `(${escaped.join('|')})`;
  };
  const out = query.replace(/\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)/g, (all, a?: string, b?: string, c?: string) =>
    value((a ?? b ?? c) as string),
  );
  return out;
}

/** `10s`, `1m`, `500ms` in milliseconds. */
export function intervalMs(s: string): number {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(s);
  if (!m) throw new Error(`interval ${s}`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
}

export interface AlertQuery {
  refId: string;
  datasourceUid: string;
  relativeTimeRange?: { from: number; to: number };
  model: Record<string, unknown>;
}

export interface AlertRule {
  uid: string;
  title: string;
  condition: string;
  data: AlertQuery[];
  for?: string;
  noDataState?: string;
  execErrState?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface AlertGroup {
  orgId: number;
  name: string;
  folder: string;
  interval: string;
  rules: AlertRule[];
}

export function loadAlertGroups(): AlertGroup[] {
  const dir = join(PROVISIONING_DIR, 'alerting');
  const out: AlertGroup[] = [];
  for (const f of readdirSync(dir).filter((n) => /\.ya?ml$/.test(n))) {
    const doc = parseYamlStrict(readFileSync(join(dir, f), 'utf8'), f) as { apiVersion: number; groups?: AlertGroup[] };
    if (doc.apiVersion !== 1) throw new Error(`${f}: apiVersion ${doc.apiVersion}`);
    out.push(...(doc.groups ?? []));
  }
  return out;
}

/** A series as Grafana's server-side expressions see it: labels and numeric values. */
export interface Series {
  labels: Record<string, string>;
  values: Array<number | null>;
}

/**
 * Evaluates a rule's server-side expressions (reduce, threshold) over the series its
 * query returned, as Grafana does: the labels of the series whose condition is true.
 * Unknown expression types or reducers throw, so a rule change the check cannot follow fails.
 */
export function evaluateRule(rule: AlertRule, results: Record<string, Series[]>): Array<Record<string, string>> {
  const values: Record<string, Series[]> = { ...results };
  for (const q of rule.data) {
    if (q.datasourceUid !== '__expr__') continue;
    const m = q.model as {
      type: string;
      expression: string;
      reducer?: string;
      conditions?: Array<{ evaluator: { type: string; params: number[] } }>;
    };
    const input = values[m.expression];
    if (!input) throw new Error(`rule ${rule.uid}: ${q.refId} refers to ${m.expression}, which comes later or does not exist`);
    if (m.type === 'reduce') {
      values[q.refId] = input.map((s) => {
        const xs = s.values.filter((v): v is number => v !== null && Number.isFinite(v));
        const r = m.reducer;
        let v: number | null;
        if (xs.length === 0) v = null;
        else if (r === 'max') v = Math.max(...xs);
        else if (r === 'min') v = Math.min(...xs);
        else if (r === 'last') v = xs[xs.length - 1];
        else if (r === 'mean') v = xs.reduce((a, b) => a + b, 0) / xs.length;
        else if (r === 'sum') v = xs.reduce((a, b) => a + b, 0);
        else if (r === 'count') v = xs.length;
        else throw new Error(`rule ${rule.uid}: reducer ${r} is not understood by the check`);
        return { labels: s.labels, values: [v] };
      });
    } else if (m.type === 'threshold') {
      const ev = m.conditions?.[0]?.evaluator;
      if (!ev || (m.conditions?.length ?? 0) !== 1) throw new Error(`rule ${rule.uid}: threshold ${q.refId} needs one condition`);
      const test = (x: number): boolean => {
        const [a, b] = ev.params;
        switch (ev.type) {
          case 'gt':
            return x > a;
          case 'lt':
            return x < a;
          case 'within_range':
            return x > a && x < b;
          case 'outside_range':
            return x < a || x > b;
          default:
            throw new Error(`rule ${rule.uid}: evaluator ${ev.type} is not understood by the check`);
        }
      };
      values[q.refId] = input.map((s) => ({ labels: s.labels, values: s.values.map((v) => (v === null ? null : test(v) ? 1 : 0)) }));
    } else throw new Error(`rule ${rule.uid}: expression type ${m.type} is not understood by the check`);
  }
  const cond = values[rule.condition];
  if (!cond) throw new Error(`rule ${rule.uid}: condition ${rule.condition} is not a refId of the rule`);
  return cond.filter((s) => s.values.some((v) => v === 1)).map((s) => s.labels);
}
