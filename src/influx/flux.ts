/**
 * Flux quoting. Flux string literals are double-quoted; `\` and `"` must be escaped and
 * so must `${`, which would otherwise start string interpolation (`"${r.secret}"`).
 * Columns are always accessed as `r["name"]`, so a hostile tag key is a string too.
 */

/** A Flux string literal. */
export function fluxString(value: string): string {
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c === '\\') out += '\\\\';
    else if (c === '"') out += '\\"';
    else if (c === '\n') out += '\\n';
    else if (c === '\r') out += '\\r';
    else if (c === '\t') out += '\\t';
    else if (c === '$' && value[i + 1] === '{') out += '\\$';
    else out += c;
  }
  return `"${out}"`;
}

/** A Flux time value from epoch milliseconds or a Date: `time(v: "2024-01-01T00:00:00.000Z")`. */
export function fluxTime(time: number | Date): string {
  const ms = time instanceof Date ? time.getTime() : time;
  if (!Number.isFinite(ms)) throw new RangeError(`invalid time: ${String(time)}`);
  return `time(v: ${fluxString(new Date(Math.floor(ms)).toISOString())})`;
}

/** `r["column"]`. */
export function fluxColumn(name: string): string {
  return `r[${fluxString(name)}]`;
}

/** An array of string literals: `["a", "b"]`. */
export function fluxStringArray(values: readonly string[]): string {
  return `[${values.map(fluxString).join(', ')}]`;
}
