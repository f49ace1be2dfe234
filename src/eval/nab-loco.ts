/**
 * Leave one category out on NAB: does a parameter set chosen on some series carry over
 * to series nobody tuned on? Every candidate of a small, explicit set is streamed once
 * over every file; then, for each category, the candidate with the best standard score
 * on the other categories' files (pooled, threshold optimised on them, as NAB scores a
 * corpus) is scored on the category left out. One parameter set for all files of a fold,
 * never per file or per category (NAB's rules).
 */
import { categoryOf, readLabels, readProfiles, scoreDetector } from './nab-data';
import { DEFAULT_NAB_PARAMS, labelledFiles, readAllSeries, runSeries, scoreAt, type NabBenchParams } from './nab-bench';
import { normaliseScore, type CostMatrix, type NabFile } from './nab-scorer';

/** A named parameter set. */
export interface NabCandidate {
  name: string;
  params: NabBenchParams;
}

const HOUR = 3_600_000;

/**
 * The candidates: the default and one-knob variants around it, each a guess about what
 * carries over: the gate's windows (peak comparison over 3 or 6 hours instead of 12, repeat
 * window of 12 hours instead of a day, re-arming after 12 quiet hours), the score
 * calibration off, the novelty share (0.25, 0.35 instead of 0.3), a one-day baseline,
 * 12-point levels, and the repeat rule by value (the gate's `excess`) off, at factor 1.2
 * instead of 1.05, or on the robust deviation instead of the raw value. Small on purpose:
 * every candidate streams every file once (about 4 s for the 51 files here on one thread).
 */
const D = DEFAULT_NAB_PARAMS;
export const LOCO_CANDIDATES: readonly NabCandidate[] = [
  { name: 'default', params: D },
  { name: 'peak-3h', params: { ...D, gate: { ...D.gate, peakWindowMs: 3 * HOUR } } },
  { name: 'repeat-12h', params: { ...D, gate: { ...D.gate, windowMs: 12 * HOUR } } },
  { name: 'rearm-12h', params: { ...D, gate: { ...D.gate, rearm: { below: 0.8, forMs: 12 * HOUR } } } },
  { name: 'novelty-0.25', params: { ...D, noveltyWeight: 0.25 } },
  { name: 'novelty-0.35', params: { ...D, noveltyWeight: 0.35 } },
  { name: 'baseline-288', params: { ...D, window: 288 } },
  { name: 'span-12', params: { ...D, span: 12 } },
  { name: 'peak-6h', params: { ...D, gate: { ...D.gate, peakWindowMs: 6 * HOUR } } },
  { name: 'uncalibrated', params: { ...D, gate: { ...D.gate, calibrate: undefined } } },
  { name: 'no-excess', params: { ...D, gate: { ...D.gate, excess: undefined } } },
  { name: 'excess-1.2', params: { ...D, gate: { ...D.gate, excess: { factor: 1.2 } } } },
  { name: 'excess-robust', params: { ...D, gateExcess: 'robust_z', gate: { ...D.gate, excess: { factor: 1.1 } } } },
];

/** Options of {@link runLoco}. */
export interface LocoOptions {
  nabDir: string;
  /** Data files (default: every labelled file). */
  files?: readonly string[];
  candidates?: readonly NabCandidate[];
  /**
   * Forest seeds each candidate runs with (default 1, 2, 3): every figure is the mean
   * over them, so a choice is not made on one seed's luck (a seed moves a category's
   * score by several points).
   */
  seeds?: readonly number[];
  log?: (line: string) => void;
}

/** A profile's normalised score averaged over the seeds (null without windows), and each seed's. */
export interface SeedMean {
  normalised: number | null;
  seeds: Array<number | null>;
}

/** One fold: the category left out and what the candidate chosen without it scored there. */
export interface LocoFold {
  category: string;
  files: number;
  windows: number;
  /** The candidate with the best standard score on the other categories (seed mean). */
  chosen: string;
  /** Its normalised standard score on the other categories (threshold optimised there; seed mean). */
  chosenOnOthers: number | null;
  /** On the category left out, thresholds optimised on it (as NAB scores any set of files), seed mean per profile: null without windows. */
  leftOut: Record<string, number | null>;
  /**
   * On the category left out at the threshold chosen on the others (nothing of the
   * category seen at all), seed means: standard raw score, false alarms, normalised score.
   */
  leftOutAtOthersThreshold: { score: number; falseAlarms: number; normalised: number | null };
  /** The best candidate in-sample on the category (for comparison). */
  bestInSample: { candidate: string; standard: number | null };
}

