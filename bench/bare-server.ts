import { readFileSync } from 'node:fs';
import Fastify from 'fastify';

/**
 * The benchmark's reference: a bare Fastify route that parses the same JSON body and
 * answers with a JSON body of the same size as /detect (from the file named at start), so the
 * difference to /detect is validation, scoring and the service's hooks.
 */
async function main(): Promise<void> {
  const port = Number(process.argv[2]);
  const replies = JSON.parse(readFileSync(process.argv[3], 'utf8')) as Record<string, unknown>;
  const app = Fastify({ logger: false, bodyLimit: 64 * 1024 * 1024 });
  app.post<{ Body: { points: unknown[] } }>('/detect', async (request) => replies[String(request.body.points.length)] ?? {});
  await app.listen({ port, host: '127.0.0.1' });
  process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
}

void main();
