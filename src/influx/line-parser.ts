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

/** Line protocol's booleans and their values (1: true, 0: false); both readers take them from here. */
const BOOLEANS: ReadonlyMap<string, number> = new Map([
  ...['t', 'T', 'true', 'True', 'TRUE'].map((b): [string, number] => [b, 1]),
  ...['f', 'F', 'false', 'False', 'FALSE'].map((b): [string, number] => [b, 0]),
]);

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
  const b = BOOLEANS.get(raw);
  if (b !== undefined) return { value: b };
  // Unambiguous (no two ways to split a run of digits): linear time on a hostile run of digits.
  if (!/^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$/.test(raw)) return undefined;
  const value = Number(raw);
  return Number.isFinite(value) ? { value } : undefined;
}

/** Parses one line (without its newline). Comments and blank lines are not points: the caller skips them first. */
export function parseLine(line: string, wanted?: Wanted): LineResult {
  if (line.indexOf('\\') < 0 && line.indexOf('"') < 0) return recordReader(wanted).parse(line);
  return parseEscaped(line, wanted);
}

/**
 * The full parser: any line, escapes and string fields included. parseLine and
 * LineReader take it for lines with a backslash or a quote; for the others they scan
 * with native string functions (the same reading, tested against this one).
 */
export function parseEscaped(line: string, wanted?: Wanted): LineResult {
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
    if (isPointLine(line, 0, line.length)) out.push(line);
  }
  return out;
}

/** True unless text[s, e) (a line without its newline) is blank or a comment, without making the line in the usual case. */
export function isPointLine(text: string, s: number, e: number): boolean {
  if (e <= s) return false;
  const c = text.charCodeAt(s);
  // The usual first character (a letter of the measurement): no trimming needed.
  if (c > 32 && c < 127 && c !== 35) return true;
  const line = text.slice(s, e);
  return line.trim() !== '' && !line.trimStart().startsWith('#');
}

// The plain-line scanner: lines without a backslash or a quote (Telegraf's usual inputs),
// read with char codes and native string functions instead of per-character name
// building and regular expressions. Its reading is parseEscaped's, tested against it.

const SPACE = 32;
const D0 = 48;
const D9 = 57;
const MINUS = 45;
const PLUS = 43;
const DOT = 46;
const MAX_NS_TEXT = '9223372036854775807';

/** Milliseconds of a nanosecond timestamp's text (already trimmed), or why it is refused. */
function timeOf(ts: string): number | LineError {
  if (ts === '') return 'no_timestamp';
  if (!/^-?\d{1,19}$/.test(ts)) return 'bad_timestamp';
  const ns = BigInt(ts);
  if (ns > MAX_NS || ns < -MAX_NS) return 'bad_timestamp';
  // Floor division (toward -Infinity) so that times before 1970 map to their millisecond.
  const q = ns / 1_000_000n;
  return Number(ns < 0n && q * 1_000_000n !== ns ? q - 1n : q);
}

const isDigit = (c: number): boolean => c >= D0 && c <= D9;

// Characters the scanner looks for, each with its own cursor.
const BACKSLASH_K = 0;
const QUOTE_K = 1;
const COMMA_K = 2;
const EQ_K = 3;
const SPACE_K = 4;
const CHARS = ['\\', '"', ',', '=', ' '];

/**
 * Reads plain lines (no backslash, no quote) of a text, each given as [s, e) so that a
 * message of several lines is not cut into strings; what it keeps (which tags and fields,
 * into what) is its subclass's. The separators are found with indexOf from a cursor per
 * character that only moves forward while the lines of one text are read in order, so a
 * text is searched once per character however many lines it holds.
 */
abstract class PlainScanner {
  /** Epoch milliseconds of the last line read. */
  time = 0;
  private value = 0;
  private exactValue: bigint | undefined = undefined;
  private text = '';
  /** Per character: the next position found (-1: none after `from`), searched from `from`. */
  private readonly found = new Int32Array(CHARS.length).fill(-2);
  private readonly from = new Int32Array(CHARS.length);

  /** The measurement is text[s, e): false if its lines are not read (unused). */
  protected abstract measurement(text: string, s: number, e: number): boolean;
  /** A tag, key text[ks, ke), value text[vs, ve). */
  protected abstract tag(text: string, ks: number, ke: number, vs: number, ve: number): void;
  /** The slot of field key text[ks, ke) if it is read, else -1 (its value is then not parsed). */
  protected abstract fieldSlot(text: string, ks: number, ke: number): number;
  /** A field read: its slot, value and exact integer (beyond 2^53), if any. */
  protected abstract field(slot: number, value: number, exact: bigint | undefined): void;

