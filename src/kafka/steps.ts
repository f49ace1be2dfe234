import { DEFAULT_MAX_KEYS } from '../core/detector';
import { LineReader, ReadPoint, type ParsedPoint, type ReadSpec } from '../influx/line-parser';
import { hostLengthOk, metricRules, type MetricRules } from '../validation/point';
import { counterRate, mappingMetrics, stepOf, type Mapping, type MetricMapping, type Sample } from '../poller/telegraf';

/**
 * Joins a stream of points (Telegraf's metrics as they arrive from a Kafka partition)
 * into one row per host and collection step: the same join as the InfluxDB poller's
 * (src/poller/telegraf.ts: the mapping's measurements, fields, tag filters, sums over
 * interfaces, rates of counters), made one point at a time. Pure: no I/O, no clock;
 * its output depends only on the order of the points it is given, so replaying a
 * partition from an offset rebuilds exactly the state an uninterrupted consumer had.
 *
 * A host's step is closed, and its row emitted, when
 * - it holds every metric of the set and every series (interface) the host's previous step had
 *   (the usual case: at once, when the step's last point arrives), or
 * - a point of a later step of the host arrives (a series went away, or a metric is
 *   missing: then the step is counted `incomplete`).
 * A point of a step already closed, or of a step before the open one (delayed or
 * reordered), is `late`: counted, and not scored (a counter's sample still updates its
 * rate, so the next step's rate stays right). A series first seen in a late point of the
 * step just closed (a new interface whose point came after the others) is expected in the
 * next step, so it is part of the host's sum from then on.
 * A point before 2000 is not in Telegraf's nanoseconds (seconds or milliseconds read as
 * nanoseconds land in 1970): `not_nanoseconds`. A point beyond `latest` (the consumer's
 * clock plus MAX_FUTURE_SKEW_MS; unbounded unless set) is `too_far_ahead`: one point from
 * a far-future clock would otherwise open a step that every later point of its host is late for.
 *
 * Made for a stream of some 10^5 points a second: points come from a LineReader's slots
 * (`addRead`; `add` takes a ParsedPoint), a host's series are objects kept from step to
 * step (no map or set made per step), and rows go to a columnar StepRows.
 */

/** One closed step of one host, ready for the detector. */
export interface StepRow {
  host: string;
  time: number;
  /** One value per metric of the set, in its order. */
  values: number[];
}

/** Why a point or a step was left out. */
export type StepSkip = 'no_host' | 'late' | 'incomplete' | 'invalid' | 'evicted' | 'not_nanoseconds' | 'too_far_ahead';

/** Every reason at zero (a joiner's counters at its start). */
export function noStepSkips(): Record<StepSkip, number> {
  return { no_host: 0, late: 0, incomplete: 0, invalid: 0, evicted: 0, not_nanoseconds: 0, too_far_ahead: 0 };
}

/** Points before this are not nanoseconds since the epoch (Telegraf's line protocol): 2000-01-01. */
const EARLIEST_POINT_MS = Date.UTC(2000, 0, 1);

/** Why a point's time is refused (before 2000, or after `latest`), or null: the joins' one rule. */
export function timeRefusal(time: number, latest: number): 'not_nanoseconds' | 'too_far_ahead' | null {
  if (!(time >= EARLIEST_POINT_MS)) return 'not_nanoseconds';
  return time > latest ? 'too_far_ahead' : null;
}

/** Closed steps, columnar: keys, times and the values (n x metrics, row-major) the detector takes. */
export class StepRows {
  keys: string[] = [];
  times: number[] = [];
  raw: Float64Array;
  n = 0;

  constructor(readonly m: number) {
    this.raw = new Float64Array(Math.max(1, m) * 1024);
  }

