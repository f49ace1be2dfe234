/** Hostile strings and a seeded generator shared by the quoting tests. */

export const HOSTILE = [
  'plain',
  'with,comma',
  'with space',
  'with=equals',
  'a,b=c d',
  `it's "quoted"`,
  "'; DROP DATABASE x; --",
  '" OR 1=1',
  "' OR '1'='1",
  'back\\slash',
  'C:\\temp\\x',
  'ünïcödé 😀 中文',
  '${r.secret}',
  'tab\there',
  '"',
  "'",
  ' ',
  ',',
  '=',
  '\\x',
];

/** Strings line protocol cannot carry exactly (rejected by design). */
export const UNREPRESENTABLE_NAMES = ['line\nbreak', 'cr\rhere', 'trailing\\', 'bs\\,comma', 'bs\\ space', 'bs\\=eq', 'double\\\\bs', '\n'];

/** Deterministic random strings over an alphabet full of separators and escapes. */
export function randomStrings(count: number, seed = 42): string[] {
  const alphabet = [',', '=', ' ', '\\', '"', "'", '\n', '\r', '\t', '$', '{', '}', 'a', 'Z', '0', 'é', '😀', '-', ';'];
  let s = seed >>> 0;
  const next = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const len = 1 + Math.floor(next() * 12);
    let str = '';
    for (let j = 0; j < len; j++) str += alphabet[Math.floor(next() * alphabet.length)];
    out.push(str);
  }
  return out;
}