/** Everything the leave-one-category-out run measured. */
export interface LocoResult {
  files: string[];
  categories: string[];
  candidates: string[];
  seeds: number[];
  /** Per candidate: all files and each category, thresholds optimised on the files scored, per profile. */
  inSample: Record<string, { all: Record<string, SeedMean>; byCategory: Record<string, Record<string, SeedMean>> }>;
  /** The candidate chosen on all files. */
  chosenOnAll: string;
  folds: LocoFold[];
  /** Mean of the folds' left-out standard scores over the categories with windows. */
  averageLeftOut: number | null;
  /** The same, at the thresholds chosen on the others. */
  averageLeftOutAtOthersThreshold: number | null;
  /** The chosen-on-all candidate's in-sample standard scores, averaged over the same categories. */
  averageInSample: number | null;
}

function normalised(files: readonly NabFile[], score: number, cost: CostMatrix): number | null {
  const windows = files.reduce((s, f) => s + f.windows.length, 0);
  return windows > 0 ? normaliseScore(score, windows, cost) : null;
}

const mean = (a: number[]): number | null => (a.length ? a.reduce((s, v) => s + v, 0) / a.length : null);

/** Seed means of each profile's normalised score (and the per-seed thresholds) over the files `keep` selects. */
function scoreRuns(
  runs: readonly NabFile[][],
  keep: (f: NabFile) => boolean,
  profiles: Record<string, CostMatrix>,
): { profiles: Record<string, SeedMean>; thresholds: Record<string, number[]> } {
  const rows = runs.map((files) => scoreDetector('', files.filter(keep), profiles).profiles);
  const out: Record<string, SeedMean> = {};
  const thresholds: Record<string, number[]> = {};
  for (const p of Object.keys(profiles)) {
    const seeds = rows.map((r) => r[p].normalised);
    out[p] = { normalised: seeds.every((v) => v !== null) ? mean(seeds as number[]) : null, seeds };
    thresholds[p] = rows.map((r) => r[p].threshold);
  }
  return { profiles: out, thresholds };
}

