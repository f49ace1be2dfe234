import { existsSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { FlaggedSummary } from './evaluate';
import type { GridResult } from './grid';
import { pointLabel } from './grid';
import type { RobustnessReport } from './robustness';

/**
 * The report's charts as Vega-Lite specs, rendered to SVG by Vega (no browser) and to
 * PNG by resvg. Vega and Vega-Lite are ESM-only; they are loaded with a real dynamic
 * import() (kept as such in the CommonJS build), so this module runs in the built CLI.
 */

/** A Vega-Lite spec (kept loose: the specs are data, checked by Vega-Lite's compiler). */
export type ChartSpec = Record<string, unknown>;

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
const FONT = 'DejaVu Sans';
const CONFIG = {
  font: FONT,
  background: 'white',
  view: { stroke: '#ccc' },
  title: { fontSize: 14, anchor: 'start' },
  axis: { labelFontSize: 11, titleFontSize: 12 },
};
const COLORS = { normal: '#4c78a8', anomalous: '#e45756', unlabelled: '#72b7b2' };
/** Vega's tableau20, the first three as the basic set always had them (CPU, memory, network). */
const PALETTE = [
  '#4c78a8',
  '#f58518',
  '#54a24b',
  '#e45756',
  '#72b7b2',
  '#eeca3b',
  '#b279a2',
  '#ff9da6',
  '#9d755d',
  '#bab0ac',
  '#9ecae9',
  '#ffbf79',
  '#88d27a',
  '#ff9d98',
  '#79706e',
  '#d6a5c9',
  '#fcbfd2',
  '#d8b5a5',
  '#83bcb6',
  '#b6992d',
];
const METRIC_COLORS = PALETTE.slice(0, 3);

/**
 * One distinct colour per metric, for any number of them: the palette, then hues spread by
 * the golden angle (so that neighbours differ) at two lightnesses.
 */
export function metricColors(n: number): string[] {
  return Array.from({ length: n }, (_, k) =>
    k < PALETTE.length ? PALETTE[k] : `hsl(${Math.round(((k - PALETTE.length) * 137.508) % 360)}, 60%, ${k % 2 ? 38 : 58}%)`,
  );
}

const top = (spec: ChartSpec): ChartSpec => ({ $schema: SCHEMA, config: CONFIG, ...spec });
const f3 = (v: number | null): string => (v === null ? 'n/a' : v.toFixed(3));

/** ROC curve with the chance diagonal. */
export function rocSpec(points: Array<{ fpr: number; tpr: number }>, auc: number | null): ChartSpec {
  return top({
    title: `ROC curve (test, ROC-AUC ${f3(auc)})`,
    width: 380,
    height: 320,
    layer: [
      {
        data: {
          values: [
            { x: 0, y: 0 },
            { x: 1, y: 1 },
          ],
        },
        mark: { type: 'line', strokeDash: [4, 4], color: '#999' },
        encoding: { x: { field: 'x', type: 'quantitative' }, y: { field: 'y', type: 'quantitative' } },
      },
      {
        data: { values: points },
        mark: { type: 'line', color: COLORS.normal, strokeWidth: 2, interpolate: 'step-after' },
        encoding: {
          x: { field: 'fpr', type: 'quantitative', title: 'False positive rate', scale: { domain: [0, 1] } },
          y: { field: 'tpr', type: 'quantitative', title: 'True positive rate (recall)', scale: { domain: [0, 1] } },
        },
      },
    ],
  });
}

/** Precision-recall curve with the positive rate as the no-skill baseline. */
export function prSpec(points: Array<{ recall: number; precision: number }>, ap: number | null, positiveRate: number): ChartSpec {
  return top({
    title: `Precision-recall (test, PR-AUC ${f3(ap)})`,
    width: 380,
    height: 320,
    layer: [
      {
        data: { values: [{ y: positiveRate }] },
        mark: { type: 'rule', strokeDash: [4, 4], color: '#999' },
        encoding: { y: { field: 'y', type: 'quantitative' } },
      },
      {
        data: { values: [{ x: 0.02, y: positiveRate, text: `no-skill baseline ${positiveRate.toFixed(3)}` }] },
        mark: { type: 'text', align: 'left', baseline: 'bottom', dy: -3, color: '#666' },
        encoding: { x: { field: 'x', type: 'quantitative' }, y: { field: 'y', type: 'quantitative' }, text: { field: 'text' } },
      },
      {
        data: { values: points },
        mark: { type: 'line', color: COLORS.anomalous, strokeWidth: 2 },
        encoding: {
          x: { field: 'recall', type: 'quantitative', title: 'Recall', scale: { domain: [0, 1] } },
          y: { field: 'precision', type: 'quantitative', title: 'Precision', scale: { domain: [0, 1] } },
        },
      },
    ],
  });
}

/**
 * Score histograms, one panel per label (normal and anomalous; or unlabelled), on the
 * same bins, with the model's threshold as a rule.
 */
export function histogramSpec(scores: ArrayLike<number>, labels: ArrayLike<number> | null, threshold: number): ChartSpec {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < scores.length; i++) {
    lo = Math.min(lo, scores[i]);
    hi = Math.max(hi, scores[i]);
  }
  lo = Math.min(lo, threshold);
  hi = Math.max(hi, threshold);
  const groups: Array<[string, number[]]> = labels
    ? [
        ['normal', []],
        ['anomalous', []],
      ]
    : [['unlabelled', []]];
  for (let i = 0; i < scores.length; i++) groups[labels ? (labels[i] === 1 ? 1 : 0) : 0][1].push(scores[i]);
  const bin = { extent: [lo, hi], maxbins: 50 };
  return top({
    title: {
      text: `Score distribution${labels ? ' by label' : ' (no labels)'} with the threshold ${threshold.toFixed(4)}`,
      anchor: 'start',
    },
    vconcat: groups.map(([name, vs]) => ({
      title: { text: `${name} (${vs.length} rows)`, fontSize: 12 },
      width: 520,
      height: 130,
      layer: [
        {
          data: { values: vs.map((score) => ({ score })) },
          mark: { type: 'bar', color: COLORS[name as keyof typeof COLORS] },
          encoding: {
            x: { field: 'score', type: 'quantitative', bin, title: 'anomaly score s(x)', scale: { domain: [lo, hi] } },
            y: { aggregate: 'count', type: 'quantitative', title: 'rows' },
          },
        },
        {
          data: { values: [{ t: threshold }] },
          mark: { type: 'rule', color: 'black', strokeDash: [6, 3], strokeWidth: 2 },
          encoding: { x: { field: 't', type: 'quantitative' } },
        },
      ],
    })),
  });
}