  push(host: string, time: number, values: Float64Array, cols: Int32Array): void {
    const m = this.m;
    if ((this.n + 1) * m > this.raw.length) {
      const grown = new Float64Array(this.raw.length * 2);
      grown.set(this.raw);
      this.raw = grown;
    }
    const o = this.n * m;
    for (let k = 0; k < m; k++) this.raw[o + k] = values[cols[k]];
    this.keys.push(host);
    this.times.push(time);
    this.n++;
  }

  /** Forgets the rows (the arrays are reused). */
  clear(): void {
    this.n = 0;
    this.keys.length = 0;
    this.times.length = 0;
  }
}

/** A metric of the set as the join reads it from its measurement's ReadPoint slots. */
interface MetricPlan {
  /** The metric's slot in a host's per-step sums (metrics of one name share one). */
  id: number;
  mapping: MetricMapping;
  /** Field slots added up (the mapping's fields, in order). */
  fields: Int32Array;
  /** Tag filters: tag slot, wanted value(s). */
  where: { tag: number; want: string | readonly string[] }[];
  /** Tag slot of sumOver, -1 when none. */
  sumOver: number;
  exclude: readonly string[];
  rate: boolean;
  complement: boolean;
}

/** One series of a host (a metric and its sumOver tag value): its value in the open step and its counter. */
class Series {
  /** Generation of the open step that holds a value of this series (see HostJoin.openGen). */
  openGen = -1;
  value = 0;
  /** Generation of the emitted step that held this series (HostJoin.emitGen: expected in the next). */
  expGen = -1;
  /** The counter's last sample (rates), and the object the next one is read into. */
  sample: Sample | null = null;
  spare: Sample = { time: 0, value: 0, exact: undefined };

  constructor(readonly id: number) {}
}

class HostJoin {
  hasOpen = false;
  openTime = 0;
  /** Unique per open step (joiner-wide), so series and metric marks of earlier steps never match. */
  openGen = 0;
  /** The series of the open step, in the order first set (their values add up in this order). */
  readonly open: Series[] = [];
  openLen = 0;
  /** Of the open step's series: how many were expected; distinct metrics. */
  openExpected = 0;
  openDistinct = 0;
  /** Per metric slot: the open step's generation when it holds a value of the metric. */
  readonly metricGen: Float64Array;
  /** Start of the last step closed (emitted or skipped). */
  closed = -Infinity;
  /** Series of the last step emitted (those whose expGen is this); a step holding them all is complete. */
  emitGen = 0;
  expectedSize = 0;
  /** Per metric slot: its series by sumOver tag value ('' without sumOver). */
  readonly series: Map<string, Series>[];
  prev: HostJoin | null = null;
  next: HostJoin | null = null;

  constructor(
    readonly host: string,
    metrics: number,
  ) {
    this.metricGen = new Float64Array(metrics);
    this.series = Array.from({ length: metrics }, () => new Map<string, Series>());
  }
}

export class StepJoiner {
  /** At most `maxHosts` (the detector's own bound): a new host beyond it evicts the least recently seen. */
  private readonly hosts = new Map<string, HostJoin>();
  /** Least recently seen first. */
  private head: HostJoin | null = null;
  private tail: HostJoin | null = null;
  /** Points of measurements the mapping does not read (other Telegraf inputs): ignored, counted. */
  unused = 0;
  readonly skipped: Record<StepSkip, number> = noStepSkips();
  /** Points after this time (ms) are refused as `too_far_ahead` (set by the caller from its clock). */
  latest = Infinity;
  /** The metrics of a row, in its order, and their valid ranges. */
  readonly rules: MetricRules;
  /** What a LineReader reads for this join: every measurement of the mapping, its fields and the tags the join looks at. */
  readonly specs: ReadSpec[];
  /** Per spec (measurement): the metrics of the set read from it, in the set's order. */
  private readonly plans: MetricPlan[][];
  private readonly byName = new Map<string, number>();
  /** Row column k is metric slot cols[k]. */
  private readonly cols: Int32Array;
  private readonly slots: number;
  private readonly sums: Float64Array;
  private gen = 0;
  private readonly scratch: ReadPoint;
  private readonly scratchRows: StepRows;

