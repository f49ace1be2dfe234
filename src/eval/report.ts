import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { artifactMetrics } from '../core/artifact';
import type { Detector } from '../core/detector';
import type { MetricDef } from '../core/metrics';
import { curves, flaggedSummary, scoreSet, seriesOf, testMetrics, type FlaggedSummary, type TestMetrics } from './evaluate';
import { contributionsSpec, histogramSpec, prSpec, renderCharts, robustnessSpec, rocSpec, type ChartSpec } from './plots';
import { DEFAULT_ROBUSTNESS, runRobustness, type RobustnessReport, type ScenarioResult } from './robustness';
import type { Part } from './split';

/** File-name timestamp: 2026-11-27T08-01-02-123Z (sortable, no colons). */
export function fileStamp(d = new Date()): string {
  return d.toISOString().replace(/[:.]/g, '-');
}

/** Writes a file atomically (temporary file, then rename), creating its directory. */
export function writeFileAtomic(path: string, content: string | Buffer): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  writeFileSync(tmp, content);
  renameSync(tmp, path);
}

/** Pretty JSON (non-finite numbers become null, as JSON.stringify does). */
export function writeJson(path: string, value: unknown): void {
  writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** Where the evaluated model and data came from. */
export interface EvaluationContext {
  /** `training`: the held-out test split of a train run; `evaluate`: the evaluate command. */
  context: 'training' | 'evaluate';
  modelSource: string;
  dataPath: string;
  dataSha256: string;
  /** What part of the data was evaluated, e.g. "test split (random, seed 42)" or "all rows". */
  part: string;
  /** True when the evaluated rows include rows the model was trained on; null if unknown. */
  includesTrainingRows: boolean | null;
  seed: number;
  notes?: string[];
}

export interface EvaluationReport {
  report: 'evaluation';
  created_at: string;
  context: EvaluationContext['context'];
  model: {
    version: string;
    source: string;
    sha256: string;
    threshold: number;
    params: Record<string, unknown>;
    trained_at: string;
    training_rows: number;
    training_data_sha256: string;
    /** The model's metrics (its inputs, the CSV's metric columns): name, unit and valid range. */
    metrics: MetricDef[];
  };
  data: { path: string; sha256: string; rows: number; part: string; includes_training_rows: boolean | null };
  labels: 'present' | 'absent';
  notes: string[];
  test: TestMetrics;
  robustness: RobustnessReport;
  flagged: FlaggedSummary;
  files: { json: string; html: string; plots: Record<string, { svg: string; png: string }> };
}

/** An evaluation and the row-level data its plots need. */
export interface Evaluation {
  report: Omit<EvaluationReport, 'files'>;
  scores: Float64Array;
  labels: Uint8Array | null;
}

/** Test metrics, robustness suite and flagged-point contributions of `det` on `part`. */
export function evaluateModel(det: Detector, part: Part, ctx: EvaluationContext, createdAt = new Date().toISOString()): Evaluation {
  const series = seriesOf(part);
  const scored = scoreSet(det, part.raw, part.n, series);
  const test = testMetrics(det, part.raw, part.n, part.labels, scored);
  const robustness = runRobustness(det, part.raw, part.n, part.labels, { seed: ctx.seed, ...DEFAULT_ROBUSTNESS, series }, scored);
  const flagged = flaggedSummary(scored, part.raw, {
    hosts: part.hosts,
    timestamps: part.timestamps,
    labels: part.labels,
    metrics: det.inputs,
  });
  const a = det.artifact;
  const notes = [...(ctx.notes ?? []), test.note];
  if (ctx.includesTrainingRows) notes.push("the evaluated rows include the model's training rows: its figures are optimistic");
  return {
    report: {
      report: 'evaluation',
      created_at: createdAt,
      context: ctx.context,
      model: {
        version: a.version,
        source: ctx.modelSource,
        sha256: a.sha256,
        threshold: a.threshold.value,
        params: a.training.params,
        trained_at: a.training.created_at,
        training_rows: a.training.rows,
        training_data_sha256: a.training.data_sha256,
        metrics: artifactMetrics(a),
      },
      data: { path: ctx.dataPath, sha256: ctx.dataSha256, rows: part.n, part: ctx.part, includes_training_rows: ctx.includesTrainingRows },
      labels: test.labels,
      notes,
      test,
      robustness,
      flagged,
    },
    scores: scored.scores,
    labels: part.labels,
  };
}

/** The charts of an evaluation (ROC and PR only with both label classes). */
export function evaluationCharts(ev: Evaluation): Record<string, ChartSpec> {
  const charts: Record<string, ChartSpec> = {};
  const c = ev.labels ? curves(ev.scores, ev.labels) : null;
  const l = ev.report.test.labelled;
  if (c && l) {
    charts.roc = rocSpec(c.roc, l.roc_auc);
    charts.pr = prSpec(c.pr, l.pr_auc, c.positive_rate);
  }
  charts.score_histogram = histogramSpec(ev.scores, ev.labels, ev.report.test.label_free.threshold);
  charts.robustness = robustnessSpec(ev.report.robustness);
  charts.contributions = contributionsSpec(ev.report.flagged);
  return charts;
}

/**
 * Writes `<dir>/evaluation_report_<stamp>.json`, `.html`, and the plots as SVG and PNG in
 * `<dir>/evaluation_report_<stamp>_plots/`. `extraCharts` (e.g. the grid) join the plots.
 */
export async function writeEvaluation(
  ev: Evaluation,
  dir: string,
  stamp: string,
  extraCharts: Record<string, ChartSpec> = {},
): Promise<{ report: EvaluationReport; svgs: Record<string, string> }> {
  const base = join(dir, `evaluation_report_${stamp}`);
  const plotDir = `${base}_plots`;
  const rendered = await renderCharts({ ...evaluationCharts(ev), ...extraCharts });
  const plots: EvaluationReport['files']['plots'] = {};
  const svgs: Record<string, string> = {};
  for (const r of rendered) {
    const svg = join(plotDir, `${r.name}.svg`);
    const png = join(plotDir, `${r.name}.png`);
    writeFileAtomic(svg, r.svg);
    writeFileAtomic(png, r.png);
    plots[r.name] = { svg, png };
    svgs[r.name] = r.svg;
  }
  const report: EvaluationReport = { ...ev.report, files: { json: `${base}.json`, html: `${base}.html`, plots } };
  writeJson(report.files.json, report);
  writeFileAtomic(report.files.html, evaluationHtml(report, svgs));
  return { report, svgs };
}

// ------------------------------------------------------------------ HTML

const esc = (s: unknown): string =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
const n4 = (v: number | null | undefined): string =>
  v === null || v === undefined || !Number.isFinite(v) ? 'n/a' : Number(v.toFixed(4)).toString();
const p2 = (v: number | null | undefined): string =>
  v === null || v === undefined || !Number.isFinite(v) ? 'n/a' : `${(100 * v).toFixed(2)}%`;

function table(head: string[], rows: Array<Array<string | number>>): string {
  return (
    `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}` +
    `</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}` +
    `</tbody></table>`
  );
}

function scenarioRows(list: ScenarioResult[], labelled: boolean): Array<Array<string | number>> {
  return list.map((s) => [
    s.scenario,
    p2(s.flagged_fraction),
    `${s.flagged_change >= 0 ? '+' : ''}${(100 * s.flagged_change).toFixed(2)} pt`,
    p2(s.flag_agreement),
    n4(s.score_spearman),
    ...(labelled ? [n4(s.labelled?.f1), n4(s.labelled?.roc_auc), n4(s.labelled?.pr_auc)] : []),
  ]);
}

/** A self-contained HTML page: tables, notes and the plots inline (SVG), with links to the PNGs. */
export function evaluationHtml(r: EvaluationReport, svgs: Record<string, string>): string {
  const t = r.test;
  const l = t.labelled;
  const rob = r.robustness;
  const labelled = l !== null;
  const htmlDir = dirname(r.files.html);
  const plot = (name: string, caption: string): string =>
    svgs[name]
      ? `<figure>${svgs[name].replace(/^<\?xml[^>]*>/, '')}<figcaption>${esc(caption)} (<a ` +
        `href="${esc(relative(htmlDir, r.files.plots[name].png))}">PNG</a>, <a ` +
        `href="${esc(relative(htmlDir, r.files.plots[name].svg))}">SVG</a>)</figcaption></figure>`
      : '';
  const scenarioHead = [
    'scenario',
    'flagged',
    'change',
    'flag agreement',
    'score Spearman',
    ...(labelled ? ['F1', 'ROC-AUC', 'PR-AUC'] : []),
  ];
  const parts: string[] = [];
  parts.push(
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Evaluation of ${esc(r.model.version)}</title>
<style>body{font-family:"DejaVu Sans",system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:.25em .6em;` +
      `text-align:right}th:first-child,td:first-child{text-align:left}
th{background:#f3f3f3}.note{background:#fff8e1;border-left:4px solid #f5a623;padding:.5em 1em;margin:.3em 0}` +
      `figure{margin:1em 0}figcaption{color:#555;font-size:.9em}
code{background:#f3f3f3;padding:0 .2em}</style></head><body>`,
  );
  parts.push(`<h1>Evaluation of model ${esc(r.model.version)}</h1>`);
  parts.push(
    table(
      ['', ''],
      [
        [
          'model',
          `${r.model.source} (sha256 ${r.model.sha256.slice(0, 12)}…, trained ${r.model.trained_at} on ${r.model.training_rows} rows)`,
        ],
        ['parameters', JSON.stringify(r.model.params)],
        ['threshold', n4(r.model.threshold)],
        [
          'metrics',
          r.model.metrics.map((d) => `${d.name} (${d.unit}, ${d.min} to ${d.max === null ? 'no upper bound' : d.max})`).join(', '),
        ],
        ['data', `${r.data.path} (sha256 ${r.data.sha256.slice(0, 12)}…)`],
        ['rows evaluated', `${r.data.rows}: ${r.data.part}`],
        ['labels', r.labels],
        ['created', r.created_at],
      ],
    ),
  );
  parts.push(`<h2>Notes</h2>${r.notes.map((n) => `<p class="note">${esc(n)}</p>`).join('')}`);
  parts.push('<h2>Test metrics</h2>');
  const lf = t.label_free;
  const rows: Array<Array<string | number>> = [
    ['rows', lf.rows],
    ['flagged', `${lf.flagged} (${p2(lf.flagged_fraction)})`],
    ['score p50 / p90 / p99 / max', `${n4(lf.score.p50)} / ${n4(lf.score.p90)} / ${n4(lf.score.p99)} / ${n4(lf.score.max)}`],
    [
      'latency per point, mean / p50 / p99 (single-point calls)',
      `${t.latency.per_point_mean_us.toFixed(1)} / ${t.latency.per_point_p50_us.toFixed(1)} ` +
        `/ ${t.latency.per_point_p99_us.toFixed(1)} µs (${t.latency.points} points)`,
    ],
    ['latency per point in one batch', `${t.latency.batch_per_point_us.toFixed(2)} µs`],
  ];
  if (l) {
    rows.unshift(
      ['precision', n4(l.precision)],
      ['recall', n4(l.recall)],
      ['F1', n4(l.f1)],
      ['ROC-AUC', n4(l.roc_auc)],
      ['PR-AUC (average precision)', n4(l.pr_auc)],
      ['labelled anomalies', `${l.positives} of ${l.positives + l.negatives}`],
    );
  }
  parts.push(table(['figure', 'value'], rows));
  if (l) {
    parts.push('<h3>Confusion matrix</h3>');
    parts.push(
      table(
        ['', 'flagged', 'not flagged'],
        [
          ['labelled anomaly', l.confusion.tp, l.confusion.fn],
          ['labelled normal', l.confusion.fp, l.confusion.tn],
        ],
      ),
    );
  }
  parts.push(plot('roc', 'ROC curve on the evaluated rows'));
  parts.push(plot('pr', 'Precision-recall curve on the evaluated rows'));
  parts.push(plot('score_histogram', 'Score histogram by label, with the threshold'));
  parts.push('<h2>Robustness</h2>');
  parts.push(rob.notes.map((n) => `<p class="note">${esc(n)}</p>`).join(''));
  parts.push(
    `<p>Unperturbed: flagged ${p2(rob.clean.flagged_fraction)}` +
      `${rob.clean.labelled ? `, F1 ${n4(rob.clean.labelled.f1)}, ROC-AUC ${n4(rob.clean.labelled.roc_auc)}` : ''}.</p>`,
  );
  parts.push('<h3>Gaussian noise</h3>', table(scenarioHead, scenarioRows(rob.noise, labelled)));
  parts.push('<h3>One metric missing, imputed with the training median</h3>', table(scenarioHead, scenarioRows(rob.missing, labelled)));
  parts.push(
    '<h3>Extreme outliers</h3>',
    table(
      ['factor', 'rows', 'detection rate', 'flagged before injection'],
      rob.outliers.map((s) => [s.scenario, s.rows_affected, p2(s.detection_rate), p2(s.baseline_rate)]),
    ),
  );
  parts.push('<h3>Distribution shift</h3>', table(scenarioHead, scenarioRows(rob.shift, labelled)));
  parts.push(plot('robustness', 'Robustness suite'));
  parts.push('<h2>Flagged points</h2>');
  const f = r.flagged;
  const metrics = Object.keys(f.mean_contributions);
  parts.push(
    table(
      ['metric', 'mean contribution', 'largest contributor in'],
      metrics.map((m) => [m, n4(f.mean_contributions[m]), p2(f.dominant_share[m])]),
    ),
  );
  parts.push(plot('contributions', 'Contributions of flagged points'));
  parts.push(
    table(
      ['host', 'time', 'score', 'label', ...metrics, ...metrics.map((m) => `contrib. ${m}`)],
      f.top.map((p) => [
        p.host,
        Number.isFinite(p.timestamp) && p.timestamp > 1e11 ? new Date(p.timestamp).toISOString() : `row ${p.row}`,
        n4(p.score),
        p.label === null ? '-' : p.label,
        ...metrics.map((m) => n4(p.values[m])),
        ...metrics.map((m) => n4(p.contributions[m])),
      ]),
    ),
  );
  if (svgs.grid) parts.push('<h2>Grid search</h2>', plot('grid', 'Grid search on the validation split'));
  parts.push('</body></html>\n');
  return parts.join('\n');
}
