import type { FastifyBaseLogger } from 'fastify';
import type { Bindings, ChildLoggerOptions, Level, LevelWithSilent } from 'pino';

/** pino's numeric levels (pino.levels.values), fixed by pino. */
const LEVEL_VALUES: Record<LevelWithSilent, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };

type LogFn = (this: RequestLogger, ...args: unknown[]) => void;

/**
 * The logger of one request, made only when something is logged through it. Fastify makes
 * a child logger per request (its request id as a binding); pino's `child` stringifies the
 * bindings and builds a logger object, about a microsecond, which a 1-point /detect pays on
 * every request although nothing is logged at the service's level (warn or above, on a
 * successful request). This one holds the parent and the bindings, and makes the real
 * child at the first call at an enabled level: the lines written are pino's own, with the
 * same bindings, byte for byte.
 */
export class RequestLogger {
  private real: FastifyBaseLogger | null = null;
  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly bindings: Bindings,
    private readonly opts: ChildLoggerOptions,
  ) {}

  private logger(): FastifyBaseLogger {
    this.real ??= this.parent.child(this.bindings, this.opts) as FastifyBaseLogger;
    return this.real;
  }

  /** The lowest level written: the route's `logLevel` if it has one, else the parent's. */
  private floor(): number {
    if (this.real) return LEVEL_VALUES[this.real.level as LevelWithSilent] ?? 0;
    const own = this.opts.level as LevelWithSilent | undefined;
    return LEVEL_VALUES[own ?? (this.parent.level as LevelWithSilent)] ?? 0;
  }

  get level(): string {
    return this.real ? this.real.level : ((this.opts.level as string | undefined) ?? this.parent.level);
  }
  set level(level: string) {
    this.logger().level = level;
  }

  isLevelEnabled(level: string): boolean {
    return (LEVEL_VALUES[level as LevelWithSilent] ?? Infinity) >= this.floor();
  }

  child(bindings: Bindings, opts?: ChildLoggerOptions): FastifyBaseLogger {
    return this.logger().child(bindings, opts) as FastifyBaseLogger;
  }

  declare trace: LogFn;
  declare debug: LogFn;
  declare info: LogFn;
  declare warn: LogFn;
  declare error: LogFn;
  declare fatal: LogFn;
  declare silent: LogFn;
}

for (const level of ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as Level[]) {
  const value = LEVEL_VALUES[level];
  (RequestLogger.prototype as unknown as Record<string, LogFn>)[level] = function (this: RequestLogger, ...args: unknown[]) {
    if (value < (this as unknown as { floor(): number }).floor()) return;
    const real = (this as unknown as { logger(): FastifyBaseLogger }).logger();
    (real[level] as (...a: unknown[]) => void)(...args);
  };
}
(RequestLogger.prototype as unknown as Record<string, LogFn>).silent = () => {};

/** Fastify's `childLoggerFactory`: a RequestLogger per request. */
export function lazyChildLogger(logger: FastifyBaseLogger, bindings: Bindings, opts: ChildLoggerOptions): FastifyBaseLogger {
  return new RequestLogger(logger, bindings, opts) as unknown as FastifyBaseLogger;
}
