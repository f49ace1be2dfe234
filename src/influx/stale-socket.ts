/**
 * A pooled keep-alive socket can be dead without Node knowing yet (InfluxDB restarted,
 * an idle timeout on the way): the request on it fails with ECONNRESET or EPIPE before
 * the server (usually) saw it. Such a request is sent once more on a fresh socket. Repeating is
 * safe for every request these adapters make: reads, CREATE DATABASE, and writes
 * (a point with the same series and time overwrites itself with the same values).
 */
const STALE_SOCKET_CODES = new Set(['ECONNRESET', 'EPIPE']);

function codeOf(err: unknown): string | undefined {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | null;
  const code = e?.code ?? e?.cause?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Runs `send`, and once more when it failed on a stale socket. */
export async function retryStaleSocket<T>(send: () => Promise<T>): Promise<T> {
  try {
    return await send();
  } catch (err) {
    if (!STALE_SOCKET_CODES.has(codeOf(err) ?? '')) throw err;
    return send();
  }
}
