import { Kafka as KafkaClient, logLevel, type Admin } from 'kafkajs';
import { startInfluxd, type Influxd } from '../helpers/influxd';
import { predictions, waitUntil, type PredictionRow } from '../helpers/influx-data';
import { startKafka, KAFKA_START_TIMEOUT_MS, type Kafka } from '../helpers/kafka';
import { startService, type ServiceProcess } from '../helpers/process';
import { startTelegraf, TELEGRAF_KAFKA_CONF, TELEGRAF_START_TIMEOUT_MS, type Telegraf } from '../helpers/telegraf';
import { startVethTraffic, type VethTraffic } from '../helpers/veth';

// SOURCE=kafka end to end with the real collector: Telegraf runs the compose stack's Kafka
// configuration (docker/telegraf-kafka.conf: outputs.kafka, routing_tag "host", data_format
// influx) at 1 s, plus an outputs.influxdb to a real influxd so that the raw points are
// there to compare; the service runs as a process in Kafka mode against a real broker and
// writes ai_predictions to the same influxd. Every step of Telegraf's after its first is
// written once, with cpu_val, mem_val and net_val exactly the values computed from the raw
// points (as test/integration/telegraf.test.ts compares the InfluxDB path's). A veth pair
// named like a physical interface carries known traffic, so the network load is not 0 and
// is summed over two interfaces (eth0 and the veth).
const DB = 'system_metrics';
const TOPIC = 'telegraf';
const PARTITIONS = 3;
const STEP_MS = 1000;
const MIN_PREDICTIONS = 6;
/** docker/telegraf-kafka.conf's host tag (TELEGRAF_HOSTNAME): its own name, as in the compose file. */
const HOST = `telegraf-kafka-${process.pid}`;

/** outputs.influxdb as docker/telegraf.conf has it: the raw points, to compare with. */
const INFLUX_OUTPUT = `
[[outputs.influxdb]]
  urls = ["\${INFLUX_URL}"]
  database = "\${INFLUX_DATABASE}"
  skip_database_creation = false
  timeout = "5s"
  namepass = ["cpu", "mem", "net", "system", "diskio", "swap", "netstat", "nstat"]
`;

interface Row {
  time: number;
  value: number;
}

/** InfluxQL with epoch-ms times, straight over HTTP: series tags and (time, value) rows. */
async function raw(influxd: Influxd, q: string): Promise<Array<{ tags: Record<string, string>; rows: Row[] }>> {
  const res = await fetch(`${influxd.url}/query?${new URLSearchParams({ db: DB, epoch: 'ms', q })}`, {
    signal: AbortSignal.timeout(10_000),
  });
  const body = (await res.json()) as {
    results: Array<{ error?: string; series?: Array<{ tags?: Record<string, string>; values: Array<[number, number]> }> }>;
  };
  const r = body.results[0];
  if (r.error) throw new Error(r.error);
  return (r.series ?? []).map((s) => ({ tags: s.tags ?? {}, rows: s.values.map(([time, value]) => ({ time, value })) }));
}

/** One value per collection step; two points of one series in a step would be ambiguous. */
function byStep(rows: Row[], what: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const r of rows) {
    const step = Math.floor(r.time / STEP_MS) * STEP_MS;
    if (out.has(step)) throw new Error(`${what}: two points in the step at ${new Date(step).toISOString()}`);
    out.set(step, r.value);
  }
  return out;
}

/** Prometheus text: the samples of one metric, by their label set (`{a="b"}`, or '' without labels). */
function samples(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m && m[1] === name) out.set(m[2] ?? '', Number(m[3]));
  }
  return out;
}

