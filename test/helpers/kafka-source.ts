import type { KafkaSourceOptions } from '../../src/kafka/consumer';
import { telegrafPreset } from '../../src/poller/telegraf';

/** What each test or benchmark of KafkaSource sets itself; the rest has the defaults below. */
type Given = Pick<KafkaSourceOptions, 'brokers' | 'topic' | 'groupId' | 'engine' | 'collectionIntervalMs' | 'learnWindowMs'>;

/**
 * KafkaSource's options for tests and benchmarks: no results topic, TLS or SASL, one
 * partition at a time, Telegraf's preset mapping, writes of 5,000 lines, backoff up to 2 s,
 * a 6 s session; `opts` sets the rest and overrides any of these.
 */
export function kafkaSourceOptions(opts: Given & Partial<KafkaSourceOptions>): KafkaSourceOptions {
  return {
    clientId: 'detector',
    resultsTopic: null,
    ssl: null,
    sasl: null,
    sessionTimeoutMs: 6000,
    concurrency: 1,
    mapping: telegrafPreset(),
    writeBatchLines: 5000,
    maxBackoffMs: 2000,
    ...opts,
  };
}
