import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli';
import { DATA_PATH, MODEL_PATH } from '../helpers/fixtures';
import { loadDetectorFile } from '../../src/model-store';
import { freePort } from '../helpers/ports';

/**
 * Issue 11 item 15: every expected failure of a command is one line on stderr
 * (`anomaly-detector: ...`) and exit 1, never a stack trace.
 */
describe('CLI failures', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cli-errors-'));
  let down: string;
  beforeAll(async () => {
    down = `http://127.0.0.1:${await freePort()}`;
  });

  const range = ['--from', '2026-01-01T00:00:00Z', '--to', '2026-01-01T02:00:00Z'];
  const cases: Array<[string, () => [string[], NodeJS.ProcessEnv], RegExp]> = [
    [
      'backfill with InfluxDB down',
      () => [['backfill', ...range], { INFLUX_URL: down, MODEL_PATH }],
      /^anomaly-detector: InfluxDB query failed: connect ECONNREFUSED/,
    ],
    [
      'export with InfluxDB down',
      () => [['export', ...range, '--out', join(dir, 'x.csv')], { INFLUX_URL: down }],
      /^anomaly-detector: InfluxDB query failed: connect ECONNREFUSED/,
    ],
    [
      'simulate --influx with InfluxDB down',
      () => [['simulate', '--influx', down, ...range], {}],
      /^anomaly-detector: InfluxDB (query|write) failed: connect ECONNREFUSED/,
    ],
    [
      'backfill with both a token and a username',
      () => [['backfill', ...range], { INFLUX_URL: down, INFLUX_TOKEN: 't', INFLUX_USERNAME: 'u' }],
      /^anomaly-detector: invalid configuration: .*INFLUX_TOKEN.*INFLUX_USERNAME/,
    ],
    [
      'backfill --from an impossible date',
      () => [['backfill', '--from', '2026-02-30T00:00:00Z'], { INFLUX_URL: down }],
      /^anomaly-detector: --from: "2026-02-30T00:00:00Z" is not an RFC 3339 time/,
    ],
    ['sign without MODEL_SIGNING_KEY', () => [['sign', '--model', MODEL_PATH], {}], /^anomaly-detector: MODEL_SIGNING_KEY is not set/],
    [
      'sign a corrupted artifact',
      () => {
        const p = join(dir, 'bad.json');
        writeFileSync(p, readFileSync(MODEL_PATH, 'utf8').replace('"threshold":{"value":', '"threshold":{"value":1'));
        return [['sign', '--model', p], { MODEL_SIGNING_KEY: 'k'.repeat(20) }];
      },
      /^anomaly-detector: model artifact .*bad\.json: (checksum mismatch|invalid)/,
    ],
    [
      'backfill with an unsigned model while MODEL_SIGNING_KEY is set',
      () => [['backfill', ...range], { INFLUX_URL: down, MODEL_PATH, MODEL_SIGNING_KEY: 'k'.repeat(20) }],
      /^anomaly-detector: model artifact .*: unsigned; MODEL_SIGNING_KEY is set/,
    ],
    [
      'simulate --csv into a path that cannot be written',
      () => [['simulate', '--csv', '/dev/null/x.csv', '--hosts', '1', '--days', '0.01'], {}],
      /^anomaly-detector: (EEXIST|ENOTDIR)[^\n]*\/dev\/null/,
    ],
    [
      'train with more trees than a served model may have',
      () => [['train', '--data', DATA_PATH, '--n-estimators', '1001', '--no-mlflow'], {}],
      /^anomaly-detector: --n-estimators: "1001" is not an integer in \[1, 1000\]/,
    ],
    [
      'train with a forest of more nodes than a served model may have',
      () => [
        [
          'train',
          '--data',
          DATA_PATH,
          '--n-estimators',
          '1000',
          '--max-samples',
          '4096',
          '--no-mlflow',
          '--models-dir',
          dir,
          '--results-dir',
          dir,
        ],
        {},
      ],
      /^anomaly-detector: --n-estimators x --max-samples: up to \d+ nodes, more than the 2500000/,
    ],
    ['an unknown command', () => [['frobnicate'], {}], /^anomaly-detector: unknown command 'frobnicate'/],
    ['train without --data', () => [['train', '--no-mlflow'], {}], /^anomaly-detector: required option '--data <file>' not specified/],
    ['train with an unknown option', () => [['train', '--data', DATA_PATH, '--bogus'], {}], /^anomaly-detector: unknown option '--bogus'/],
    [
      'validate a file that does not exist',
      () => [['validate', '--data', join(dir, 'nope.csv')], {}],
      /^anomaly-detector: .*nope\.csv: no such file/,
    ],
    [
      'evaluate a corrupted model',
      () => {
        const p = join(dir, 'truncated.json');
        writeFileSync(p, '{');
        return [['evaluate', '--model', p, '--data', DATA_PATH], {}];
      },
      /^anomaly-detector: .*truncated\.json: not valid JSON/,
    ],
    [
      'evaluate --learn with a random split',
      () => [['evaluate', '--learn', '--data', DATA_PATH, '--split', 'random'], {}],
      /^anomaly-detector: --learn streams every host in time order .*: a random split has no meaning for it/,
    ],
    [
      'serve without its model file',
      () => [['serve'], { MODEL_PATH: join(dir, 'nope.json') }],
      /^anomaly-detector: cannot start: model artifact .*nope\.json/,
    ],
    [
      'bench smd on a folder that does not exist',
      () => [['bench', 'smd', '--smd-dir', join(dir, 'nope'), '--out', dir], {}],
      /^anomaly-detector: --smd-dir: .* does not exist/,
    ],
    ...(
      [
        ['{"maxSamples":0}', /--params: maxSamples must be an integer >= 2, got 0/],
        ['{"transforms":["bogus"]}', /--params: unknown transform "bogus"/],
        ['{"gate":null}', /--params: gate must be an object/],
        ['{"contamination":2}', /--params: contamination must be a number in \(0, 0\.5\)/],
      ] as const
    ).map(([json, pattern], i): (typeof cases)[number] => [
      `bench smd --params ${json}`,
      () => {
        const p = join(dir, `smd-params-${i}.json`);
        writeFileSync(p, json);
        return [['bench', 'smd', '--smd-dir', dir, '--out', join(dir, 'smd-out'), '--params', p], {}];
      },
      new RegExp(`^anomaly-detector: ${pattern.source}`),
    ]),
  ];

  it.each(cases)('%s: one line, exit 1', (_name, make, pattern) => {
    const [args, env] = make();
    const r = runCli(args, env, 30_000);
    expect([r.code, r.stderr]).toEqual([1, expect.stringMatching(pattern)]);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('a signed artifact round-trips through sign and loads with the key', () => {
    const p = join(dir, 'signed.json');
    writeFileSync(p, readFileSync(MODEL_PATH, 'utf8'));
    const r = runCli(['sign', '--model', p], { MODEL_SIGNING_KEY: 'k'.repeat(20) });
    expect([r.code, r.stdout]).toEqual([0, expect.stringMatching(/^signed .* \(sha256 [0-9a-f]{12}\.\.\.\): /)]);
    expect(JSON.parse(readFileSync(p, 'utf8')).signature.alg).toBe('hmac-sha256');
  });

  it('train signs the artifact when MODEL_SIGNING_KEY is set; the service loads it with that key only', () => {
    const key = 'k'.repeat(20);
    const out = join(dir, 'trained.json');
    const r = runCli(
      [
        'train',
        '--data',
        DATA_PATH,
        '--n-estimators',
        '10',
        '--max-samples',
        '32',
        '--contamination',
        '0.05',
        '--no-mlflow',
        '--out',
        out,
        '--models-dir',
        dir,
        '--results-dir',
        join(dir, 'r'),
      ],
      { MODEL_SIGNING_KEY: key },
    );
    expect([r.code, r.stdout]).toEqual([0, expect.stringContaining('signed with MODEL_SIGNING_KEY (HMAC-SHA256)')]);
    expect(loadDetectorFile(out, { signingKey: key }).version).toMatch(/^\d{8}-/);
    expect(() => loadDetectorFile(out, { signingKey: `${key}x` })).toThrow(/signature does not match/);
  });
});