describe('real Telegraf -> outputs.kafka -> real broker -> the service (SOURCE=kafka) -> influxd', () => {
  let kafka: Kafka;
  let influxd: Influxd;
  let admin: Admin | undefined;
  let traffic: VethTraffic | undefined;
  let svc: ServiceProcess | undefined;
  let telegraf: Telegraf | undefined;

  const health = async (): Promise<{ status: string; kafka: Record<string, unknown> }> => {
    const res = await fetch(`${(svc as ServiceProcess).url}/health`, { signal: AbortSignal.timeout(5000) });
    return (await res.json()) as { status: string; kafka: Record<string, unknown> };
  };
  const tail = (text: string) => text.trim().split('\n').slice(-3).join(' | ');

  beforeAll(async () => {
    [kafka, influxd] = await Promise.all([startKafka(), startInfluxd()]);
    await kafka.createTopic(TOPIC, PARTITIONS);
    admin = new KafkaClient({ clientId: 'telegraf-kafka-test', brokers: [kafka.brokers], logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    traffic = startVethTraffic(200_000);
    // The service first: a new group writes what is produced after the replica started,
    // so every step Telegraf collects is the service's to score.
    svc = await startService({
      SOURCE: 'kafka',
      KAFKA_BROKERS: kafka.brokers,
      KAFKA_TOPIC: TOPIC,
      INFLUX_URL: influxd.url,
      INFLUX_DATABASE: DB,
      COLLECTION_INTERVAL_S: String(STEP_MS / 1000),
    });
    const s = svc;
    await waitUntil(
      async () => ((await health()).kafka?.partitions as number[] | undefined)?.length === PARTITIONS,
      30_000,
      `the service to join the group and hold the ${PARTITIONS} partitions (service: ${tail(s.output())})`,
    );
    telegraf = await startTelegraf({
      configPath: TELEGRAF_KAFKA_CONF,
      influxUrl: influxd.url,
      database: DB,
      intervalS: STEP_MS / 1000,
      env: { KAFKA_BROKER: kafka.brokers, KAFKA_TOPIC: TOPIC, TELEGRAF_HOSTNAME: HOST },
      extraConfig: INFLUX_OUTPUT,
    });
  }, TELEGRAF_START_TIMEOUT_MS + KAFKA_START_TIMEOUT_MS);

  afterAll(async () => {
    await telegraf?.stop();
    await svc?.stop();
    await admin?.disconnect();
    await traffic?.stop();
    await Promise.all([kafka?.stop(), influxd?.cleanup()]);
  });

  it('scores every step after Telegraf first once, with the values computed from the raw points; /health and /metrics agree', async () => {
    const s = svc as ServiceProcess;
    const tg = telegraf as Telegraf;
    const why = () => `service: ${tail(s.output())}; telegraf: ${tail(tg.logs())}`;
    let got: PredictionRow[] = [];
    await waitUntil(
      async () => (got = await predictions(influxd, HOST)).length >= MIN_PREDICTIONS,
      30_000,
      `${MIN_PREDICTIONS} predictions of host ${HOST} (${why()})`,
    );
    // Telegraf stops (flushing both outputs): from here on the raw points and the messages
    // are final, and the service scores what is left of them.
    await tg.stop();
    telegraf = undefined;

    const [cpu] = await raw(influxd, `SELECT "usage_idle" FROM "cpu" WHERE "host" = '${HOST}' AND "cpu" = 'cpu-total'`);
    const [mem] = await raw(influxd, `SELECT "used_percent" FROM "mem" WHERE "host" = '${HOST}'`);
    const nets = await raw(influxd, `SELECT "bytes_recv" FROM "net" WHERE "host" = '${HOST}' GROUP BY "interface"`);
    const idle = byStep(cpu.rows, 'cpu');
    const used = byStep(mem.rows, 'mem');
    // Network load: the per-second rate of bytes_recv between consecutive samples of each
    // interface (a counter that went down restarted from 0), summed over the interfaces
    // Telegraf kept, without the loopback (src/poller/telegraf.ts's preset).
    const load = new Map<number, number>();
    const ifaces = nets.filter((n) => n.tags.interface !== 'lo');
    expect(ifaces.map((n) => n.tags.interface)).toContain(traffic?.iface);
    for (const n of ifaces) {
      for (let i = 1; i < n.rows.length; i++) {
        const { time, value } = n.rows[i];
        const prev = n.rows[i - 1];
        const rate = (value >= prev.value ? value - prev.value : value) / ((time - prev.time) / 1000);
        const step = Math.floor(time / STEP_MS) * STEP_MS;
        load.set(step, (load.get(step) ?? 0) + rate);
      }
    }
    // Telegraf's steps, and those with all three values: every one after the first (its cpu
    // usage and rates need a previous sample); the last may be cut short by the stop.
    const steps = [...used.keys()].sort((a, b) => a - b);
    const complete = steps.filter((t) => idle.has(t) && load.has(t));
    expect(complete).toEqual(steps.slice(1, 1 + complete.length));
    expect(complete.length).toBeGreaterThanOrEqual(Math.max(MIN_PREDICTIONS, steps.length - 2));
    // One message per metric (outputs.kafka): as many as the raw points, of every input
    // (the node set's too, which the basic service counts as unused measurements).
    let nodePoints = 0;
    for (const [m, f] of [
      ['system', 'load1'],
      ['diskio', 'io_time'],
      ['swap', 'used_percent'],
      ['netstat', 'tcp_established'],
      ['nstat', 'TcpRetransSegs'],
    ])
      for (const sr of await raw(influxd, `SELECT "${f}" FROM "${m}" WHERE "host" = '${HOST}' GROUP BY *`)) nodePoints += sr.rows.length;
    expect(nodePoints).toBeGreaterThan(0);
    const points = cpu.rows.length + mem.rows.length + nets.reduce((a, n) => a + n.rows.length, 0) + nodePoints;

    // The service consumes everything Telegraf sent and writes every complete step.
    await waitUntil(
      async () => (got = await predictions(influxd, HOST)).length >= complete.length && (await health()).kafka.lag_messages === 0,
      15_000,
      `predictions of all ${complete.length} complete steps (${got.length} so far; ${why()})`,
    );
    expect(got.map((p) => p.time)).toEqual(complete);
    expect(await predictions(influxd)).toHaveLength(got.length);
    for (const p of got) {
      expect(p.host).toBe(HOST);
      expect({ time: p.time, cpu: p.cpu_val, mem: p.mem_val, net: p.net_val }).toEqual({
        time: p.time,
        cpu: 100 - (idle.get(p.time) as number),
        mem: used.get(p.time),
        net: load.get(p.time),
      });
      for (const f of ['score', 'is_anomaly', 'threshold']) expect(typeof p[f]).toBe('number');
      expect(p.cpu_val as number).toBeGreaterThanOrEqual(0);
      expect(p.cpu_val as number).toBeLessThanOrEqual(100);
      expect(p.mem_val as number).toBeGreaterThan(0);
      expect(p.mem_val as number).toBeLessThan(100);
      expect(p.net_val as number).toBeGreaterThan(0);
    }

    // routing_tag = "host": all of the host's messages went to one partition.
    const ends = await (admin as Admin).fetchTopicOffsets(TOPIC);
    const holding = ends.filter((e) => Number(e.high) > 0);
    expect(holding).toHaveLength(1);
    expect(Number(holding[0].high)).toBe(points);

    const h = await health();
    expect(h.kafka).toMatchObject({
      enabled: true,
      status: 'ok',
      topic: TOPIC,
      partitions: [0, 1, 2],
      lag_messages: 0,
      hosts: 1,
      scored: got.length,
      last_error: null,
    });

    const metrics = await (await fetch(`${s.url}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    const one = (name: string, labels = ''): number | undefined => samples(metrics, name).get(labels);
    // Every message read once (no replay: the group is new and the service started first).
    expect(one('anomaly_detector_kafka_messages_total')).toBe(points);
    expect(one('anomaly_detector_kafka_replayed_steps_total')).toBe(0);
    // Written once each: ai_predictions points of one host and time would overwrite each
    // other in InfluxDB, so duplicates show only in the counters.
    expect(one('anomaly_detector_points_scored_total', '{source="kafka"}')).toBe(got.length);
    expect(one('anomaly_detector_points_written_total')).toBe(got.length);
    for (const name of ['anomaly_detector_write_errors_total', 'anomaly_detector_write_refused_points_total'])
      expect([name, one(name) ?? 0]).toEqual([name, 0]);
    // Nothing skipped but Telegraf's first step (mem only: no cpu usage or rate yet) and the
    // node set's points (METRIC_SET=basic does not read them): no syntax or other line
    // errors, no late points.
    const skipped = Object.fromEntries(
      [...samples(metrics, 'anomaly_detector_poll_points_skipped_total')].filter(([, v]) => v > 0).map(([k, v]) => [k, v]),
    );
    expect(skipped).toEqual({ '{reason="incomplete"}': 1, '{reason="unused_measurement"}': nodePoints });

    // SIGTERM: the consumer leaves the group (the onClose hook) and the process exits 0.
    expect(await s.stop()).toBe(0);
    expect(s.output()).toContain('kafka consumer stopped');
  }, 60_000);
});