  /** The first position of CHARS[k] in text at or after `at`, before `e` (else e). */
  private next(k: number, at: number, e: number): number {
    let p = this.found[k];
    if (p === -1 ? at < this.from[k] : p < at || at < this.from[k]) {
      p = this.text.indexOf(CHARS[k], at);
      this.found[k] = p;
      this.from[k] = at;
    }
    return p < 0 || p >= e ? e : p;
  }

  /** True if text[s, e) has no backslash and no quote (then scanPlain reads it). */
  protected isPlain(text: string, s: number, e: number): boolean {
    if (text !== this.text) {
      this.text = text;
      this.found.fill(-2);
      this.from.fill(0);
    }
    return this.next(BACKSLASH_K, s, e) === e && this.next(QUOTE_K, s, e) === e;
  }

  /** Reads text[s, e), a plain line (isPlain just said so): null when read, else why not. */
  protected scanPlain(text: string, s: number, e: number): LineError | 'unused' | null {
    // The head (measurement and tags) ends at the first space, the fields at the next one.
    const sp = this.next(SPACE_K, s, e);
    let i = Math.min(this.next(COMMA_K, s, e), sp);
    if (i === s || i >= e) return 'syntax';
    if (!this.measurement(text, s, i)) return 'unused';
    while (i < sp) {
      // text[i] is a comma: a tag key up to '=' (no comma or space before it), a value up to
      // the next comma or the space (no '=' in it).
      const ks = i + 1;
      const eq = this.next(EQ_K, ks, e);
      const comma = this.next(COMMA_K, ks, sp);
      if (eq === ks || eq >= comma) return 'syntax';
      const ve = comma;
      if (ve === eq + 1 || this.next(EQ_K, eq + 1, ve) < ve) return 'syntax';
      this.tag(text, ks, eq, eq + 1, ve);
      i = ve;
    }
    if (sp >= e) return 'syntax';
    i = sp;
    while (i < e && text.charCodeAt(i) === SPACE) i++;
    const fe = this.next(SPACE_K, i, e);
    for (let count = 0; ; count++) {
      // A key up to '=' (no comma before it), a value up to the next comma or the end of the fields.
      const ks = i;
      const eq = this.next(EQ_K, ks, fe);
      const comma = this.next(COMMA_K, ks, fe);
      if (eq === ks || eq >= comma) return count === 0 ? 'no_fields' : 'syntax';
      const slot = this.fieldSlot(text, ks, eq);
      if (slot >= 0) {
        if (!this.readNumber(text, eq + 1, comma)) return 'bad_value';
        this.field(slot, this.value, this.exactValue);
      }
      if (comma < fe) {
        i = comma + 1;
        continue;
      }
      i = fe;
      break;
    }
    if (i >= e) return 'no_timestamp';
    while (i < e && text.charCodeAt(i) === SPACE) i++;
    return this.readTime(text, i, e);
  }

  /** The timestamp text[i, e); the common case (digits to the end) without allocating. */
  private readTime(text: string, i: number, e: number): LineError | null {
    if (i >= e || !isDigit(text.charCodeAt(e - 1)) || !isDigit(text.charCodeAt(i))) {
      // A sign, trailing blanks or anything odd: the full reading.
      const t = timeOf(text.slice(i, e).trimEnd());
      if (typeof t !== 'number') return t;
      this.time = t;
      return null;
    }
    const n = e - i;
    if (n > 19) return 'bad_timestamp';
    // Milliseconds from nanoseconds: the digits but the last six (at most 13: exact).
    let ms = 0;
    const cut = e - 6;
    for (let k = i; k < e; k++) {
      const c = text.charCodeAt(k);
      if (!isDigit(c)) return 'bad_timestamp';
      if (k < cut) ms = ms * 10 + (c - D0);
    }
    if (n === 19 && text.charCodeAt(i) === D9 && text.slice(i, e) > MAX_NS_TEXT) return 'bad_timestamp';
    this.time = ms;
    return null;
  }

