/**
 * Parsing of InfluxDB line protocol, for sources that receive it as text (Telegraf's
 * Kafka output, data_format "influx"). The inverse of line-protocol.ts's formatting, with
 * InfluxDB's reading of escapes: in a measurement `\,` and `\ ` stand for the character;
 * in tag keys, tag values and field keys also `\=`; in a string field `\"` and `\\`. A
 * backslash before any other character is kept as it is.
 *
 * Never throws on input: a line it cannot read is returned as an error with a reason, so
 * that a caller counts it and goes on (a hostile or corrupt message never stops a stream).
 */

/** One parsed point. Numeric and boolean fields only (strings are of no use to scoring). */
export interface ParsedPoint {
  measurement: string;
  tags: Record<string, string>;
  /** Floats, integers (nearest number) and booleans (1 or 0). */
  fields: Record<string, number>;
  /** Integer fields beyond 2^53, exactly (counters of a long-running host). */
  exact?: Record<string, bigint>;
  /** Epoch milliseconds (the nanoseconds below a millisecond are dropped). */
  time: number;
}

export type LineError = 'syntax' | 'no_fields' | 'no_timestamp' | 'bad_timestamp' | 'bad_value';

/**
 * What a caller reads: measurement -> the fields it uses. Lines of other measurements come
 * back as `unused` (not parsed further), and other fields are not parsed (nor checked).
 */
export type Wanted = ReadonlyMap<string, ReadonlySet<string>>;

export type LineResult = { ok: true; point: ParsedPoint } | { ok: false; reason: LineError | 'unused' };

const SAFE = BigInt(Number.MAX_SAFE_INTEGER);
/** Timestamps from year 1677 to 2262 (int64 nanoseconds), as InfluxDB stores them. */
const MAX_NS = 9_223_372_036_854_775_807n;

/** Reads a name up to an unescaped stop character; `escapable` are the characters a backslash escapes. */
function readName(line: string, i: number, stops: string, escapable: string): { text: string; end: number } {
  let text = '';
  let start = i;
  while (i < line.length) {
    const c = line[i];
    if (c === '\\' && i + 1 < line.length && escapable.includes(line[i + 1])) {
      text += line.slice(start, i) + line[i + 1];
      i += 2;
      start = i;
      continue;
    }
    if (stops.includes(c)) break;
    i++;
  }
  return { text: text + line.slice(start, i), end: i };
}

/** A number of line protocol (float, `i` integer, `u` unsigned, boolean): value, exact bigint, or undefined if invalid. */
function readValue(raw: string): { value: number; exact?: bigint } | undefined {
  if (raw.length === 0) return undefined;
  const last = raw[raw.length - 1];
  if (last === 'i' || last === 'u') {
    const digits = raw.slice(0, -1);
    if (!(last === 'i' ? /^-?\d+$/ : /^\d+$/).test(digits)) return undefined;
    const big = BigInt(digits);
    const value = Number(big);
    return big > SAFE || big < -SAFE ? { value, exact: big } : { value };
  }
  switch (raw) {
    case 't':
    case 'T':
    case 'true':
    case 'True':
    case 'TRUE':
      return { value: 1 };
    case 'f':
    case 'F':
    case 'false':
    case 'False':
    case 'FALSE':
      return { value: 0 };
  }
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(raw)) return undefined;
  const value = Number(raw);
  return Number.isFinite(value) ? { value } : undefined;
}

/**
 * The common case (no backslash, no quote: Telegraf's cpu, mem and net lines), split with
 * native string functions; anything else, or anything odd, goes to the full parser.
 */