/** Robustness: one panel per suite. */
export function robustnessSpec(r: RobustnessReport): ChartSpec {
  const rows: Array<{ suite: string; scenario: string; measure: string; value: number; order: number }> = [];
  let order = 0;
  const add = (suite: string, scenario: string, measure: string, value: number | null | undefined) => {
    if (value !== null && value !== undefined && Number.isFinite(value)) rows.push({ suite, scenario, measure, value, order: order++ });
  };
  const labelled = r.clean.labelled !== null;
  add('noise', 'clean', labelled ? 'F1' : 'flag agreement', labelled ? r.clean.labelled?.f1 : 1);
  add('noise', 'clean', 'flagged fraction', r.clean.flagged_fraction);
  for (const s of r.noise) {
    add('noise', s.scenario, labelled ? 'F1' : 'flag agreement', labelled ? s.labelled?.f1 : s.flag_agreement);
    add('noise', s.scenario, 'flagged fraction', s.flagged_fraction);
  }
  add('missing', 'clean', labelled ? 'F1' : 'flag agreement', labelled ? r.clean.labelled?.f1 : 1);
  add('missing', 'clean', 'flagged fraction', r.clean.flagged_fraction);
  for (const s of r.missing) {
    add('missing', String(s.parameter), labelled ? 'F1' : 'flag agreement', labelled ? s.labelled?.f1 : s.flag_agreement);
    add('missing', String(s.parameter), 'flagged fraction', s.flagged_fraction);
  }
  for (const s of r.outliers) {
    add('outliers', s.scenario, 'detection rate', s.detection_rate);
    add('outliers', s.scenario, 'flagged before injection', s.baseline_rate);
  }
  add('shift', 'clean', 'flagged fraction', r.clean.flagged_fraction);
  for (const s of r.shift) add('shift', s.scenario, 'flagged fraction', s.flagged_fraction);
  const titles: Record<string, string> = {
    noise: 'Gaussian noise (standardised sigma)',
    missing: 'One metric missing (median-imputed)',
    outliers: `Outliers on ${(100 * r.options.outlierFraction).toFixed(0)}% of rows`,
    shift: 'Distribution shift (all metrics)',
  };
  const palette: Record<string, string> = {
    F1: '#4c78a8',
    'flag agreement': '#72b7b2',
    'flagged fraction': '#f58518',
    'detection rate': '#e45756',
    'flagged before injection': '#bab0ac',
  };
  const measures = Object.keys(palette).filter((m) => rows.some((r) => r.measure === m));
  return top({
    title: { text: 'Robustness suite', anchor: 'start' },
    data: { values: rows },
    hconcat: ['noise', 'missing', 'outliers', 'shift'].map((suite) => ({
      title: { text: titles[suite], fontSize: 12 },
      // The missing suite has one scenario per metric: wider for larger sets.
      width: suite === 'missing' ? Math.max(170, 24 * (r.missing.length + 1)) : 170,
      height: 220,
      transform: [{ filter: { field: 'suite', equal: suite } }],
      mark: { type: 'bar', tooltip: true },
      encoding: {
        x: { field: 'scenario', type: 'nominal', sort: { field: 'order' }, title: null, axis: { labelAngle: -30 } },
        xOffset: { field: 'measure', type: 'nominal', sort: measures },
        y: { field: 'value', type: 'quantitative', scale: { domain: [0, 1] }, title: suite === 'noise' ? 'share' : null },
        color: {
          field: 'measure',
          type: 'nominal',
          sort: measures,
          scale: { domain: measures, range: measures.map((m) => palette[m]) },
          legend: { orient: 'bottom', title: null, labelLimit: 300 },
        },
      },
    })),
    resolve: { scale: { color: 'shared' } },
  });
}

