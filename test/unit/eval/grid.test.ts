import { Rng } from '../../../src/core/random';
import { DEFAULT_GRID, gridPoints, runGrid, selectBest, type GridResult } from '../../../src/eval/grid';
import type { Part } from '../../../src/eval/split';
import { decideChampion } from '../../../src/mlflow/tracking';

/** Host-like rows: normal load, and a share of labelled incidents far from it. */
function synth(n: number, anomalyShare: number, seed: number): Part {
  const rng = new Rng(seed);
  const raw = new Float64Array(n * 3);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const bad = rng.next() < anomalyShare;
    labels[i] = bad ? 1 : 0;
    raw[i * 3] = bad ? 90 + 5 * rng.next() : 30 + 5 * rng.normal();
    raw[i * 3 + 1] = bad ? 85 + 5 * rng.next() : 50 + 4 * rng.normal();
    raw[i * 3 + 2] = bad ? 5e6 * (1 + rng.next()) : 5e5 + 5e4 * rng.normal();
  }
  return { n, raw, labels, timestamps: Array.from({ length: n }, (_, i) => i), hosts: new Array(n).fill('h') };
}

function result(step: number, over: Partial<GridResult> & { f1?: number; pr_auc?: number | null }): GridResult {
  const { f1, pr_auc, ...rest } = over;
  return {
    step,
    contamination: 0.05,
    nEstimators: 100,
    maxSamples: 256,
    subsample: 256,
    version: `v${step}`,
    threshold: 0.6,
    val_flagged_fraction: 0.05,
    fraction_gap: 0,
    val:
      f1 === undefined
        ? null
        : {
            precision: 0,
            recall: 0,
            f1,
            roc_auc: 0.9,
            pr_auc: pr_auc === undefined ? 0.5 : pr_auc,
            confusion: { tp: 0, fp: 0, tn: 0, fn: 0 },
            positives: 1,
            negatives: 1,
          },
    train_ms: 1,
    ...rest,
  };
}

const labelled = { present: true, valPositives: 10, valNegatives: 90 };

