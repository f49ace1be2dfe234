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
 * prints it (`anomaly-detector: <message>`, no stack trace) and exits 1, the service logs
 * it. Every expected failure is one of these; anything else is a bug and keeps its stack.
 * The catalogue (all defined here, except the two clients' errors, which carry their
 * protocol's details):
 * - ConfigError: a bad environment variable;
 * - UsageError: a bad command-line argument (Commander's own parse errors get the same
 *   one-line form, see cli/main.ts);
 * - DataError: an input file the user can fix; NabDataError and SmdDataError for the
 *   benchmark folders;
 * - ArtifactError: a model artifact that cannot be used;
 * - StartupError: the service cannot start;
 * - LineProtocolError: a value InfluxDB cannot store;
 * - MlflowError (mlflow/errors.ts), InfluxError (influx/types.ts): a server failed or refused.
 * A file system error on a path the user gave is expected too (cli/main.ts). The HTTP API's
 * errors are HttpError with an ErrorCode (above). The CLI tells them apart with
 * `instanceof ExpectedError`, not by class name.
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

/** A data problem the user can fix; `message` is one line, no stack trace needed. */
export class DataError extends ExpectedError {
  override readonly name = 'DataError';
}

/** A missing or malformed NAB directory or file: a DataError naming it. */
export class NabDataError extends DataError {}

/** A missing or malformed SMD folder: a DataError naming it. */
export class SmdDataError extends DataError {}

/** Raised when an artifact cannot be used; `message` is one line fit for a log. */
export class ArtifactError extends ExpectedError {
  override readonly name = 'ArtifactError';
}

/** Raised for a start-up failure: the message is the one line printed before exit. */
export class StartupError extends ExpectedError {
  override readonly name = 'StartupError';
}

/** A point that cannot be written as line protocol without changing it. */
export class LineProtocolError extends ExpectedError {
  override readonly name = 'LineProtocolError';
}
