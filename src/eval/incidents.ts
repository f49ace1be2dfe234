/**
 * Alerts judged the way an operator sees them, per host: incidents (runs of labelled rows
 * of a host) alerted or missed and how late, and alerts outside every incident (false
 * alerts) per host per day. `bench:learning` and `evaluate --learn` both use it.
 */

/** Row-aligned columns of a stream, in time order within each host. */
export interface AlertedRows {
  n: number;
  hosts: readonly string[];
  times: ArrayLike<number>;
  /** 0/1 per row. */
  labels: ArrayLike<number>;
  /** 1 where an alert was raised. */
  alerts: ArrayLike<number>;
}

/** One incident: a maximal run of a host's labelled rows. */
export interface Incident {
  host: string;
  /** Row (index into the given columns) of its first labelled row. */
  firstRow: number;
  start: number;
  end: number;
  /** Labelled rows in the run. */
  rows: number;
  /** Row of its first alert (null: missed). */
  alertRow: number | null;
  alertAt: number | null;
  /** The host's rows from the incident's first row to its first alert (0: alerted on the first row). */
  delaySteps: number | null;
}

export interface IncidentFigures {
  /** The grace after an incident's end used (ms). */
  graceMs: number;
  incidents: Incident[];
  /** Per host counted: alerts on unlabelled rows more than `graceMs` after the host's last incident ended. */
  falseAlerts: Map<string, number>;
  /**
   * Per host counted: the time its counted rows cover, in days: (last - first) times k / (k - 1)
   * for k rows, i.e. k steps for a regular series (0 for a single row).
   */
  days: Map<string, number>;
}

const DAY_MS = 86_400_000;

/** Ten minutes: an alert this soon after an incident's end still belongs to it. */
export const DEFAULT_GRACE_MS = 600_000;

/**
 * Incidents and false alerts over the rows `include` accepts (default: all). An incident
 * opens at a host's labelled row and closes at its next unlabelled row; an alert on an
 * unlabelled row within `graceMs` after the host's last incident ended is not counted as
 * false (the tail of the incident), any other is.
 */
export function incidentFigures(rows: AlertedRows, opts: { graceMs?: number; include?: (i: number) => boolean } = {}): IncidentFigures {
  const grace = opts.graceMs ?? DEFAULT_GRACE_MS;
  const incidents: Incident[] = [];
  const open = new Map<string, Incident>();
  const lastEnd = new Map<string, number>();
  const falseAlerts = new Map<string, number>();
  const span = new Map<string, { first: number; last: number; k: number }>();
  for (let i = 0; i < rows.n; i++) {
    if (opts.include && !opts.include(i)) continue;
    const host = rows.hosts[i];
    const t = rows.times[i];
    const s = span.get(host);
    if (s) {
      s.last = t;
      s.k++;
    } else span.set(host, { first: t, last: t, k: 1 });
    if (!falseAlerts.has(host)) falseAlerts.set(host, 0);
    let inc = open.get(host);
    if (rows.labels[i] === 1) {
      if (!inc) {
        inc = { host, firstRow: i, start: t, end: t, rows: 0, alertRow: null, alertAt: null, delaySteps: null };
        open.set(host, inc);
        incidents.push(inc);
      }
      inc.end = t;
      inc.rows++;
      if (rows.alerts[i] === 1 && inc.alertRow === null) {
        inc.alertRow = i;
        inc.alertAt = t;
        inc.delaySteps = inc.rows - 1;
      }
    } else {
      if (inc) {
        lastEnd.set(host, inc.end);
        open.delete(host);
      }
      if (rows.alerts[i] === 1 && !(t - (lastEnd.get(host) ?? -Infinity) <= grace)) falseAlerts.set(host, (falseAlerts.get(host) ?? 0) + 1);
    }
  }
  const days = new Map<string, number>();
  for (const [host, s] of span) days.set(host, s.k > 1 ? ((s.last - s.first) * s.k) / (s.k - 1) / DAY_MS : 0);
  return { graceMs: grace, incidents, falseAlerts, days };
}

/** What a report says about incidents and false alerts. */
export interface IncidentSummary {
  grace_ms: number;
  hosts: number;
  incidents: number;
  alerted: number;
  /** Median (the lower one of an even count) and largest delay of the alerted incidents, in the host's steps. */
  median_delay_steps: number | null;
  max_delay_steps: number | null;
  false_alerts: number;
  /** Over the hosts whose rows cover some time. */
  false_alerts_per_host_per_day: { mean: number | null; max: number | null };
}

/** Sorted delays (steps) of the alerted incidents. */
export function alertDelays(incidents: readonly Incident[]): number[] {
  return incidents
    .filter((x) => x.delaySteps !== null)
    .map((x) => x.delaySteps as number)
    .sort((a, b) => a - b);
}

/** False alerts per day of each host (hosts covering no time left out). */
export function falseAlertsPerDay(f: IncidentFigures): Map<string, number> {
  const out = new Map<string, number>();
  for (const [host, count] of f.falseAlerts) {
    const d = f.days.get(host) ?? 0;
    if (d > 0) out.set(host, count / d);
  }
  return out;
}

export function summarizeIncidents(f: IncidentFigures): IncidentSummary {
  const delays = alertDelays(f.incidents);
  const perDay = [...falseAlertsPerDay(f).values()];
  let falseAlerts = 0;
  for (const c of f.falseAlerts.values()) falseAlerts += c;
  return {
    grace_ms: f.graceMs,
    hosts: f.falseAlerts.size,
    incidents: f.incidents.length,
    alerted: delays.length,
    median_delay_steps: delays.length ? delays[Math.floor((delays.length - 1) / 2)] : null,
    max_delay_steps: delays.length ? delays[delays.length - 1] : null,
    false_alerts: falseAlerts,
    false_alerts_per_host_per_day: {
      mean: perDay.length ? perDay.reduce((a, b) => a + b, 0) / perDay.length : null,
      max: perDay.length ? Math.max(...perDay) : null,
    },
  };
}
