/** A command-line mistake; main prints errors of this name as one line. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
