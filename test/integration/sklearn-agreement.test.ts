import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { Detector } from '../../src/core/detector';
import { trainModel } from '../../src/core/train';
import { loadDataset } from '../../src/data/dataset';
import { rocAuc, spearman } from '../../src/eval/metrics';
import { DATA_PATH, ROOT } from '../helpers/fixtures';
import { sklearnPython } from '../helpers/python';

describe('agreement with scikit-learn IsolationForest on the labelled data', () => {
  it('ROC-AUC within 0.02 and Spearman rank correlation >= 0.9', () => {
    const python = sklearnPython();
    const out = execFileSync(python, [resolve(ROOT, 'scripts', 'sklearn_scores.py'), DATA_PATH, '100', '256', '0'], {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
      timeout: 300000,
    });
    const sk = (JSON.parse(out) as { scores: number[] }).scores;
    const ds = loadDataset(DATA_PATH);
    const ours = new Detector(
      trainModel(ds.raw, ds.n, { nEstimators: 100, maxSamples: 256, seed: 0, contamination: 0.05, createdAt: '2026-01-01T00:00:00Z' }),
    ).scoreRaw(ds.raw, ds.n).scores;
    const labels = ds.labels as Uint8Array;
    const aucOurs = rocAuc(ours, labels);
    const aucSk = rocAuc(sk, labels);
    const rho = spearman(ours, sk);
    process.stdout.write(`ROC-AUC ours ${aucOurs.toFixed(4)} scikit-learn ${aucSk.toFixed(4)}; Spearman ${rho.toFixed(4)}\n`);
    expect(sk).toHaveLength(ds.n);
    expect(Math.abs(aucOurs - aucSk)).toBeLessThanOrEqual(0.02);
    expect(rho).toBeGreaterThanOrEqual(0.9);
    expect(aucOurs).toBeGreaterThan(0.8);
  });
});