/** Contributions of the top flagged points (stacked by metric) and their mean over all flagged points. */
export function contributionsSpec(f: FlaggedSummary): ChartSpec {
  // The set's metrics, in its order (the keys of every per-metric record of the summary).
  const metrics = Object.keys(f.mean_contributions);
  const values = f.top.flatMap((p, k) => {
    const when =
      Number.isFinite(p.timestamp) && p.timestamp > 1e11
        ? new Date(p.timestamp).toISOString().slice(5, 16).replace('T', ' ')
        : `row ${p.row}`;
    const label = p.label === null ? '' : p.label === 1 ? ' [labelled anomaly]' : ' [labelled normal]';
    return metrics.map((m) => ({
      point: `${String(k + 1).padStart(2, '0')} ${p.host} ${when}${label}`,
      metric: m,
      contribution: p.contributions[m],
    }));
  });
  const colour = {
    field: 'metric',
    type: 'nominal',
    scale: { domain: metrics, range: metricColors(metrics.length) },
    legend: { orient: 'bottom', title: null, ...(metrics.length > 6 ? { columns: 6 } : {}) },
  };
  return top({
    title: { text: `Contributions of flagged points (${f.flagged} flagged; top ${f.top.length} by score)`, anchor: 'start' },
    vconcat: [
      {
        width: 460,
        height: Math.max(60, 16 * f.top.length),
        data: { values },
        mark: 'bar',
        encoding: {
          y: { field: 'point', type: 'nominal', sort: null, title: null, axis: { labelLimit: 400 } },
          x: {
            field: 'contribution',
            type: 'quantitative',
            title: 'contribution: path length saved by splits on the metric (sums to c(psi) - E[h(x)])',
          },
          color: colour,
        },
      },
      {
        title: { text: 'Mean contribution over all flagged points', fontSize: 12 },
        width: 460,
        height: Math.max(70, 18 * metrics.length),
        data: { values: metrics.map((m) => ({ metric: m, contribution: f.mean_contributions[m] })) },
        mark: 'bar',
        encoding: {
          y: { field: 'metric', type: 'nominal', title: null, sort: null },
          x: { field: 'contribution', type: 'quantitative', title: 'mean contribution' },
          color: colour,
        },
      },
    ],
  });
}

/** Grid search: the selection criterion of every point, the winner highlighted. */
export function gridSpec(
  results: GridResult[],
  selected: number,
  rule: 'validation_f1' | 'flagged_fraction_closest_to_contamination',
): ChartSpec {
  const byF1 = rule === 'validation_f1';
  return top({
    title: {
      text: byF1
        ? 'Grid search: validation F1 (selected in orange)'
        : 'Grid search: |validation flagged fraction - contamination| (lower is chosen; orange)',
      anchor: 'start',
    },
    width: Math.max(300, 26 * results.length),
    height: 220,
    data: {
      values: results.map((r, i) => ({
        point: pointLabel(r),
        value: byF1 ? (r.val?.f1 ?? 0) : r.fraction_gap,
        selected: i === selected ? 'selected' : 'other',
        step: r.step,
      })),
    },
    mark: 'bar',
    encoding: {
      x: {
        field: 'point',
        type: 'nominal',
        sort: { field: 'step' },
        title: 'contamination c, trees n, subsample s',
        axis: { labelAngle: -50 },
      },
      y: { field: 'value', type: 'quantitative', title: byF1 ? 'validation F1' : 'fraction gap' },
      color: { field: 'selected', type: 'nominal', scale: { domain: ['other', 'selected'], range: ['#9ecae9', '#f58518'] }, legend: null },
    },
  });
}