function parseSimple(line: string, wanted?: Wanted): LineResult | undefined {
  const sp1 = line.indexOf(' ');
  if (sp1 <= 0) return undefined;
  const comma = line.indexOf(',');
  const measurement = line.slice(0, comma > 0 && comma < sp1 ? comma : sp1);
  const want = wanted?.get(measurement);
  if (wanted && !want) return { ok: false, reason: 'unused' };
  const sp2 = line.indexOf(' ', sp1 + 1);
  if (sp2 < 0 || line.indexOf(' ', sp2 + 1) >= 0) return undefined;
  const head = line.slice(0, sp1).split(',');
  if (measurement === '') return undefined;
  const tags: Record<string, string> = {};
  for (let i = 1; i < head.length; i++) {
    const t = head[i];
    const eq = t.indexOf('=');
    if (eq <= 0 || eq === t.length - 1 || t.indexOf('=', eq + 1) >= 0) return undefined;
    tags[t.slice(0, eq)] = t.slice(eq + 1);
  }
  const fields: Record<string, number> = {};
  let exact: Record<string, bigint> | undefined;
  for (const f of line.slice(sp1 + 1, sp2).split(',')) {
    const eq = f.indexOf('=');
    if (eq <= 0) return undefined;
    const key = f.slice(0, eq);
    if (want && !want.has(key)) continue;
    const v = readValue(f.slice(eq + 1));
    if (v === undefined) return undefined;
    fields[key] = v.value;
    if (v.exact !== undefined) (exact ??= {})[key] = v.exact;
  }
  const ts = line.slice(sp2 + 1);
  // Milliseconds from nanoseconds: drop the last six digits (times after 1970, 13 to 19 digits).
  if (!/^\d{7,19}$/.test(ts)) return undefined;
  const time = Number(ts.slice(0, -6));
  if (!Number.isSafeInteger(time) || (ts.length === 19 && ts > '9223372036854775807')) return undefined;
  const point: ParsedPoint = { measurement, tags, fields, time };
  if (exact) point.exact = exact;
  return { ok: true, point };
}

/** Parses one line (without its newline). Comments and blank lines are not points: the caller skips them first. */
export function parseLine(line: string, wanted?: Wanted): LineResult {
  if (line.indexOf('\\') < 0 && line.indexOf('"') < 0) {
    const simple = parseSimple(line, wanted);
    if (simple) return simple;
  }
  // Measurement: up to an unescaped comma (tags follow) or space (fields follow).
  const m = readName(line, 0, ', ', ', ');
  if (m.text === '' || m.end >= line.length) return { ok: false, reason: 'syntax' };
  const want = wanted?.get(m.text);
  if (wanted && !want) return { ok: false, reason: 'unused' };
  const tags: Record<string, string> = {};
  let i = m.end;
  while (line[i] === ',') {
    const k = readName(line, i + 1, '=, ', ',= ');
    if (k.text === '' || line[k.end] !== '=') return { ok: false, reason: 'syntax' };
    const v = readName(line, k.end + 1, ', =', ',= ');
    if (v.text === '' || line[v.end] === '=') return { ok: false, reason: 'syntax' };
    tags[k.text] = v.text;
    i = v.end;
  }
  if (line[i] !== ' ') return { ok: false, reason: 'syntax' };
  while (line[i] === ' ') i++;
  const fields: Record<string, number> = {};
  let exact: Record<string, bigint> | undefined;
  let count = 0;
  for (;;) {
    const k = readName(line, i, '=, ', ',= ');
    if (k.text === '' || line[k.end] !== '=') return { ok: false, reason: count === 0 ? 'no_fields' : 'syntax' };
    i = k.end + 1;
    if (line[i] === '"') {
      // A string field: skipped (not a metric), but read to its closing quote.
      i++;
      while (i < line.length && line[i] !== '"') i += line[i] === '\\' && i + 1 < line.length ? 2 : 1;
      if (i >= line.length) return { ok: false, reason: 'syntax' };
      i++;
    } else {
      let j = i;
      while (j < line.length && line[j] !== ',' && line[j] !== ' ') j++;
      if (!want || want.has(k.text)) {
        const v = readValue(line.slice(i, j));
        if (v === undefined) return { ok: false, reason: 'bad_value' };
        fields[k.text] = v.value;
        if (v.exact !== undefined) (exact ??= {})[k.text] = v.exact;
      }
      i = j;
    }
    count++;
    if (line[i] === ',') {
      i++;
      continue;
    }
    break;
  }
  if (i >= line.length) return { ok: false, reason: 'no_timestamp' };
  if (line[i] !== ' ') return { ok: false, reason: 'syntax' };
  while (line[i] === ' ') i++;
  const ts = line.slice(i).trimEnd();
  if (ts === '') return { ok: false, reason: 'no_timestamp' };
  if (!/^-?\d{1,19}$/.test(ts)) return { ok: false, reason: 'bad_timestamp' };
  const ns = BigInt(ts);
  if (ns > MAX_NS || ns < -MAX_NS) return { ok: false, reason: 'bad_timestamp' };
  // Floor division (toward -Infinity) so that times before 1970 map to their millisecond.
  const q = ns / 1_000_000n;
  const time = Number(ns < 0n && q * 1_000_000n !== ns ? q - 1n : q);
  const point: ParsedPoint = { measurement: m.text, tags, fields, time };
  if (exact) point.exact = exact;
  return { ok: true, point };
}

/** The lines of a message (Telegraf may batch several metrics into one), without blanks and comments. */
export function splitLines(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    out.push(line);
  }
  return out;
}
