import { ExpectedError } from '../errors';

/**
 * What went wrong talking to MLflow:
 * - `unreachable`: no connection (refused, unknown host, network down);
 * - `timeout`: connected, but no answer in time;
 * - `http`: the server answered with an error status;
 * - `protocol`: the server answered 2xx with something this client does not understand;
 * - `invalid_argument`: the caller's input was rejected before any request;
 * - `registration_failed`: a model version ended in FAILED_REGISTRATION or never became READY.
 */
export type MlflowErrorKind = 'unreachable' | 'timeout' | 'http' | 'protocol' | 'invalid_argument' | 'registration_failed';

/** Longest server message kept in an error; bodies can be whole HTML pages or SQL dumps. */
const MAX_MESSAGE = 300;

/** An MLflow failure with a one-line `message` (never a whole response body). */
export class MlflowError extends ExpectedError {
  override readonly name = 'MlflowError';

  constructor(
    message: string,
    readonly kind: MlflowErrorKind,
    /** HTTP status, when the server answered. */
    readonly status?: number,
    /** MLflow's `error_code` (e.g. RESOURCE_DOES_NOT_EXIST), when the body had one. */
    readonly errorCode?: string,
  ) {
    super(oneLine(message, 600));
  }

  /** Same error with `prefix: ` in front of the message (context such as the URI being resolved). */
  withContext(prefix: string): MlflowError {
    return new MlflowError(`${prefix}: ${this.message}`, this.kind, this.status, this.errorCode);
  }

  /** True for MLflow's "does not exist" answers (404, or RESOURCE_DOES_NOT_EXIST). */
  get notFound(): boolean {
    return this.status === 404 || this.errorCode === 'RESOURCE_DOES_NOT_EXIST';
  }
}

/** First non-empty line of `s`, whitespace collapsed, cut to `max` characters. */
export function oneLine(s: string, max = MAX_MESSAGE): string {
  const line = s.split(/\r?\n/).find((l) => l.trim() !== '') ?? '';
  const flat = line.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/**
 * MLflow's error fields from a response body: `{error_code, message}` from the REST
 * handlers, `{detail}` from the FastAPI artifact routes, or plain text from a proxy.
 * Only the first 64 KiB are looked at.
 */
export function describeErrorBody(body: Buffer | undefined): { errorCode?: string; message?: string } {
  if (!body || body.length === 0) return {};
  const text = body.subarray(0, 65536).toString('utf8');
  try {
    const json = JSON.parse(text) as Record<string, unknown>;
    if (json && typeof json === 'object') {
      const errorCode = typeof json.error_code === 'string' ? json.error_code : undefined;
      if (typeof json.message === 'string') return { errorCode, message: oneLine(json.message) };
      if (typeof json.detail === 'string') return { errorCode, message: oneLine(json.detail) };
      if (json.detail !== undefined) return { errorCode, message: oneLine(JSON.stringify(json.detail)) };
      return { errorCode };
    }
  } catch {
    // Not JSON: an HTML error page or a proxy's text.
  }
  const stripped = text.replace(/<[^>]*>/g, ' ');
  return { message: oneLine(stripped) || undefined };
}
