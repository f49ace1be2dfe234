import { readFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { ArtifactError, parseArtifact, serialize, sign, contentHash, jsonSha256, type ModelArtifact } from '../../../src/core/artifact';
import { Detector } from '../../../src/core/detector';
import { trainModel } from '../../../src/core/train';
import { gaussian, MODEL_PATH, DATA_PATH } from '../../helpers/fixtures';
import { runCli } from '../../helpers/cli';

const text = readFileSync(MODEL_PATH, 'utf8');

function resigned(mutate: (a: ModelArtifact) => void): string {
  const a = JSON.parse(text) as ModelArtifact;
  mutate(a);
  return serialize(sign(a));
}

describe('model artifact', () => {
  it('loads the bundled model and verifies its checksum', () => {
    const a = parseArtifact(text);
    expect(a.sha256).toBe(contentHash(a));
    expect(a.features.map((f) => f.name)).toEqual(['cpu_usage', 'memory_usage', 'network_load']);
    expect(a.training.rows).toBeGreaterThan(1000);
    expect(new Detector(a).threshold).toBe(a.threshold.value);
  });

  it.each([
    ['truncated', text.slice(0, text.length / 2), /not valid JSON/],
    ['empty', '', /not valid JSON/],
    ['tampered threshold', text.replace(/"threshold":\{"value":([0-9.e-]+)/, '"threshold":{"value":0.1'), /checksum mismatch/],
    ['tampered split', text.replace(/"threshold":\[([-0-9.e]+),/, '"threshold":[1234.5,'), /checksum mismatch/],
    ['wrong format version', text.replace('"format_version":1', '"format_version":2'), /format_version 2 is not supported/],
    ['unknown top-level field', resigned((a) => Object.assign(a, { extra: 1 })), /invalid at/],
    ['scaler of the wrong width', resigned((a) => a.scaler.mean.push(0)), /scaler has 4 features/],
    [
      'unknown feature source',
      resigned((a) => ((a.features[0] as { source: string }).source = 'disk_usage')),
      /invalid at features.0.source/,
    ],
    ['node pointing outside the forest', resigned((a) => (a.forest.left[0] = a.forest.left.length + 5)), /children out of range/],
    ['split on a missing feature', resigned((a) => (a.forest.feature[0] = 7)), /splits on feature 7/],
  ])('rejects a %s artifact with one line', (_name, body, pattern) => {
    let err: unknown;
    try {
      parseArtifact(body, 'model artifact x.json');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ArtifactError);
    expect((err as Error).message).toMatch(pattern);
    expect((err as Error).message).not.toContain('\n');
  });

  it('is reproducible: same data, seed and timestamp give the same bytes', () => {
    const x = gaussian(500, 3, 3);
    const opts = { nEstimators: 10, maxSamples: 64, seed: 1, contamination: 0.05, createdAt: '2026-01-01T00:00:00.000Z' };
    expect(serialize(trainModel(x, 500, opts))).toBe(serialize(trainModel(x, 500, opts)));
    expect(serialize(trainModel(x, 500, { ...opts, seed: 2 }))).not.toBe(serialize(trainModel(x, 500, opts)));
  });

  it('the committed models/model.json is reproduced byte for byte by the train command from the committed data', () => {
    // Regenerate with: anomaly-detector train --data data/system_metrics.csv --promote --created-at 2026-11-27T00:00:00.000Z
    // (default seed 42, random 70/15/15 split and the default grid; the winner is trained on the training split).
    const a = parseArtifact(text);
    const dir = mkdtempSync(join(tmpdir(), 'iad-train-'));
    const r = runCli(
      [
        'train',
        '--data',
        DATA_PATH,
        '--promote',
        '--created-at',
        a.training.created_at,
        '--models-dir',
        dir,
        '--results-dir',
        dir,
        '--no-mlflow',
      ],
      {},
      120000,
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(readFileSync(join(dir, 'model.json'), 'utf8')).toBe(text);
    expect(readFileSync(join(dir, `model-${a.version}.json`), 'utf8')).toBe(text);
  }, 150000);

  it('the committed data/system_metrics.csv is reproduced byte for byte by the simulate command', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'iad-sim-')), 'data.csv');
    const r = runCli(['simulate', '--csv', out]);
    expect(r.code).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe(readFileSync(DATA_PATH, 'utf8'));
  });

  it('train stops with one line on a malformed CSV', () => {
    const dir = mkdtempSync(join(tmpdir(), 'iad-bad-'));
    const cases: Array<[string, string, RegExp]> = [
      ['empty.csv', '', /empty/],
      [
        'ragged.csv',
        'timestamp,host,cpu_usage,memory_usage,network_load\n1,a,1,2,3\n2,a,1,2\n',
        /do not have the header's 5 fields \(line 3 has 4 fields\)/,
      ],
      ['text.csv', 'timestamp,host,cpu_usage,memory_usage,network_load\n1,a,1,2,3\n2,a,high,2,3\n', /line 3 cpu_usage="high"/],
      ['nocol.csv', 'timestamp,host,cpu_usage\n1,a,1\n', /missing column\(s\) memory_usage, network_load/],
    ];
    for (const [name, body, pattern] of cases) {
      writeFileSync(join(dir, name), body);
      const r = runCli(['train', '--data', join(dir, name), '--out', join(dir, 'm.json'), '--results-dir', dir, '--no-mlflow']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(pattern);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    const missing = runCli(['train', '--data', join(dir, 'nope.csv'), '--results-dir', dir, '--no-mlflow']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/nope.csv: no such file/);
  });
});

describe('jsonSha256', () => {
  const plain = (v: unknown): string => createHash('sha256').update(JSON.stringify(v)).digest('hex');

  it('hashes exactly the bytes of JSON.stringify, field by field', () => {
    const objects: Array<Record<string, unknown>> = [
      {},
      { a: undefined },
      { a: undefined, b: 1 },
      { a: 1, b: undefined, c: () => 1, d: [1, -0, 0.1, 1e300, null], 'k"ey': 'v\u00e9"' },
      { nested: { x: [1, 2, { y: undefined }] }, n: null, s: '', t: true, date: new Date(0) },
      JSON.parse(text) as Record<string, unknown>,
    ];
    for (const o of objects) expect(jsonSha256(o)).toBe(plain(o));
  });

  it('uses the JSON given for a top-level value, by identity', () => {
    const forest = { a: [1, 2, 3] };
    const o = { x: 1, forest, y: [forest] };
    expect(jsonSha256(o, new Map([[forest, JSON.stringify(forest)]]))).toBe(plain(o));
    // Only the text is read for that value (this is what makes it cheaper).
    expect(jsonSha256(o, new Map([[forest, '"other"']]))).toBe(plain({ x: 1, forest: 'other', y: [forest] }));
  });

  it('signs as the JSON of the artifact without its checksum', () => {
    const a = JSON.parse(text) as ModelArtifact;
    const { sha256: _ignored, ...rest } = a;
    expect(contentHash(a)).toBe(plain(rest));
    expect(sign(rest).sha256).toBe(a.sha256);
    expect(sign(rest, new Map([[rest.forest, JSON.stringify(rest.forest)]])).sha256).toBe(a.sha256);
  });
});