  /** readValue of text[s, e) into value and exactValue: false if it is not a number. */
  private readNumber(text: string, s: number, e: number): boolean {
    if (e === s) return false;
    const last = text.charCodeAt(e - 1);
    if (last === 105 || last === 117) {
      // `i` (signed) or `u` (unsigned) integer.
      let k = s;
      const neg = last === 105 && text.charCodeAt(k) === MINUS;
      if (neg) k++;
      const de = e - 1;
      if (k === de) return false;
      if (de - k <= 15) {
        // At most 15 digits: below 2^53, so the sum is exact (as Number(BigInt(digits)) is).
        let v = 0;
        for (; k < de; k++) {
          const c = text.charCodeAt(k);
          if (!isDigit(c)) return false;
          v = v * 10 + (c - D0);
        }
        this.value = neg && v !== 0 ? -v : v;
        this.exactValue = undefined;
        return true;
      }
      for (let q = k; q < de; q++) if (!isDigit(text.charCodeAt(q))) return false;
      const big = BigInt(text.slice(s, de));
      this.value = Number(big);
      this.exactValue = big > SAFE || big < -SAFE ? big : undefined;
      return true;
    }
    const c0 = text.charCodeAt(s);
    if (c0 === 116 || c0 === 84 || c0 === 102 || c0 === 70) {
      // t, T, f, F: a boolean or nothing (a number starts with a sign, a digit or a dot).
      const b = BOOLEANS.get(text.slice(s, e));
      if (b === undefined) return false;
      this.value = b;
      this.exactValue = undefined;
      return true;
    }
    // A float: [-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?
    let k = s;
    if (c0 === MINUS || c0 === PLUS) k++;
    let digits = 0;
    while (k < e && isDigit(text.charCodeAt(k))) {
      k++;
      digits++;
    }
    if (k < e && text.charCodeAt(k) === DOT) {
      k++;
      while (k < e && isDigit(text.charCodeAt(k))) {
        k++;
        digits++;
      }
    }
    if (digits === 0) return false;
    if (k < e && (text.charCodeAt(k) | 32) === 101) {
      k++;
      if (k < e && (text.charCodeAt(k) === MINUS || text.charCodeAt(k) === PLUS)) k++;
      const from = k;
      while (k < e && isDigit(text.charCodeAt(k))) k++;
      if (k === from) return false;
    }
    if (k !== e) return false;
    const value = Number(text.slice(s, e));
    if (!Number.isFinite(value)) return false;
    this.value = value;
    this.exactValue = undefined;
    return true;
  }
}

/** parseLine's scanner: the point as records (every tag; the wanted fields, or all). */
class RecordScanner extends PlainScanner {
  private name = '';
  private want: ReadonlySet<string> | undefined = undefined;
  private tags: Record<string, string> = {};
  private fields: Record<string, number> = {};
  private exact: Record<string, bigint> | undefined = undefined;
  private key = '';

  constructor(private readonly wanted: Wanted | undefined) {
    super();
  }

  /** parseLine of a line without backslashes and quotes. */
  parse(line: string): LineResult {
    this.isPlain(line, 0, line.length);
    const r = this.scanPlain(line, 0, line.length);
    if (r !== null) return { ok: false, reason: r };
    const point: ParsedPoint = { measurement: this.name, tags: this.tags, fields: this.fields, time: this.time };
    if (this.exact) point.exact = this.exact;
    return { ok: true, point };
  }

  protected measurement(text: string, s: number, e: number): boolean {
    this.name = text.slice(s, e);
    this.want = this.wanted?.get(this.name);
    if (this.wanted && !this.want) return false;
    this.tags = {};
    this.fields = {};
    this.exact = undefined;
    return true;
  }

  protected tag(text: string, ks: number, ke: number, vs: number, ve: number): void {
    this.tags[text.slice(ks, ke)] = text.slice(vs, ve);
  }

  protected fieldSlot(text: string, ks: number, ke: number): number {
    const key = text.slice(ks, ke);
    if (this.want && !this.want.has(key)) return -1;
    this.key = key;
    return 0;
  }

  protected field(_slot: number, value: number, exact: bigint | undefined): void {
    this.fields[this.key] = value;
    if (exact !== undefined) (this.exact ??= {})[this.key] = exact;
  }
}

const anyScanner = new RecordScanner(undefined);
const scanners = new WeakMap<Wanted, RecordScanner>();

function recordReader(wanted: Wanted | undefined): RecordScanner {
  if (!wanted) return anyScanner;
  let s = scanners.get(wanted);
  if (!s) scanners.set(wanted, (s = new RecordScanner(wanted)));
  return s;
}

/** What a LineReader reads of one measurement: the fields, and the tags a join looks at. */
export interface ReadSpec {
  measurement: string;
  fields: readonly string[];
  tags: readonly string[];
}

/**
 * The last point a LineReader read, in slots of its measurement's spec: reused from line
 * to line (a consumer takes what it needs before the next read).
 */
export class ReadPoint {
  /** Index of the measurement in the reader's specs. */
  measurement = -1;
  /** Per tag of the spec: its value, or undefined when the line has no such tag. */
  readonly tags: (string | undefined)[];
  /** Per field of the spec: its value where `has` is 1. */
  readonly values: Float64Array;
  readonly has: Uint8Array;
  /** Per field: its exact integer beyond 2^53, if any. */
  readonly exact: (bigint | undefined)[];
  /** True if any field read carried an exact integer (ParsedPoint's `exact` present). */
  anyExact = false;
  /** Epoch milliseconds. */
  time = 0;