/** Streams every candidate over every file, then scores in-sample and leave-one-category-out. */
export function runLoco(opts: LocoOptions): LocoResult {
  const candidates = opts.candidates ?? LOCO_CANDIDATES;
  const seeds = [...(opts.seeds ?? [1, 2, 3])];
  if (candidates.length === 0) throw new RangeError('leave-one-category-out needs at least one candidate');
  if (seeds.length === 0) throw new RangeError('leave-one-category-out needs at least one seed');
  const names = candidates.map((c) => c.name);
  if (new Set(names).size !== names.length) throw new RangeError('candidate names must be unique');
  const profiles = readProfiles(opts.nabDir);
  const standard = profiles.standard ? 'standard' : Object.keys(profiles)[0];
  const labels = readLabels(opts.nabDir);
  const files = opts.files ? [...opts.files] : labelledFiles(opts.nabDir, labels, opts.log);
  const series = readAllSeries(opts.nabDir, files, labels);
  const runs = new Map<string, NabFile[][]>();
  for (const c of candidates) {
    const t0 = Date.now();
    runs.set(
      c.name,
      seeds.map((seed) =>
        series.map((s) => ({
          name: s.relPath,
          timestamps: s.times,
          scores: Array.from(runSeries(s, { ...c.params, seed }).anomalyScores),
          windows: labels.get(s.relPath) ?? [],
        })),
      ),
    );
    opts.log?.(
      `candidate ${c.name}: ${files.length} file(s) x ${seeds.length} seed(s) streamed in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );
  }
  const categories = [...new Set(files.map(categoryOf))];
  const inSample: LocoResult['inSample'] = {};
  for (const name of names) {
    const r = runs.get(name) as NabFile[][];
    const byCategory: Record<string, Record<string, SeedMean>> = {};
    for (const cat of categories) byCategory[cat] = scoreRuns(r, (f) => categoryOf(f.name) === cat, profiles).profiles;
    inSample[name] = { all: scoreRuns(r, () => true, profiles).profiles, byCategory };
  }
  const value = (m: SeedMean): number => m.normalised ?? -Infinity;
  /** The candidate with the best standard seed mean on the files `keep` selects (ties: the earlier one). */
  const choose = (keep: (f: NabFile) => boolean): { name: string; scored: ReturnType<typeof scoreRuns> } => {
    let best: { name: string; scored: ReturnType<typeof scoreRuns> } | undefined;
    for (const name of names) {
      const scored = scoreRuns(runs.get(name) as NabFile[][], keep, { [standard]: profiles[standard] });
      if (best === undefined || value(scored.profiles[standard]) > value(best.scored.profiles[standard])) best = { name, scored };
    }
    return best as { name: string; scored: ReturnType<typeof scoreRuns> };
  };
  const chosenOnAll = choose(() => true).name;
  const folds: LocoFold[] = categories.map((cat) => {
    const inCat = (f: NabFile): boolean => categoryOf(f.name) === cat;
    const pick = choose((f) => !inCat(f));
    const seedRuns = runs.get(pick.name) as NabFile[][];
    const catFiles = seedRuns[0].filter(inCat);
    const leftOut = Object.fromEntries(Object.entries(inSample[pick.name].byCategory[cat]).map(([p, r]) => [p, r.normalised]));
    const at = seedRuns.map((filesOfSeed, k) => {
      const mine = filesOfSeed.filter(inCat);
      const r = scoreAt(mine, pick.scored.thresholds[standard][k], profiles[standard]);
      return { ...r, normalised: normalised(mine, r.score, profiles[standard]) };
    });
    let bestName = names[0];
    for (const n of names)
      if (value(inSample[n].byCategory[cat][standard]) > value(inSample[bestName].byCategory[cat][standard])) bestName = n;
    const norms = at.map((a) => a.normalised);
    return {
      category: cat,
      files: catFiles.length,
      windows: catFiles.reduce((s, f) => s + f.windows.length, 0),
      chosen: pick.name,
      chosenOnOthers: pick.scored.profiles[standard].normalised,
      leftOut,
      leftOutAtOthersThreshold: {
        score: mean(at.map((a) => a.score)) as number,
        falseAlarms: mean(at.map((a) => a.falseAlarms)) as number,
        normalised: norms.every((v) => v !== null) ? mean(norms as number[]) : null,
      },
      bestInSample: { candidate: bestName, standard: inSample[bestName].byCategory[cat][standard].normalised },
    };
  });
  const withWindows = folds.filter((f) => f.windows > 0);
  return {
    files,
    categories,
    candidates: names,
    seeds,
    inSample,
    chosenOnAll,
    folds,
    averageLeftOut: mean(withWindows.map((f) => f.leftOut[standard] as number)),
    averageLeftOutAtOthersThreshold: mean(withWindows.map((f) => f.leftOutAtOthersThreshold.normalised as number)),
    averageInSample: mean(withWindows.map((f) => inSample[chosenOnAll].byCategory[f.category][standard].normalised as number)),
  };
}

const fmt = (v: number | null | undefined): string => (v === null || v === undefined ? 'n/a' : v.toFixed(1));

/** The report printed by `bench nab --loco`. */
export function formatLoco(r: LocoResult): string {
  const w = Math.max(...r.candidates.map((c) => c.length), 'candidate'.length) + 2;
  const cw = Math.max(...r.categories.map((c) => c.length)) + 2;
  const lines = [
    `NAB in-sample, standard profile (thresholds optimised on the files scored), ${r.files.length} file(s); mean over seeds ${r.seeds.join(', ')}:`,
    `${'candidate'.padEnd(w)}${'all'.padStart(8)}${r.categories.map((c) => c.padStart(Math.max(c.length, 8) + 2)).join('')}`,
    ...r.candidates.map(
      (n) =>
        `${(n === r.chosenOnAll ? `${n} *` : n).padEnd(w)}` +
        `${fmt(r.inSample[n].all.standard?.normalised).padStart(8)}` +
        `${r.categories.map((c) => fmt(r.inSample[n].byCategory[c].standard?.normalised).padStart(Math.max(c.length, 8) + 2)).join('')}`,
    ),
    `(* chosen on all files; a category without windows has no normalised score)`,
    '',
    `Leave one category out (candidate chosen on the other categories by their pooled standard score, seed mean):`,
    `${'left out'.padEnd(cw)}${'chosen'.padEnd(w)}${'others'.padStart(8)}${'left out'.padStart(10)}` +
      `${'(low FP'.padStart(9)}${'low FN)'.padStart(8)}${"at others' threshold".padStart(22)}${'best in-sample'.padStart(16)}`,
  ];
  for (const f of r.folds) {
    const at = f.leftOutAtOthersThreshold;
    const fa = Number.isInteger(at.falseAlarms) ? String(at.falseAlarms) : at.falseAlarms.toFixed(1);
    const atText = f.windows > 0 ? `${fmt(at.normalised)} (${fa} FA)` : `${at.score.toFixed(2)} (${fa} FA)`;
    lines.push(
      `${f.category.padEnd(cw)}${f.chosen.padEnd(w)}${fmt(f.chosenOnOthers).padStart(8)}` +
        `${fmt(f.leftOut.standard).padStart(10)}${fmt(f.leftOut.reward_low_FP_rate).padStart(9)}` +
        `${fmt(f.leftOut.reward_low_FN_rate).padStart(8)}${atText.padStart(22)}${fmt(f.bestInSample.standard).padStart(16)}`,
    );
  }
  lines.push(
    `average over the ${r.folds.filter((f) => f.windows > 0).length} categories with windows: left ` +
      `out ${fmt(r.averageLeftOut)} (at the others' thresholds ${fmt(r.averageLeftOutAtOthersThreshold)}); in-sample ` +
      `(${r.chosenOnAll}) ${fmt(r.averageInSample)}`,
  );
  return `${lines.join('\n')}\n`;
}
