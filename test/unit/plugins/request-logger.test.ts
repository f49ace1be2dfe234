import { Writable } from 'node:stream';
import Fastify from 'fastify';
import pino from 'pino';
import { lazyChildLogger, RequestLogger } from '../../../src/plugins/request-logger';

/** A pino logger whose lines are collected (synchronously) as parsed objects. */
function collecting(level: string) {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level, base: { service: 't' } }, stream), lines };
}

describe('RequestLogger (the lazy per-request child logger)', () => {
  it('writes the lines pino writes through a child with the same bindings', () => {
    const a = collecting('info');
    const b = collecting('info');
    a.logger.child({ reqId: 'r-1' }, {}).warn({ k: 1 }, 'hello %s', 'there');
    lazyChildLogger(b.logger, { reqId: 'r-1' }, {}).warn({ k: 1 }, 'hello %s', 'there');
    const strip = (l: Record<string, unknown>) => ({ ...l, time: 0, pid: 0, hostname: '' });
    expect(b.lines.map(strip)).toEqual(a.lines.map(strip));
    expect(b.lines[0]).toMatchObject({ reqId: 'r-1', k: 1, msg: 'hello there', level: 40 });
  });

  it('makes no child below the level and honours a route level', () => {
    const { logger, lines } = collecting('warn');
    const child = jest.spyOn(logger, 'child');
    const quiet = new RequestLogger(logger, { reqId: 'q' }, {});
    quiet.info('not written');
    quiet.debug('not written');
    expect(child).not.toHaveBeenCalled();
    expect(quiet.isLevelEnabled('info')).toBe(false);
    expect(quiet.isLevelEnabled('error')).toBe(true);
    expect(quiet.level).toBe('warn');
    quiet.error('written');
    expect(child).toHaveBeenCalledTimes(1);
    quiet.error('again');
    expect(child).toHaveBeenCalledTimes(1);
    // A route's logLevel (Fastify passes it as the child's level) replaces the parent's.
    const verbose = new RequestLogger(logger, { reqId: 'v' }, { level: 'debug' });
    expect(verbose.isLevelEnabled('debug')).toBe(true);
    verbose.debug('route level');
    const silent = new RequestLogger(logger, { reqId: 's' }, { level: 'silent' });
    silent.fatal('never');
    expect(lines.map((l) => [l.reqId, l.msg])).toEqual([
      ['q', 'written'],
      ['q', 'again'],
      ['v', 'route level'],
    ]);
    // A child of the request's logger carries both bindings.
    quiet.child({ part: 'x' }).warn('nested');
    expect(lines.at(-1)).toMatchObject({ reqId: 'q', part: 'x', msg: 'nested' });
  });

  it('serves as Fastify childLoggerFactory: request ids and route log levels in the lines', async () => {
    const { logger, lines } = collecting('info');
    const app = Fastify({ loggerInstance: logger, childLoggerFactory: lazyChildLogger, requestIdHeader: 'x-request-id' });
    app.get('/a', async (request) => {
      request.log.info('in handler');
      return 'ok';
    });
    app.get('/quiet', { logLevel: 'warn' }, async (request) => {
      request.log.info('dropped');
      return 'ok';
    });
    await app.inject({ method: 'GET', url: '/a', headers: { 'x-request-id': 'abc' } });
    await app.inject({ method: 'GET', url: '/quiet', headers: { 'x-request-id': 'def' } });
    await app.close();
    const ofA = lines.filter((l) => l.reqId === 'abc').map((l) => l.msg);
    expect(ofA).toEqual(['incoming request', 'in handler', 'request completed']);
    expect(lines.filter((l) => l.reqId === 'def')).toEqual([]);
  });
});
