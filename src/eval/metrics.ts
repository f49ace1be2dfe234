/**
 * Classification metrics for anomaly scores against 0/1 labels. Higher scores mean
 * more anomalous; ties are handled exactly (ROC-AUC counts a tie as half).
 */

/** Area under the ROC curve (Mann-Whitney U with average ranks). NaN without both classes. */
export function rocAuc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const n = scores.length;
  const ranks = averageRanks(scores);
  let pos = 0;
  let rankSum = 0;
  for (let i = 0; i < n; i++) {
    if (labels[i] === 1) {
      pos++;
      rankSum += ranks[i];
    }
  }
  const neg = n - pos;
  if (pos === 0 || neg === 0) return NaN;
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}

/** Area under the precision-recall curve as average precision (scikit-learn's definition). */
export function averagePrecision(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const order = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[b] - scores[a]);
  let totalPos = 0;
  for (let i = 0; i < labels.length; i++) totalPos += labels[i] === 1 ? 1 : 0;
  if (totalPos === 0) return NaN;
  let tp = 0;
  let fp = 0;
  let ap = 0;
  let prevRecall = 0;
  for (let k = 0; k < order.length; k++) {
    const i = order[k];
    if (labels[i] === 1) tp++;
    else fp++;
    // Only at the end of a run of tied scores is a threshold possible.
    if (k + 1 < order.length && scores[order[k + 1]] === scores[i]) continue;
    const recall = tp / totalPos;
    ap += (recall - prevRecall) * (tp / (tp + fp));
    prevRecall = recall;
  }
  return ap;
}

/** Points of the ROC curve (fpr, tpr), one per distinct score, for plots. */
export function rocCurve(scores: ArrayLike<number>, labels: ArrayLike<number>): Array<{ fpr: number; tpr: number; threshold: number }> {
  return sweep(scores, labels).map((p) => ({ fpr: p.fp / p.negatives, tpr: p.tp / p.positives, threshold: p.threshold }));
}

/** Points of the precision-recall curve, one per distinct score, for plots. */
export function prCurve(
  scores: ArrayLike<number>,
  labels: ArrayLike<number>,
): Array<{ recall: number; precision: number; threshold: number }> {
  return sweep(scores, labels)
    .filter((p) => p.tp + p.fp > 0)
    .map((p) => ({ recall: p.tp / p.positives, precision: p.tp / (p.tp + p.fp), threshold: p.threshold }));
}

function sweep(scores: ArrayLike<number>, labels: ArrayLike<number>) {
  const order = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[b] - scores[a]);
  let positives = 0;
  for (let i = 0; i < labels.length; i++) positives += labels[i] === 1 ? 1 : 0;
  const negatives = labels.length - positives;
  const out = [{ tp: 0, fp: 0, positives, negatives, threshold: Infinity }];
  let tp = 0;
  let fp = 0;
  for (let k = 0; k < order.length; k++) {
    const i = order[k];
    if (labels[i] === 1) tp++;
    else fp++;
    if (k + 1 < order.length && scores[order[k + 1]] === scores[i]) continue;
    out.push({ tp, fp, positives, negatives, threshold: scores[i] });
  }
  return out;
}

/** Confusion matrix and derived figures for binary predictions. */
export interface BinaryMetrics {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
  precision: number;
  recall: number;
  f1: number;
}

/** Precision, recall and F1 of `predicted` (0/1) against `labels`; 0 where undefined. */
export function binaryMetrics(predicted: ArrayLike<number>, labels: ArrayLike<number>): BinaryMetrics {
  let tp = 0;
  let fp = 0;
  let tn = 0;
  let fn = 0;
  for (let i = 0; i < labels.length; i++) {
    const p = predicted[i] === 1;
    const l = labels[i] === 1;
    if (p && l) tp++;
    else if (p) fp++;
    else if (l) fn++;
    else tn++;
  }
  const precision = tp + fp > 0 ? tp / (tp + fp) : 0;
  const recall = tp + fn > 0 ? tp / (tp + fn) : 0;
  const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
  return { tp, fp, tn, fn, precision, recall, f1 };
}

/** Best point-wise F1 over every threshold on the scores (the papers' oracle), and that threshold. */
export function bestF1(
  scores: ArrayLike<number>,
  labels: ArrayLike<number>,
): { f1: number; threshold: number; precision: number; recall: number } {
  const n = scores.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[b] - scores[a]);
  let positives = 0;
  for (let i = 0; i < n; i++) positives += labels[i] === 1 ? 1 : 0;
  let best = { f1: 0, threshold: Infinity, precision: 0, recall: 0 };
  if (positives === 0) return best;
  let tp = 0;
  for (let k = 0; k < n; k++) {
    const i = order[k];
    if (labels[i] === 1) tp++;
    // A threshold can only sit after the last of a run of tied scores.
    if (k + 1 < n && scores[order[k + 1]] === scores[i]) continue;
    const precision = tp / (k + 1);
    const recall = tp / positives;
    const f1 = tp > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    if (f1 > best.f1) best = { f1, threshold: scores[i], precision, recall };
  }
  return best;
}

/** Spearman rank correlation (Pearson correlation of average ranks). */
export function spearman(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error('spearman: samples differ in length');
  return pearson(averageRanks(a), averageRanks(b));
}

/** Pearson correlation. */
export function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i];
    mb += b[i];
  }
  ma /= n;
  mb /= n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    const da = a[i] - ma;
    const db = b[i] - mb;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  return sab / Math.sqrt(saa * sbb);
}

/** 1-based ranks, ties given their average rank. */
export function averageRanks(v: ArrayLike<number>): Float64Array {
  const n = v.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => v[x] - v[y]);
  const ranks = new Float64Array(n);
  for (let i = 0; i < n;) {
    let j = i;
    while (j + 1 < n && v[order[j + 1]] === v[order[i]]) j++;
    const r = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[order[k]] = r;
    i = j + 1;
  }
  return ranks;
}
