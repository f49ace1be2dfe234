import { LineProtocolError } from '../errors';

/**
 * InfluxDB line protocol: escaping and formatting of points.
 *
 * Escaping rules (https://docs.influxdata.com/influxdb/v1/write_protocols/line_protocol_reference/):
 * - measurement: comma and space are backslash-escaped;
 * - tag keys, tag values and field keys: comma, equals sign and space are escaped;
 * - string field values: double-quoted, with `"` and `\` escaped (newlines are allowed
 *   inside the quotes and are stored as they are).
 *
 * Names (measurement, tag keys and values, field keys) that line protocol cannot carry
 * exactly are REJECTED with a {@link LineProtocolError}, never silently rewritten:
 * - a newline or carriage return: it ends the line whatever precedes it (1.x stores
 *   `\` + newline as both characters, so there is no escape for it);
 * - a backslash at the end, or before `\`, `,`, `=` or space: the parsers disagree on
 *   it (InfluxDB 1.6 keeps `\\` as two backslashes, later versions read it as one, and
 *   `\` before an escaped separator breaks the line). A backslash before any other
 *   character (`C:\temp`) is written and read back as it is.
 * Rewriting would silently merge distinct hosts (`a\nb` and `a b`) into one series;
 * rejecting keeps every stored series name identical to the one read.
 *
 * A measurement starting with `#` is rejected too: the line would be read as a comment.
 *
 * Tags with an empty value are omitted (InfluxDB has no empty tag values: an absent tag
 * reads back as ""). Non-finite floats (NaN, ±Infinity) are rejected: InfluxDB cannot
 * store them.
 */

export { LineProtocolError };

/** An integer field value (line protocol `123i`); plain numbers are written as floats. */
export class IntegerValue {
  constructor(readonly value: bigint) {}
}

/**
 * Marks a field value as an integer (`42i`). Throws for non-integers and for numbers
 * beyond Number.MAX_SAFE_INTEGER (pass a bigint for those).
 */
export function int(value: number | bigint): IntegerValue {
  if (typeof value === 'bigint') return new IntegerValue(value);
  if (!Number.isSafeInteger(value)) throw new LineProtocolError(`integer field value must be a safe integer, got ${value}`);
  return new IntegerValue(BigInt(value));
}

/** number → float, `int(n)` or bigint → integer, boolean → bool, string → string. */
export type FieldValue = number | bigint | IntegerValue | boolean | string;

/** Timestamp precision of written lines. */
export type Precision = 'ms' | 'ns';

/** One point to write. */
export interface Point {
  measurement: string;
  tags?: Readonly<Record<string, string | undefined>>;
  /** At least one field; `undefined` entries are skipped. */
  fields: Readonly<Record<string, FieldValue | undefined>>;
  /** Epoch milliseconds (number or Date) or epoch nanoseconds (bigint). Omit for server time. */
  time?: number | Date | bigint;
}

const NEWLINE = /[\n\r]/;
// A backslash at the end, or followed by a character that is (or escapes to) a separator.
const AMBIGUOUS_BACKSLASH = /\\(?:$|[\\, =])/;

function checkName(kind: string, s: string): void {
  if (NEWLINE.test(s)) throw new LineProtocolError(`${kind} ${JSON.stringify(s)} contains a newline, which line protocol cannot carry`);
  if (AMBIGUOUS_BACKSLASH.test(s)) {
    throw new LineProtocolError(
      `${kind} ${JSON.stringify(s)} has a backslash at its end or before \\ , = or space, which line protocol cannot carry exactly`,
    );
  }
}

/** Escapes a measurement name (comma, space). Throws {@link LineProtocolError} for names it cannot carry. */
export function escapeMeasurement(name: string): string {
  if (name === '') throw new LineProtocolError('measurement name is empty');
  // A line that starts with # is a comment: InfluxDB would drop the point silently.
  if (name.startsWith('#'))
    throw new LineProtocolError(`measurement ${JSON.stringify(name)} starts with #, which makes the line a comment`);
  checkName('measurement', name);
  return name.replace(/[, ]/g, (c) => `\\${c}`);
}

/** Escapes a tag key, tag value or field key (comma, equals, space). Throws for what it cannot carry. */
export function escapeTag(s: string, kind = 'tag key or value'): string {
  if (s === '') throw new LineProtocolError(`${kind} is empty`);
  checkName(kind, s);
  return s.replace(/[,= ]/g, (c) => `\\${c}`);
}

/** Quotes a string field value: `"` and `\` are escaped; every string is representable. */
export function quoteFieldString(s: string): string {
  return `"${s.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

function formatFieldValue(key: string, v: FieldValue): string {
  switch (typeof v) {
    case 'number':
      if (!Number.isFinite(v)) throw new LineProtocolError(`field ${JSON.stringify(key)} is ${v}; InfluxDB stores only finite numbers`);
      // String(n) is the shortest exact form; `1e+21` and `-1.5e-7` are valid line protocol floats.
      return String(v);
    case 'bigint':
      return `${v}i`;
    case 'boolean':
      return v ? 'true' : 'false';
    case 'string':
      return quoteFieldString(v);
    default:
      if (v instanceof IntegerValue) return `${v.value}i`;
      throw new LineProtocolError(`field ${JSON.stringify(key)} has an unsupported value type`);
  }
}

/** Formats a timestamp for `precision`: numbers and Dates are epoch ms, bigints epoch ns. */
export function formatTimestamp(time: number | Date | bigint, precision: Precision): string {
  if (typeof time === 'bigint') return precision === 'ns' ? time.toString() : (time / 1_000_000n).toString();
  const ms = time instanceof Date ? time.getTime() : time;
  if (!Number.isSafeInteger(ms)) throw new LineProtocolError(`timestamp must be an integer number of milliseconds, got ${ms}`);
  return precision === 'ms' ? String(ms) : (BigInt(ms) * 1_000_000n).toString();
}

/**
 * Formats one point as one line of line protocol (no trailing newline). Tags are sorted
 * by key, as InfluxDB recommends. Throws {@link LineProtocolError} for points it cannot
 * write exactly.
 */
export function formatPoint(point: Point, precision: Precision = 'ms'): string {
  let line = escapeMeasurement(point.measurement);
  if (point.tags) {
    for (const key of Object.keys(point.tags).sort()) {
      const value = point.tags[key];
      if (value === undefined || value === '') continue;
      line += `,${escapeTag(key, 'tag key')}=${escapeTag(value, 'tag value')}`;
    }
  }
  const fields: string[] = [];
  for (const [key, value] of Object.entries(point.fields)) {
    if (value === undefined) continue;
    fields.push(`${escapeTag(key, 'field key')}=${formatFieldValue(key, value)}`);
  }
  if (fields.length === 0) throw new LineProtocolError(`point of ${JSON.stringify(point.measurement)} has no fields`);
  line += ` ${fields.join(',')}`;
  if (point.time !== undefined) line += ` ${formatTimestamp(point.time, precision)}`;
  return line;
}

/** Formats many points; one string per line. */
export function formatPoints(points: readonly Point[], precision: Precision = 'ms'): string[] {
  return points.map((p) => formatPoint(p, precision));
}