  /** `rules`: the row's metrics (default: the mapping's, in its order); each must be in the mapping. */
  constructor(
    private readonly mapping: Mapping,
    private readonly intervalMs: number,
    rules?: MetricRules,
    private readonly maxHosts = DEFAULT_MAX_KEYS,
  ) {
    if (!Number.isInteger(maxHosts) || maxHosts < 1) throw new Error(`maxKeys must be a positive integer, got ${maxHosts}`);
    this.rules = rules ?? metricRules(mappingMetrics(mapping));
    const names = this.rules.names;
    for (const metric of names) if (!mapping[metric]) throw new RangeError(`the mapping does not provide metric ${metric}`);
    // Every measurement of the mapping is read (a bad value of any field it reads refuses the line).
    const specs = new Map<string, { fields: string[]; tags: string[] }>();
    const add = (list: string[], x: string) => {
      if (!list.includes(x)) list.push(x);
    };
    for (const m of Object.values(mapping)) {
      let s = specs.get(m.measurement);
      if (!s) specs.set(m.measurement, (s = { fields: [], tags: ['host'] }));
      for (const f of m.fields) add(s.fields, f);
      for (const k of Object.keys(m.where)) add(s.tags, k);
      if (m.sumOver) add(s.tags, m.sumOver);
    }
    this.specs = [...specs].map(([measurement, s]) => ({ measurement, ...s }));
    this.specs.forEach((s, i) => this.byName.set(s.measurement, i));
    const slotOf = (name: string) => names.indexOf(name);
    this.cols = Int32Array.from(names, slotOf);
    this.slots = names.length;
    this.sums = new Float64Array(this.slots);
    this.plans = this.specs.map(() => []);
    for (const metric of names) {
      const m = mapping[metric];
      const mi = this.byName.get(m.measurement) as number;
      const spec = this.specs[mi];
      this.plans[mi].push({
        id: slotOf(metric),
        mapping: m,
        fields: Int32Array.from(m.fields, (f) => spec.fields.indexOf(f)),
        where: Object.entries(m.where).map(([k, want]) => ({ tag: spec.tags.indexOf(k), want })),
        sumOver: m.sumOver ? spec.tags.indexOf(m.sumOver) : -1,
        exclude: m.exclude,
        rate: m.transform === 'rate',
        complement: m.transform === 'complement100',
      });
    }
    this.scratch = new ReadPoint(Math.max(...this.specs.map((s) => s.tags.length)), Math.max(...this.specs.map((s) => s.fields.length)));
    this.scratchRows = new StepRows(names.length);
  }

  /** A reader of the lines this join takes (its `point` goes to addRead). */
  reader(): LineReader {
    return new LineReader(this.specs);
  }

  /** Hosts being joined. */
  get size(): number {
    return this.hosts.size;
  }

  /** Adds one parsed point; rows of the steps it closes are pushed to `out`, in the order they close. */
  add(p: ParsedPoint, out: StepRow[]): void {
    const mi = this.byName.get(p.measurement);
    if (mi === undefined) {
      this.unused++;
      return;
    }
    const r = this.scratch;
    r.reset(mi);
    const spec = this.specs[mi];
    spec.tags.forEach((k, i) => {
      if (Object.hasOwn(p.tags, k)) r.tags[i] = p.tags[k];
    });
    spec.fields.forEach((f, i) => {
      const v = p.fields[f];
      if (!Object.hasOwn(p.fields, f) || typeof v !== 'number') return;
      r.values[i] = v;
      r.has[i] = 1;
      if (p.exact && Object.hasOwn(p.exact, f)) r.exact[i] = p.exact[f];
    });
    r.anyExact = p.exact !== undefined;
    r.time = p.time;
    const rows = this.scratchRows;
    rows.clear();
    this.addRead(r, rows);
    for (let k = 0; k < rows.n; k++)
      out.push({ host: rows.keys[k], time: rows.times[k], values: Array.from(rows.raw.subarray(k * rows.m, (k + 1) * rows.m)) });
  }

