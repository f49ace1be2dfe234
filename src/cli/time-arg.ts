import { UsageError } from '../errors';
import { parseRfc3339 } from '../validation/point';

/**
 * Epoch ms of a time given on the command line: RFC 3339 read strictly (as /detect reads
 * timestamps: no 2026-02-30, no T24:00:00), or a bare date YYYY-MM-DD meaning its
 * midnight UTC. Anything else is a one-line UsageError naming the flag.
 */
export function timeArg(flag: string, v: string): number {
  const t = parseRfc3339(/^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : v);
  if (!Number.isFinite(t))
    throw new UsageError(`--${flag}: ${JSON.stringify(v)} is not an RFC 3339 time (e.g. 2026-01-05T10:00:00Z) or a date (2026-01-05)`);
  return t;
}
