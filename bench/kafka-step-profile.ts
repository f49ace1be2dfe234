import { resolve } from 'node:path';
import { DEFAULT_GATE } from '../src/core/gate';
import { hostLearningOptions } from '../src/core/host-learning';
import { StreamingDetector } from '../src/core/streaming';
import { DEFAULT_SIMULATION, simulate } from '../src/data/simulate';
import { TelegrafEncoder } from '../src/data/telegraf-sim';
import { PartitionStream } from '../src/kafka/partition';
import { loadDetectorFile } from '../src/model-store';
import { telegrafPreset } from '../src/poller/telegraf';
import { parseLine } from '../src/influx/line-parser';

const HOSTS = Number(process.env.BENCH_HOSTS ?? 250);
const STEPS = Number(process.env.BENCH_STEPS ?? 100);
const rows = simulate({ ...DEFAULT_SIMULATION, hosts: HOSTS, steps: STEPS, stepS: 10, start: Date.parse('2026-11-20T00:00:00Z'), seed: 4 });
rows.sort((a, b) => a.timestamp - b.timestamp || (a.host < b.host ? -1 : 1));
const enc = new TelegrafEncoder(4, 'ns');
const msgs = rows.flatMap((r) => enc.lines(r, 10, false)).map((l, i) => ({ offset: BigInt(i), value: Buffer.from(l) }));
const prior = loadDetectorFile(resolve(__dirname, '..', '..', 'models', 'model.json'));
let t = performance.now();
for (const m of msgs) parseLine(m.value.toString());
console.log('parse only', ((performance.now() - t) / 1000).toFixed(2), 's for', msgs.length);
const s = new PartitionStream(
  0,
  StreamingDetector.learner(hostLearningOptions({ prior, gate: DEFAULT_GATE, maxKeys: 1e6 })),
  telegrafPreset(),
  10_000,
  0n,
);
const warm = Math.floor(msgs.length / 2);
for (let a = 0; a < warm; a += 5000) s.process(msgs.slice(a, Math.min(warm, a + 5000)));
const before = s.engine.stats().refits;
t = performance.now();
let n = 0;
for (let a = warm; a < msgs.length; a += 5000) n += s.process(msgs.slice(a, a + 5000)).n;
console.log('refits while timed', s.engine.stats().refits - before);
const secs = (performance.now() - t) / 1000;
console.log('partition stream', secs.toFixed(2), 's', n, 'rows', Math.round(n / secs), 'rows/s', JSON.stringify(s.engine.stats()));