  /** Adds the point a LineReader of `specs` read; rows of the steps it closes go to `out`, in the order they close. */
  addRead(p: ReadPoint, out: StepRows): void {
    const metrics = this.plans[p.measurement];
    if (metrics.length === 0) {
      this.unused++;
      return;
    }
    const host = p.tags[0] ?? '';
    if (host === '') {
      this.skipped.no_host++;
      return;
    }
    const refused = timeRefusal(p.time, this.latest);
    if (refused) {
      this.skipped[refused]++;
      return;
    }
    const h = this.hostJoin(host);
    const step = stepOf(p.time, this.intervalMs);
    if (h.hasOpen && step > h.openTime) this.close(h, out);
    // Scores go in time order: a step before the open one is late, as one already closed.
    const late = step <= h.closed || (h.hasOpen && step < h.openTime);
    for (let q = 0; q < metrics.length; q++) {
      const m = metrics[q];
      if (!matches(m.where, p.tags)) continue;
      const part = m.sumOver >= 0 ? (p.tags[m.sumOver] ?? '') : '';
      if (m.sumOver >= 0 && m.exclude.includes(part)) continue;
      // The fields added up (none missing or not finite).
      let raw = 0;
      let ok = true;
      const fields = m.fields;
      for (let k = 0; k < fields.length; k++) {
        const f = fields[k];
        const v = p.values[f];
        if (p.has[f] !== 1 || !Number.isFinite(v)) {
          ok = false;
          break;
        }
        raw += v;
      }
      if (!ok) continue;
      let v: number | undefined;
      let s: Series | undefined;
      if (m.rate) {
        s = this.seriesOf(h, m.id, part);
        const prev = s.sample;
        // An older sample than the last one (a late point) leaves the counter as it is.
        if (prev && p.time <= prev.time) {
          if (late) this.skipped.late++;
          continue;
        }
        const cur = s.spare;
        cur.time = p.time;
        cur.value = raw;
        cur.exact = p.anyExact ? exactSum(p, fields) : undefined;
        s.spare = prev ?? { time: 0, value: 0, exact: undefined };
        s.sample = cur;
        v = prev ? counterRate(prev, cur) : undefined;
      } else v = m.complement ? 100 - raw : raw;
      if (v === undefined) {
        if (s && step === h.closed) this.expectNew(h, s);
        continue;
      }
      if (late) {
        this.skipped.late++;
        if (step === h.closed) this.expectNew(h, s ?? this.seriesOf(h, m.id, part));
        continue;
      }
      if (!h.hasOpen) {
        h.hasOpen = true;
        h.openTime = step;
        h.openGen = ++this.gen;
        h.openLen = 0;
        h.openExpected = 0;
        h.openDistinct = 0;
      }
      s ??= this.seriesOf(h, m.id, part);
      if (s.openGen !== h.openGen) {
        s.openGen = h.openGen;
        h.open[h.openLen++] = s;
        if (s.expGen === h.emitGen && h.emitGen !== 0) h.openExpected++;
        if (h.metricGen[m.id] !== h.openGen) {
          h.metricGen[m.id] = h.openGen;
          h.openDistinct++;
        }
      }
      s.value = v;
    }
    if (
      h.hasOpen &&
      h.expectedSize > 0 &&
      h.openLen >= h.expectedSize &&
      h.openExpected === h.expectedSize &&
      h.openDistinct === this.rules.names.length
    )
      this.close(h, out);
  }

  /**
   * A series with a point of the step just closed that the step did not hold (a new
   * interface, its point after the others): the next step waits for it too. Without this,
   * a series that always comes after the others would never be part of the host's sum.
   */
  private expectNew(h: HostJoin, s: Series): void {
    if (h.emitGen === 0 || s.expGen === h.emitGen) return;
    s.expGen = h.emitGen;
    h.expectedSize++;
    if (h.hasOpen && s.openGen === h.openGen) h.openExpected++;
  }

