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

/** Raised at start for bad configuration; `message` is the one line to print. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}
