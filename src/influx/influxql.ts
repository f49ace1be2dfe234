/**
 * InfluxQL quoting. Every name and value that reaches a query goes through these, so a
 * host called `'; DROP DATABASE x; --` is a string to compare, never a statement.
 *
 * InfluxQL's scanner reads `\\`, `\'`, `\"` and `\n` inside quotes and rejects a literal
 * newline, so those four are escaped (as Go's influxql.QuoteString/QuoteIdent do).
 */

function escapeQuoted(s: string, quote: '"' | "'"): string {
  let out = '';
  for (const c of s) {
    // No escape can carry these: the scanner ends the query at a NUL and reads a CR as a newline.
    if (c === '\u0000' || c === '\r') throw new RangeError(`InfluxQL cannot quote a NUL or carriage return: ${JSON.stringify(s)}`);
    if (c === '\\') out += '\\\\';
    else if (c === quote) out += `\\${quote}`;
    else if (c === '\n') out += '\\n';
    else out += c;
  }
  return out;
}

/** A double-quoted identifier (measurement, tag key, field key, database, retention policy). */
export function quoteIdent(name: string): string {
  return `"${escapeQuoted(name, '"')}"`;
}

/** A single-quoted string literal (tag values in WHERE). */
export function quoteString(value: string): string {
  return `'${escapeQuoted(value, "'")}'`;
}

/**
 * A time literal for WHERE: integer epoch milliseconds with the `ms` unit, e.g.
 * `1700000000000ms` (floored; throws for non-finite input).
 */
export function timeLiteral(time: number | Date): string {
  const ms = time instanceof Date ? time.getTime() : time;
  if (!Number.isFinite(ms)) throw new RangeError(`invalid time: ${String(time)}`);
  return `${Math.floor(ms)}ms`;
}

/** `"rp"."measurement"` or `"measurement"`. */
export function quoteMeasurement(measurement: string, retentionPolicy?: string): string {
  return retentionPolicy ? `${quoteIdent(retentionPolicy)}.${quoteIdent(measurement)}` : quoteIdent(measurement);
}

/**
 * A tag filter as an InfluxQL condition: `"k" = 'v'` for one value, an OR group for
 * several. An empty array gives `false` semantics and is the caller's to handle.
 */
export function tagCondition(key: string, values: string | readonly string[]): string {
  const list = typeof values === 'string' ? [values] : values;
  if (list.length === 0) throw new RangeError(`tag filter on ${key} has no values`);
  // ::tag keeps the comparison on the tag when a field has the same name.
  const parts = list.map((v) => `${quoteIdent(key)}::tag = ${quoteString(v)}`);
  return parts.length === 1 ? parts[0] : `(${parts.join(' OR ')})`;
}

/** `"key"::tag != 'a' AND ...`: excludes tag values (empty list: no condition). */
export function tagExclusion(key: string, values: readonly string[]): string | null {
  if (values.length === 0) return null;
  return values.map((v) => `${quoteIdent(key)}::tag != ${quoteString(v)}`).join(' AND ');
}

/**
 * A Go regular expression (what InfluxDB compiles) matching exactly one of `values`: each
 * value with every metacharacter escaped (Go's regexp.QuoteMeta) and every control
 * character written as `\x{hh}`, joined in an anchored non-capturing group. Control
 * characters cannot stay raw: InfluxQL's scanner ends the query at a NUL and reads a
 * carriage return as a newline, which a regex literal cannot hold (InfluxDB stores such
 * tag values, so one hostile host would fail every read of its shard).
 */
export function exactRegex(values: readonly string[]): string {
  const quote = (v: string) =>
    v
      .replace(/[\\.+*?()|[\]{}^$]/g, (c) => `\\${c}`)
      // eslint-disable-next-line no-control-regex
      .replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x{${c.charCodeAt(0).toString(16).padStart(2, '0')}}`);
  return `^(?:${values.map(quote).join('|')})$`;
}

/**
 * An InfluxQL regex literal of a Go regular expression. InfluxQL's scanner reads `\/` as
 * `/`, passes every other backslash through and rejects a newline, so only `/` is escaped
 * (a newline cannot be in `exactRegex`'s output).
 */
export function regexLiteral(re: string): string {
  if (re.includes('\n')) throw new RangeError('an InfluxQL regex cannot hold a newline');
  return `/${re.replace(/\//g, '\\/')}/`;
}

/**
 * `"key"::tag =~ /^(?:a|b|...)$/`: the tag equals one of `values`. One regex instead of an
 * OR of comparisons: on InfluxDB 1.6 with 40,000 hosts an OR of 1,000 comparisons took
 * 20 times as long as the regex, and the OR's cost grows faster than its length
 * (docs/benchmarks.md, "Shard-aware reads").
 */
export function tagInCondition(key: string, values: readonly string[]): string {
  if (values.length === 0) throw new RangeError(`tag filter on ${key} has no values`);
  return `${quoteIdent(key)}::tag =~ ${regexLiteral(exactRegex(values))}`;
}
