import { isoTimestamp } from '../validation/point';

/** What /detect answers for a batch, in the request's order (n points, m metrics). */
export interface DetectRows {
  n: number;
  hosts: ReadonlyArray<string | undefined>;
  /** Epoch ms of each point; NaN: none given. */
  times: Float64Array;
  scores: Float64Array;
  /** The threshold of each point, or one for all. */
  thresholds: Float64Array | number;
  /** n x m, row-major, in the set's order. */
  contributions: Float64Array;
  /** DETECT_LEARN only: 1 where the host is still learning, 1 where the gate fired. */
  learning?: Uint8Array;
  alerts?: Uint8Array;
}

/** A JSON number as fast-json-stringify writes one (infinities as null; NaN is a bug, never sent). */
function num(v: number): string {
  if (v !== v) throw new Error('a score or contribution is NaN');
  return v === Infinity || v === -Infinity ? 'null' : '' + v;
}

/**
 * The body of a /detect reply (DetectResponse), written straight from the scoring arrays:
 * no result objects to build and no serializer to walk them. Key order and number and
 * string forms are those of the response schema's serializer (fast-json-stringify),
 * byte for byte (test/api/three-fields-golden.test.ts holds the replies it gave), and
 * `contributions` has one key per metric of the set.
 */
export function detectReplyWriter(names: readonly string[]): (version: string, r: DetectRows) => string {
  const m = names.length;
  // ',"cpu_usage":' ..., the first without its comma.
  const keys = names.map((name, k) => `${k === 0 ? '' : ','}${JSON.stringify(name)}:`);
  return (version, r) => {
    const { hosts, times, scores, thresholds, contributions: c, learning, alerts } = r;
    const one = typeof thresholds === 'number';
    let out = `{"model":{"version":${JSON.stringify(version)}},"results":[`;
    for (let i = 0; i < r.n; i++) {
      const host = hosts[i];
      const t = times[i];
      const score = scores[i];
      const threshold = one ? thresholds : thresholds[i];
      out +=
        (i === 0 ? '{"host":' : ',{"host":') +
        (host === undefined ? 'null' : JSON.stringify(host)) +
        (t !== t ? ',"timestamp":null' : `,"timestamp":"${isoTimestamp(t)}"`) +
        ',"score":' +
        num(score) +
        ',"threshold":' +
        num(threshold) +
        (score > threshold ? ',"is_anomaly":true' : ',"is_anomaly":false') +
        ',"severity":' +
        num(threshold > 0 ? score / threshold : 0) +
        ',"contributions":{';
      const row = i * m;
      for (let k = 0; k < m; k++) out += keys[k] + num(c[row + k]);
      out += '}';
      if (learning) out += learning[i] === 1 ? ',"learning":true' : ',"learning":false';
      if (alerts) out += alerts[i] === 1 ? ',"alert":true' : ',"alert":false';
      out += '}';
    }
    return `${out}]}`;
  };
}