  /** Forgets a host (its partition was revoked, or it is evicted). */
  forget(host: string): void {
    const h = this.hosts.get(host);
    if (!h) return;
    this.hosts.delete(host);
    this.unlink(h);
  }

  /** The host's join, made if new; marks it most recently seen (a new host beyond maxHosts evicts the least recently seen). */
  private hostJoin(host: string): HostJoin {
    let h = this.hosts.get(host);
    if (h) {
      if (h !== this.tail) {
        this.unlink(h);
        this.append(h);
      }
      return h;
    }
    if (this.hosts.size >= this.maxHosts && this.head) {
      const oldest = this.head;
      this.hosts.delete(oldest.host);
      this.unlink(oldest);
      // A host evicted with a step open (more hosts than maxHosts in this partition): that step is lost, counted.
      if (oldest.hasOpen) this.skipped.evicted++;
    }
    h = new HostJoin(host, this.slots);
    this.hosts.set(host, h);
    this.append(h);
    return h;
  }

  private append(h: HostJoin): void {
    h.prev = this.tail;
    h.next = null;
    if (this.tail) this.tail.next = h;
    else this.head = h;
    this.tail = h;
  }

  private unlink(h: HostJoin): void {
    if (h.prev) h.prev.next = h.next;
    else this.head = h.next;
    if (h.next) h.next.prev = h.prev;
    else this.tail = h.prev;
    h.prev = h.next = null;
  }

  private seriesOf(h: HostJoin, id: number, part: string): Series {
    const map = h.series[id];
    let s = map.get(part);
    if (!s) map.set(part, (s = new Series(id)));
    return s;
  }

  /** Closes the host's open step: a row when it is complete and valid, else counted. */
  private close(h: HostJoin, out: StepRows): void {
    h.hasOpen = false;
    h.closed = h.openTime;
    // Several series of one host (interfaces) add up, in the order they were first set.
    const sums = this.sums;
    sums.fill(0);
    for (let k = 0; k < h.openLen; k++) sums[h.open[k].id] += h.open[k].value;
    const cols = this.cols;
    for (let k = 0; k < cols.length; k++) {
      if (h.metricGen[cols[k]] !== h.openGen) {
        this.skipped.incomplete++;
        return;
      }
    }
    const { lo, hi } = this.rules;
    let usable = hostLengthOk(h.host);
    for (let k = 0; k < cols.length && usable; k++) {
      const v = sums[cols[k]];
      usable = v >= lo[k] && v <= hi[k];
    }
    if (!usable) {
      this.skipped.invalid++;
      return;
    }
    // The series of this step are those the next one is expected to hold.
    h.emitGen = h.openGen;
    h.expectedSize = h.openLen;
    for (let k = 0; k < h.openLen; k++) h.open[k].expGen = h.emitGen;
    out.push(h.host, h.openTime, sums, cols);
  }
}

function matches(where: MetricPlan['where'], tags: readonly (string | undefined)[]): boolean {
  for (let k = 0; k < where.length; k++) {
    const got = where[k].tag >= 0 ? tags[where[k].tag] : undefined;
    if (got === undefined) return false;
    const want = where[k].want;
    if (typeof want === 'string' ? got !== want : !want.includes(got)) return false;
  }
  return true;
}

/**
 * The exact integer sum of the fields (telegraf.ts exactSum, over slots) when the point
 * carries an integer beyond 2^53 and every field is an integer; undefined otherwise.
 */
function exactSum(p: ReadPoint, fields: Int32Array): bigint | undefined {
  let s = 0n;
  for (let k = 0; k < fields.length; k++) {
    const f = fields[k];
    const e = p.exact[f];
    const v = p.values[f];
    if (e !== undefined) s += e;
    else if (p.has[f] === 1 && Number.isSafeInteger(v)) s += BigInt(v);
    else return undefined;
  }
  return s;
}
