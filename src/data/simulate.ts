import { Rng } from '../core/random';

/** A labelled incident injected into a simulated host. */
export type IncidentKind = 'cpu_saturation' | 'memory_leak' | 'network_burst' | 'combined';
export const INCIDENT_KINDS: readonly IncidentKind[] = ['cpu_saturation', 'memory_leak', 'network_burst', 'combined'];

export interface SimulatedRow {
  /** Epoch milliseconds. */
  timestamp: number;
  host: string;
  cpu_usage: number;
  memory_usage: number;
  network_load: number;
  anomaly: 0 | 1;
  incident: IncidentKind | '';
}

export interface SimulateOptions {
  hosts: number;
  /** First timestamp, epoch ms. */
  start: number;
  /** Number of steps per host. */
  steps: number;
  /** Step in seconds. */
  stepS: number;
  seed: number;
  /** Expected incidents per host per day. */
  incidentsPerDay: number;
  /**
   * `uniform` (default): similar hosts (CPU 15-55 %, memory 35-65 %), as the bundled model
   * was trained on. `fleet`: very different normals in turn (a batch host at 85-95 % CPU, an
   * idle one at 1-3 %, one moving 50 MB/s, a cache at 90 % memory, a web host), with
   * incidents relative to each host's normal.
   */
  profile?: 'uniform' | 'fleet';
}

export const DEFAULT_SIMULATION: SimulateOptions = {
  hosts: 4,
  start: Date.UTC(2026, 0, 5, 0, 0, 0),
  steps: 3 * 24 * 60,
  stepS: 60,
  seed: 7,
  incidentsPerDay: 3,
};

interface HostProfile {
  name: string;
  cpuBase: number;
  cpuAmp: number;
  /** CPU noise (sd, percent points). */
  cpuNoise: number;
  memBase: number;
  netBase: number;
  phase: number;
  /** Incident kinds that are incidents for this host (a batch host at 99 % CPU is not one). */
  kinds: readonly IncidentKind[];
}

/** The heterogeneous fleet's host kinds, in turn. */
export const FLEET_KINDS = ['batch', 'idle', 'network', 'cache', 'web'] as const;

function fleetProfile(i: number, rng: Rng): HostProfile {
  const kind = FLEET_KINDS[i % FLEET_KINDS.length];
  const name = `${kind}-${String(Math.floor(i / FLEET_KINDS.length) + 1).padStart(2, '0')}`;
  const phase = rng.next() * 2 * Math.PI * 0.2;
  switch (kind) {
    case 'batch':
      return {
        name,
        cpuBase: 86,
        cpuAmp: 6,
        cpuNoise: 1.5,
        memBase: 45 + 10 * rng.next(),
        netBase: 5e5,
        phase,
        kinds: ['memory_leak', 'network_burst'],
      };
    case 'idle':
      return {
        name,
        cpuBase: 1.2,
        cpuAmp: 1.2,
        cpuNoise: 0.3,
        memBase: 6 + 2 * rng.next(),
        netBase: 2e3,
        phase,
        kinds: ['cpu_saturation', 'memory_leak', 'network_burst', 'combined'],
      };
    case 'network':
      return {
        name,
        cpuBase: 25,
        cpuAmp: 10,
        cpuNoise: 2,
        memBase: 40,
        netBase: 4e7,
        phase,
        kinds: ['cpu_saturation', 'memory_leak', 'combined'],
      };
    case 'cache':
      return {
        name,
        cpuBase: 12,
        cpuAmp: 6,
        cpuNoise: 2,
        memBase: 89 + 2 * rng.next(),
        netBase: 3e6,
        phase,
        kinds: ['cpu_saturation', 'network_burst'],
      };
    default:
      return {
        name,
        cpuBase: 15 + 20 * rng.next(),
        cpuAmp: 8 + 12 * rng.next(),
        cpuNoise: 3,
        memBase: 35 + 20 * rng.next(),
        netBase: 2e5 + 8e5 * rng.next(),
        phase,
        kinds: INCIDENT_KINDS,
      };
  }
}

interface Incident {
  kind: IncidentKind;
  start: number;
  length: number;
  magnitude: number;
}

const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));

/**
 * A host's incident schedule: non-overlapping incidents of 10 to 45 steps, at least
 * two hours apart, of every kind in turn (so each host sees each kind).
 */
