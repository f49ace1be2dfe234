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

/** Replies of at most this many points are handed over as strings. */
const SHORT_REPLY_POINTS = 64;

/** Characters JSON.stringify escapes in a string (lone surrogates among them). */
// eslint-disable-next-line no-control-regex -- the control characters are what JSON escapes
const NEEDS_ESCAPE = /[\u0000-\u001f"\\\ud800-\udfff]/;

/** JSON.stringify(s), without its call for the common host name. */
const quote = (s: string): string => (s.length < 256 && !NEEDS_ESCAPE.test(s) ? `"${s}"` : JSON.stringify(s));

/**
 * The body of a /detect reply (DetectResponse), written straight from the scoring arrays:
 * no result objects to build and no serializer to walk them, and handed to Fastify as a
 * Buffer when it is long (a string of the whole reply would be measured for its UTF-8 length and encoded
 * again by the socket). Key order and number and string forms are those of the response
 * schema's serializer (fast-json-stringify), byte for byte (test/api/three-fields-golden.test.ts
 * holds the replies it gave), and `contributions` has one key per metric of the set.
 */
export function detectReplyWriter(names: readonly string[]): (version: string, r: DetectRows) => Buffer | string {
  const m = names.length;
  // ',"memory_usage":' ..., the first (keys[0]) without its comma.
  const keys = names.map((name, k) => `${k === 0 ? '' : ','}${JSON.stringify(name)}:`);
  const open = `,"contributions":{${keys[0] ?? ''}`;
  return (version, r) => {
    const { hosts, times, scores, thresholds, contributions: c, learning, alerts } = r;
    const one = typeof thresholds === 'number';
    // One threshold for all: written once, with the constant text around it.
    const shared = one ? num(thresholds) : '';
    const sharedAnomalous = `,"threshold":${shared},"is_anomaly":true,"severity":`;
    const sharedNormal = `,"threshold":${shared},"is_anomaly":false,"severity":`;
    let out = `{"model":{"version":${JSON.stringify(version)}},"results":[`;
    // Points of a host often come together: its name is quoted once per run.
    let lastHost: string | undefined;
    let quoted = 'null';
    for (let i = 0; i < r.n; i++) {
      const host = hosts[i];
      if (host !== lastHost || i === 0) {
        lastHost = host;
        quoted = host === undefined ? 'null' : quote(host);
      }
      const t = times[i];
      const score = scores[i];
      const threshold = one ? thresholds : thresholds[i];
      const anomalous = score > threshold;
      let s =
        (i === 0 ? '{"host":' : ',{"host":') +
        quoted +
        (t !== t ? ',"timestamp":null,"score":' : `,"timestamp":"${isoTimestamp(t)}","score":`) +
        num(score) +
        (one
          ? anomalous
            ? sharedAnomalous
            : sharedNormal
          : `,"threshold":${num(threshold)}${anomalous ? ',"is_anomaly":true' : ',"is_anomaly":false'},"severity":`) +
        num(threshold > 0 ? score / threshold : 0) +
        open +
        (m > 0 ? num(c[i * m]) : '');
      for (let k = 1; k < m; k++) s += keys[k] + num(c[i * m + k]);
      s += '}';
      if (learning) s += learning[i] === 1 ? ',"learning":true' : ',"learning":false';
      if (alerts) s += alerts[i] === 1 ? ',"alert":true' : ',"alert":false';
      out += `${s}}`;
    }
    // A short reply is cheaper as a string than a Buffer of its own.
    return r.n <= SHORT_REPLY_POINTS ? `${out}]}` : Buffer.from(`${out}]}`, 'utf8');
  };
}