describe('grid', () => {
  it('has the 18 default points, contamination outermost', () => {
    expect(DEFAULT_GRID).toEqual({ contamination: [0.01, 0.05, 0.1], nEstimators: [100, 200], maxSamples: [128, 256, 512] });
    const pts = gridPoints(DEFAULT_GRID);
    expect(pts).toHaveLength(18);
    expect(pts[0]).toEqual({ contamination: 0.01, nEstimators: 100, maxSamples: 128 });
    expect(pts[1]).toEqual({ contamination: 0.01, nEstimators: 100, maxSamples: 256 });
    expect(pts[17]).toEqual({ contamination: 0.1, nEstimators: 200, maxSamples: 512 });
    expect(() => gridPoints({ contamination: [], nEstimators: [1], maxSamples: [2] })).toThrow(/empty/);
  });

  it('with labels: highest validation F1; ties by PR-AUC, then the earlier point', () => {
    const rs = [
      result(0, { f1: 0.5 }),
      result(1, { f1: 0.8, pr_auc: 0.6 }),
      result(2, { f1: 0.8, pr_auc: 0.7 }),
      result(3, { f1: 0.8, pr_auc: 0.7 }),
      result(4, { f1: 0.2, fraction_gap: 0 }),
    ];
    const s = selectBest(rs, labelled);
    expect(s).toMatchObject({ index: 2, rule: 'validation_f1' });
    expect(s.explanation).toMatch(/highest validation F1 against the data's labels/);
  });

  it("without labels: the prototype's rule (flagged fraction closest to contamination), and says so", () => {
    const rs = [
      result(0, { fraction_gap: 0.02 }),
      result(1, { fraction_gap: 0.004 }),
      result(2, { fraction_gap: 0.01 }),
      result(3, { fraction_gap: 0.004 }),
    ];
    const s = selectBest(rs, { present: false, valPositives: 0, valNegatives: 0 });
    expect(s).toMatchObject({ index: 1, rule: 'flagged_fraction_closest_to_contamination' });
    expect(s.explanation).toMatch(/^the data has no labels, .*prototype's label-free rule.*says nothing about accuracy/);
  });

  it('labels whose validation part lacks a class fall back to the label-free rule and say why', () => {
    const rs = [result(0, { f1: 0, fraction_gap: 0.03 }), result(1, { f1: 0, fraction_gap: 0.01 })];
    const s = selectBest(rs, { present: true, valPositives: 0, valNegatives: 100 });
    expect(s).toMatchObject({ index: 1, rule: 'flagged_fraction_closest_to_contamination' });
    expect(s.explanation).toMatch(/^the validation part has no labelled anomaly/);
  });

  it('trains every point and scores the validation part: picks the contamination that matches the incidents, deterministically', () => {
    const train = synth(3000, 0.05, 1);
    const val = synth(1000, 0.05, 2);
    const spec = { contamination: [0.01, 0.05, 0.2], nEstimators: [30], maxSamples: [64, 128] };
    const seen: number[] = [];
    const a = runGrid(train, val, spec, {
      seed: 7,
      createdAt: '2026-01-01T00:00:00.000Z',
      dataSha256: 'a'.repeat(64),
      onStep: (done) => seen.push(done),
    });
    expect(seen).toEqual([1, 2, 3, 4, 5, 6]);
    expect(a.map((r) => [r.contamination, r.maxSamples])).toEqual([
      [0.01, 64],
      [0.01, 128],
      [0.05, 64],
      [0.05, 128],
      [0.2, 64],
      [0.2, 128],
    ]);
    for (const r of a) {
      expect(r.val).not.toBeNull();
      expect(r.fraction_gap).toBeCloseTo(Math.abs(r.val_flagged_fraction - r.contamination), 12);
    }
    let pos = 0;
    for (const l of val.labels as Uint8Array) pos += l;
    const s = selectBest(a, { present: true, valPositives: pos, valNegatives: val.n - pos });
    expect(a[s.index].contamination).toBe(0.05);
    expect(a[s.index].val?.f1).toBeGreaterThan(0.9);
    // c = 0.01 misses most incidents, c = 0.2 flags many normal rows.
    expect(a[0].val?.recall).toBeLessThan(0.5);
    expect(a[4].val?.precision).toBeLessThan(0.5);
    const b = runGrid(train, val, spec, { seed: 7, createdAt: '2026-01-01T00:00:00.000Z', dataSha256: 'a'.repeat(64) });
    const strip = (rs: GridResult[]) => rs.map(({ train_ms: _t, ...r }) => r);
    expect(strip(b)).toEqual(strip(a));
  });
});

describe('champion decision', () => {
  const champ = { version: '3', metrics: { f1: 0.8, pr_auc: 0.9 } };
  it.each([
    ['promote always moves', { f1: 0.1, pr_auc: 0.1 }, champ, true, true, /^--promote \(replaces version 3\)/],
    ['no champion yet', { f1: 0.1, pr_auc: 0.1 }, null, false, true, /no champion yet/],
    [
      'unusable champion',
      { f1: 0.1, pr_auc: 0.1 },
      { version: '3', metrics: null, unusable: 'checksum mismatch' },
      false,
      true,
      /unusable: checksum mismatch/,
    ],
    ['no labels never beats a champion', null, champ, false, false, /no labels.*--promote/],
    ['higher F1 beats', { f1: 0.81, pr_auc: 0.5 }, champ, false, true, /^beats the champion \(version 3\): test F1 0\.8100 vs 0\.8000/],
    ['equal F1, higher PR-AUC beats', { f1: 0.8, pr_auc: 0.95 }, champ, false, true, /^ties the champion/],
    ['equal F1 and PR-AUC does not', { f1: 0.8, pr_auc: 0.9 }, champ, false, false, /^does not beat/],
    ['lower F1 does not', { f1: 0.79, pr_auc: 1 }, champ, false, false, /^does not beat/],
  ])('%s', (_name, cand, ch, promote, move, reason) => {
    const d = decideChampion(cand, ch, promote);
    expect(d.move).toBe(move);
    expect(d.reason).toMatch(reason);
  });
});