function schedule(rng: Rng, opts: SimulateOptions, hostIndex: number, kinds: readonly IncidentKind[] = INCIDENT_KINDS): Incident[] {
  const stepsPerDay = (24 * 3600) / opts.stepS;
  const expected = Math.max(1, Math.round((opts.steps / stepsPerDay) * opts.incidentsPerDay));
  const gap = Math.floor(opts.steps / expected);
  const out: Incident[] = [];
  for (let k = 0; k < expected; k++) {
    const length = 10 + rng.int(36);
    const earliest = k * gap + Math.min(120, Math.floor(gap / 4));
    const latest = (k + 1) * gap - length - 1;
    if (latest <= earliest) continue;
    out.push({
      kind: kinds[(k + hostIndex) % kinds.length],
      start: earliest + rng.int(latest - earliest),
      length,
      magnitude: 0.7 + 0.3 * rng.next(),
    });
  }
  return out;
}

/**
 * Generates labelled host metrics: a daily load cycle with noise, slow memory drift
 * and small garbage-collection dips, plus labelled incidents (CPU saturation, memory
 * leak ramp, network burst, all three at once). Deterministic for a given seed.
 */
export function simulate(opts: SimulateOptions = DEFAULT_SIMULATION): SimulatedRow[] {
  const rng = new Rng(opts.seed);
  const fleet = opts.profile === 'fleet';
  // The uniform hosts draw their numbers in the original order (same rows for a seed).
  const hosts: HostProfile[] = Array.from({ length: opts.hosts }, (_, i) =>
    fleet
      ? fleetProfile(i, rng)
      : {
          name: `host-${String(i + 1).padStart(2, '0')}`,
          cpuBase: 15 + 20 * rng.next(),
          cpuAmp: 8 + 12 * rng.next(),
          cpuNoise: 3,
          memBase: 35 + 20 * rng.next(),
          netBase: 2e5 + 8e5 * rng.next(),
          phase: rng.next() * 2 * Math.PI * 0.2,
          kinds: INCIDENT_KINDS,
        },
  );
  const schedules = hosts.map((h, i) => schedule(rng, opts, i, h.kinds));
  const rows: SimulatedRow[] = [];
  const mem = hosts.map((h) => h.memBase);
  for (let s = 0; s < opts.steps; s++) {
    const timestamp = opts.start + s * opts.stepS * 1000;
    const dayFrac = ((timestamp / 1000) % 86400) / 86400;
    for (let h = 0; h < hosts.length; h++) {
      const p = hosts[h];
      // Busy in the (UTC) afternoon, quiet at night.
      const load = 0.5 + 0.5 * Math.sin(2 * Math.PI * (dayFrac - 0.25) + p.phase);
      let cpu = p.cpuBase + p.cpuAmp * load + rng.normal() * p.cpuNoise;
      // Memory: mean-reverting random walk around the base, a little higher under load.
      mem[h] += 0.05 * (p.memBase + 6 * load - mem[h]) + rng.normal() * 0.6;
      let memory = mem[h];
      let net = p.netBase * (0.6 + 0.8 * load) * Math.exp(rng.normal() * 0.15);
      let anomaly: 0 | 1 = 0;
      let incident: IncidentKind | '' = '';
      for (const inc of schedules[h]) {
        if (s < inc.start || s >= inc.start + inc.length) continue;
        anomaly = 1;
        incident = inc.kind;
        const progress = (s - inc.start + 1) / inc.length;
        const m = inc.magnitude;
        // Relative to the host's normal: an idle host at 40 % CPU is an incident.
        if (inc.kind === 'cpu_saturation' || inc.kind === 'combined')
          cpu = fleet ? Math.min(99.5, p.cpuBase + p.cpuAmp + 35 + 20 * m + rng.normal() * 1.5) : 88 + 11 * m + rng.normal() * 1.5;
        if (inc.kind === 'memory_leak' || inc.kind === 'combined')
          memory = fleet
            ? memory + Math.min(97 - memory, 25 + 10 * m) * Math.min(1, 0.35 + progress)
            : memory + (97 - memory) * Math.min(1, 0.35 + progress) * m;
        if (inc.kind === 'network_burst' || inc.kind === 'combined') net = net * (8 + 12 * m) * Math.exp(rng.normal() * 0.1);
      }
      rows.push({
        timestamp,
        host: p.name,
        cpu_usage: round(clamp(cpu, 0, 100), 3),
        memory_usage: round(clamp(memory, 0, 100), 3),
        network_load: round(Math.max(0, net), 1),
        anomaly,
        incident,
      });
    }
  }
  return rows;
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