// ------------------------------------------------------------------ rendering

type VegaModule = typeof import('vega', { with: { 'resolution-mode': 'import' } });
type VegaLiteModule = typeof import('vega-lite', { with: { 'resolution-mode': 'import' } });
let modules: Promise<[VegaModule, VegaLiteModule]> | null = null;

/** One step of a host as the service writes it to ai_predictions (for {@link incidentSpec}). */
export interface HostStep {
  time: number;
  cpu: number;
  memory: number;
  /** Bytes/s. */
  network: number;
  score: number;
  threshold: number;
  alert: boolean;
  learning: boolean;
  /** Contribution of each metric (METRIC_NAMES order). */
  contributions: [number, number, number];
  /** Labelled incident (simulated data). */
  incident: boolean;
}

/**
 * What the Grafana dashboard shows for one host, drawn from the service's own output:
 * the metrics, the score against its threshold with the alerts, and each metric's
 * contribution, over a stretch of time with a labelled incident shaded.
 */
export function incidentSpec(host: string, steps: HostStep[]): ChartSpec {
  const t = (s: HostStep) => new Date(s.time).toISOString();
  const incident = steps.filter((s) => s.incident);
  const band =
    incident.length > 0
      ? [
          {
            data: { values: [{ from: t(incident[0]), to: t(incident[incident.length - 1]) }] },
            mark: { type: 'rect', color: '#e45756', opacity: 0.12 },
            encoding: { x: { field: 'from', type: 'temporal' }, x2: { field: 'to' } },
          },
        ]
      : [];
  const x = { field: 'time', type: 'temporal', title: null, axis: { format: '%H:%M' } };
  const metrics = steps.flatMap((s) => [
    { time: t(s), metric: 'CPU', value: s.cpu },
    { time: t(s), metric: 'memory', value: s.memory },
  ]);
  // One colour per metric in every panel (and one legend).
  const color = { field: 'metric', type: 'nominal', title: null, scale: { domain: ['CPU', 'memory', 'network'], range: METRIC_COLORS } };
  const label = ['CPU', 'memory', 'network'];
  const scores = steps.map((s) => ({ time: t(s), score: s.score, threshold: s.threshold, alert: s.alert }));
  const contributions = steps.flatMap((s) => label.map((metric, k) => ({ time: t(s), metric, value: s.contributions[k] })));
  const width = 640;
  return top({
    title: `${host}: metrics, score and contributions as the service writes them (labelled incident shaded)`,
    vconcat: [
      {
        width,
        height: 120,
        layer: [
          ...band,
          {
            data: { values: metrics },
            mark: { type: 'line' },
            encoding: { x, y: { field: 'value', type: 'quantitative', title: 'percent' }, color },
          },
        ],
      },
      {
        width,
        height: 120,
        layer: [
          ...band,
          {
            data: { values: steps.map((s) => ({ time: t(s), network: s.network / 1e6 })) },
            mark: { type: 'line', color: METRIC_COLORS[2] },
            encoding: { x, y: { field: 'network', type: 'quantitative', title: 'network MB/s' } },
          },
        ],
      },
      {
        width,
        height: 140,
        layer: [
          ...band,
          {
            data: { values: scores },
            mark: { type: 'line', color: COLORS.normal },
            encoding: { x, y: { field: 'score', type: 'quantitative', title: 'score', scale: { zero: false } } },
          },
          {
            data: { values: scores },
            mark: { type: 'line', color: '#888', strokeDash: [4, 3] },
            encoding: { x, y: { field: 'threshold', type: 'quantitative' } },
          },
          {
            data: { values: scores.filter((s) => s.alert) },
            mark: { type: 'point', filled: true, size: 70, color: COLORS.anomalous },
            encoding: { x, y: { field: 'score', type: 'quantitative' } },
          },
          {
            data: { values: [{ text: 'dashed: threshold; red: alerts (is_anomaly)' }] },
            mark: { type: 'text', align: 'left', dx: 4, dy: 8, color: '#555' },
            encoding: { text: { field: 'text' }, x: { value: 0 }, y: { value: 0 } },
          },
        ],
      },
      {
        width,
        height: 120,
        layer: [
          ...band,
          {
            data: { values: contributions },
            mark: { type: 'area' },
            encoding: { x, y: { field: 'value', type: 'quantitative', stack: 'zero', title: 'contribution' }, color },
          },
        ],
      },
    ],
  });
}

