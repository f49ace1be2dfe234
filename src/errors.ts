/** Named error codes of the HTTP API (the `error` field of every error body). */
export const ErrorCode = {
  InvalidRequest: 'invalid_request',
  InvalidPoints: 'invalid_points',
  Unauthorized: 'unauthorized',
  NotFound: 'not_found',
  PayloadTooLarge: 'payload_too_large',
  UnsupportedMediaType: 'unsupported_media_type',
  Overloaded: 'overloaded',
  ModelUnavailable: 'model_unavailable',
  ReloadFailed: 'reload_failed',
  Internal: 'internal_error',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** One problem with one field of a request (details of a 4xx). */
export interface FieldIssue {
  index?: number;
  field: string;
  message: string;
  value?: unknown;
}

/** An error with an HTTP status, a code, and details safe to show the client. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: ErrorCode,
    message: string,
    readonly details: FieldIssue[] = [],
    /** Issues left out of a bounded `details` list (sent as `details_omitted`). */
    readonly omitted = 0,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/**
 * A failure the user can act on, whose `message` is one line that says it all: the CLI
 * prints it (no stack trace) and exits 1, the service logs it. Every expected failure
 * is one of these; anything else is a bug and keeps its stack. The catalogue:
 * - ConfigError (here): a bad environment variable;
 * - UsageError (here): a bad command-line argument;
 * - DataError (data/csv.ts, and NabDataError): an input file the user can fix;
 * - ArtifactError (core/artifact.ts): a model artifact that cannot be used;
 * - StartupError (server.ts): the service cannot start;
 * - MlflowError (mlflow/errors.ts), InfluxError (influx/types.ts): a server failed or refused;
 * - LineProtocolError (influx/line-protocol.ts): a value InfluxDB cannot store.
 * The CLI tells them apart with `instanceof ExpectedError`, not by class name.
 */
export class ExpectedError extends Error {}

/** Raised at start for bad configuration; `message` is the one line to print. */
export class ConfigError extends ExpectedError {
  override readonly name = 'ConfigError';
}

/** A command-line mistake (a bad flag value, a missing option). */
export class UsageError extends ExpectedError {
  override readonly name = 'UsageError';
}
