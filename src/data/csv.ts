import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { DataError } from '../errors';

export { DataError };

export interface CsvTable {
  header: string[];
  rows: string[][];
  /** 1-based line number in the file of each row. */
  lines: number[];
}

/** One CSV record and the 1-based line of the file it starts on. */
export interface CsvRecord {
  fields: string[];
  line: number;
}

/**
 * Splits CSV text into records (RFC 4180 quoting, CRLF or LF, a leading byte-order mark
 * ignored, blank lines skipped), header included, without checking their widths.
 */
export function parseRecords(text: string, source = 'CSV'): CsvRecord[] {
  const records: CsvRecord[] = [];
  let field = '';
  let fields: string[] = [];
  let inQuotes = false;
  let line = 1;
  let recordLine = 1;
  const endRecord = (): void => {
    fields.push(field);
    if (!(fields.length === 1 && fields[0].trim() === '')) records.push({ fields, line: recordLine });
    fields = [];
    field = '';
  };
  // A byte-order mark would otherwise glue itself to the first column name.
  const start = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  for (let i = start; i < text.length; i++) {
    const ch = text[i];
    if (inQuotes) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else inQuotes = false;
      } else {
        if (ch === '\n') line++;
        field += ch;
      }
    } else if (ch === '"' && field === '') inQuotes = true;
    else if (ch === ',') {
      fields.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      endRecord();
      line++;
      recordLine = line;
    } else field += ch;
  }
  if (inQuotes) throw new DataError(`${source}: unterminated quoted field starting on line ${recordLine}`);
  if (field !== '' || fields.length > 0) endRecord();
  return records;
}

/**
 * Parses CSV into a header and rows. Rows with a different number of fields than the
 * header are an error naming the first offending lines.
 */
export function parseCsv(text: string, source = 'CSV'): CsvTable {
  if (text.trim() === '') throw new DataError(`${source}: the file is empty`);
  const [head, ...rest] = parseRecords(text, source);
  // Only blank records (`""` is one): no header.
  if (!head) throw new DataError(`${source}: no header line`);
  const header = head.fields.map((h) => h.trim());
  const ragged = rest.filter((r) => r.fields.length !== header.length);
  if (ragged.length > 0) {
    const where = ragged
      .slice(0, 5)
      .map((r) => `line ${r.line} has ${r.fields.length} fields`)
      .join('; ');
    throw new DataError(`${source}: ${ragged.length} row(s) do not have the header's ${header.length} fields (${where})`);
  }
  return { header, rows: rest.map((r) => r.fields), lines: rest.map((r) => r.line) };
}

/** Reads a file's text with a one-line error for a missing or unreadable file. */
export function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new DataError(`${path}: no such file`);
    if (code === 'EISDIR') throw new DataError(`${path}: is a directory, expected a CSV file`);
    throw new DataError(`${path}: cannot read (${code ?? (e as Error).message})`);
  }
}

/** sha256 of a file's bytes, hex. */
export function fileSha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** Quotes a CSV field when needed. */
export function csvField(v: string | number): string {
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
