/** A command-line mistake (defined in the error catalogue, src/errors.ts). */
export { UsageError } from '../errors';