  constructor(tags: number, fields: number) {
    this.tags = new Array<string | undefined>(tags).fill(undefined);
    this.values = new Float64Array(fields);
    this.has = new Uint8Array(fields);
    this.exact = new Array<bigint | undefined>(fields).fill(undefined);
  }

  /** Empties the slots for a new point of measurement `m`. */
  reset(m: number): void {
    this.measurement = m;
    const { tags, has, exact } = this;
    for (let k = 0; k < tags.length; k++) tags[k] = undefined;
    for (let k = 0; k < has.length; k++) {
      has[k] = 0;
      exact[k] = undefined;
    }
    this.anyExact = false;
  }
}

/**
 * Reads lines of the measurements of `specs` into one reused ReadPoint, keeping only the
 * spec's tags and fields: parseLine's reading (the same refusals, for the same reasons),
 * without making objects per line. Lines of other measurements are `unused`.
 */
export class LineReader extends PlainScanner {
  readonly point: ReadPoint;
  private readonly names: string[];
  private readonly fieldKeys: (readonly string[])[];
  private readonly tagKeys: (readonly string[])[];
  private readonly wanted: Wanted;
  private fk: readonly string[] = [];
  private tk: readonly string[] = [];

  constructor(readonly specs: readonly ReadSpec[]) {
    super();
    this.names = specs.map((s) => s.measurement);
    const unique = (a: readonly string[]) => new Set(a).size === a.length;
    if (!unique(this.names) || !specs.every((s) => unique(s.fields) && unique(s.tags)))
      throw new RangeError('LineReader: a measurement, tag or field given twice');
    this.fieldKeys = specs.map((s) => s.fields);
    this.tagKeys = specs.map((s) => s.tags);
    this.wanted = new Map(specs.map((s) => [s.measurement, new Set(s.fields)]));
    this.point = new ReadPoint(Math.max(0, ...specs.map((s) => s.tags.length)), Math.max(0, ...specs.map((s) => s.fields.length)));
  }

  /**
   * Reads the line text[s, e) (without its newline; default the whole text) into `point`:
   * null when read, else why not. The lines of one text are read fastest in order.
   */
  read(text: string, s = 0, e = text.length): LineError | 'unused' | null {
    if (this.isPlain(text, s, e)) {
      const r = this.scanPlain(text, s, e);
      if (r === null) this.point.time = this.time;
      return r;
    }
    const r = parseEscaped(s === 0 && e === text.length ? text : text.slice(s, e), this.wanted);
    if (!r.ok) return r.reason;
    const p = r.point;
    const m = this.names.indexOf(p.measurement);
    const pt = this.point;
    pt.reset(m);
    const tk = this.tagKeys[m];
    for (let k = 0; k < tk.length; k++) if (Object.hasOwn(p.tags, tk[k])) pt.tags[k] = p.tags[tk[k]];
    const fk = this.fieldKeys[m];
    for (let k = 0; k < fk.length; k++) {
      if (!Object.hasOwn(p.fields, fk[k])) continue;
      pt.values[k] = p.fields[fk[k]];
      pt.has[k] = 1;
      if (p.exact && Object.hasOwn(p.exact, fk[k])) pt.exact[k] = p.exact[fk[k]];
    }
    pt.anyExact = p.exact !== undefined;
    pt.time = p.time;
    return null;
  }

  protected measurement(text: string, s: number, e: number): boolean {
    const names = this.names;
    const n = e - s;
    for (let m = 0; m < names.length; m++) {
      const name = names[m];
      if (name.length === n && text.startsWith(name, s)) {
        this.point.reset(m);
        this.fk = this.fieldKeys[m];
        this.tk = this.tagKeys[m];
        return true;
      }
    }
    return false;
  }

  protected tag(text: string, ks: number, ke: number, vs: number, ve: number): void {
    const tk = this.tk;
    const n = ke - ks;
    for (let k = 0; k < tk.length; k++) {
      if (tk[k].length === n && text.startsWith(tk[k], ks)) {
        this.point.tags[k] = text.slice(vs, ve);
        return;
      }
    }
  }

  protected fieldSlot(text: string, ks: number, ke: number): number {
    const fk = this.fk;
    const n = ke - ks;
    for (let k = 0; k < fk.length; k++) if (fk[k].length === n && text.startsWith(fk[k], ks)) return k;
    return -1;
  }

  protected field(slot: number, value: number, exact: bigint | undefined): void {
    const pt = this.point;
    pt.values[slot] = value;
    pt.has[slot] = 1;
    if (exact !== undefined) {
      pt.exact[slot] = exact;
      pt.anyExact = true;
    }
  }
}