/** Loads the ESM-only Vega packages once (a real dynamic import in the CommonJS build). */
function loadVega(): Promise<[VegaModule, VegaLiteModule]> {
  modules ??= Promise.all([import('vega'), import('vega-lite')]);
  return modules;
}

/** Vega-Lite spec -> SVG text (Vega's headless SVG renderer). */
export async function renderSvg(spec: ChartSpec): Promise<string> {
  const [vega, vl] = await loadVega();
  // Vega's own logger would print warnings to the console; keep stderr for the CLI's lines.
  const logger = vega.logger(vega.Error);
  const compiled = vl.compile(spec as unknown as Parameters<VegaLiteModule['compile']>[0], { logger }).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', logger });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Fonts for the PNG renderer: resvg draws no text at all without one. */
export interface FontSetup {
  files: string[];
  family: string | null;
  /** Set when no font was found (say it once, to the user). */
  warning: string | null;
}

const PREFERRED_FONTS = [
  '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf',
  '/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf',
  '/usr/share/fonts/TTF/DejaVuSans.ttf',
  '/usr/share/fonts/TTF/DejaVuSans-Bold.ttf',
  '/usr/share/fonts/dejavu/DejaVuSans.ttf',
  '/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf',
];

function anyFont(dir: string, depth = 3): string | null {
  if (depth < 0 || !existsSync(dir)) return null;
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return null;
  }
  for (const e of entries) if (/\.(ttf|otf|ttc)$/i.test(e)) return join(dir, e);
  for (const e of entries) {
    const p = join(dir, e);
    try {
      if (statSync(p).isDirectory()) {
        const f = anyFont(p, depth - 1);
        if (f) return f;
      }
    } catch {
      // unreadable entry: skip
    }
  }
  return null;
}

let fontSetup: FontSetup | null = null;

/** DejaVu Sans when installed (Debian: fonts-dejavu-core), else any system font, else a warning. */
export function findFonts(): FontSetup {
  if (fontSetup) return fontSetup;
  const dejavu = PREFERRED_FONTS.filter((p) => existsSync(p));
  if (dejavu.length > 0) fontSetup = { files: dejavu, family: FONT, warning: null };
  else {
    const other = [
      '/usr/share/fonts',
      '/usr/local/share/fonts',
      join(homedir(), '.fonts'),
      join(homedir(), '.local/share/fonts'),
      '/System/Library/Fonts',
      '/Library/Fonts',
    ]
      .map((d) => anyFont(d))
      .find(Boolean);
    fontSetup = other
      ? { files: [other], family: null, warning: null }
      : {
          files: [],
          family: null,
          warning:
            'no font found: PNG plots will have no text (install fonts-dejavu-core); the SVG plots and the HTML report are unaffected',
        };
  }
  return fontSetup;
}

/** Rasterises an SVG at twice its size on white, with the fonts findFonts() chose. */
export async function rasterize(svg: string) {
  const { Resvg } = await import('@resvg/resvg-js');
  const fonts = findFonts();
  const font = fonts.family
    ? { loadSystemFonts: false, fontFiles: fonts.files, defaultFontFamily: fonts.family, sansSerifFamily: fonts.family }
    : { loadSystemFonts: true, fontFiles: fonts.files };
  return new Resvg(svg, { background: 'white', fitTo: { mode: 'zoom', value: 2 }, font, logLevel: 'off' }).render();
}

/** SVG -> PNG at twice the SVG's size, on white. */
export async function svgToPng(svg: string): Promise<Buffer> {
  return (await rasterize(svg)).asPng();
}

/** A rendered chart. */
export interface RenderedChart {
  name: string;
  svg: string;
  png: Buffer;
}

/** Renders named specs to SVG and PNG. */
export async function renderCharts(specs: Record<string, ChartSpec>): Promise<RenderedChart[]> {
  const out: RenderedChart[] = [];
  for (const [name, spec] of Object.entries(specs)) {
    const svg = await renderSvg(spec);
    out.push({ name, svg, png: await svgToPng(svg) });
  }
  return out;
}
