import { timingSafeEqual, createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { ErrorCode, HttpError } from '../errors';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/**
 * An onRequest hook requiring `Authorization: Bearer <token>`. Comparing digests in
 * constant time hides both the token and its length.
 */
export function bearerAuth(token: string): (request: FastifyRequest) => Promise<void> {
  const expected = digest(token);
  return async (request) => {
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(.+)$/i.exec(header.trim()) : null;
    if (!match || !timingSafeEqual(digest(match[1]), expected)) {
      throw new HttpError(401, ErrorCode.Unauthorized, 'missing or invalid bearer token');
    }
  };
}
