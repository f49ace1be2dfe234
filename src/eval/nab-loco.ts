/**
 * Leave one category out on NAB: does a parameter set chosen on some series carry over
 * to series nobody tuned on? Every candidate of a small, explicit set is streamed once
 * over every file; then, for each category, the candidate with the best standard score
 * on the other categories' files (pooled, threshold optimised on them, as NAB scores a
 * corpus) is scored on the category left out. One parameter set for all files of a fold,
 * never per file or per category (NAB's rules).
 */
import { categoryOf, readLabels, readProfiles, scoreDetector, type ProfileResult } from './nab-data';
import { DEFAULT_NAB_PARAMS, labelledFiles, readAllSeries, runSeries, scoreAt, type NabBenchParams } from './nab-bench';
import { normaliseScore, type CostMatrix, type NabFile } from './nab-scorer';

/** A named parameter set. */
export interface NabCandidate {
  name: string;
  params: NabBenchParams;
}

const HOUR = 3_600_000;

/**
 * The candidates: the default and a few one-knob variants around it, each a guess about
 * what carries over (see README, NAB). Small on purpose: every candidate streams every
 * file once (about 7 s for the 51 files here on one thread).
 */
export const LOCO_CANDIDATES: readonly NabCandidate[] = [
  { name: 'default', params: DEFAULT_NAB_PARAMS },
  { name: 'peak-3h', params: { ...DEFAULT_NAB_PARAMS, gate: { ...DEFAULT_NAB_PARAMS.gate, peakWindowMs: 3 * HOUR } } },
  { name: 'novelty-0.5', params: { ...DEFAULT_NAB_PARAMS, noveltyWeight: 0.5 } },
];

/** Options of {@link runLoco}. */
export interface LocoOptions {
  nabDir: string;
  /** Data files (default: every labelled file). */
  files?: readonly string[];
  candidates?: readonly NabCandidate[];
  log?: (line: string) => void;
}

/** One fold: the category left out and what the candidate chosen without it scored there. */
export interface LocoFold {
  category: string;
  files: number;
  windows: number;
  /** The candidate with the best standard score on the other categories. */
  chosen: string;
  /** Its normalised standard score on the other categories (threshold optimised there). */
  chosenOnOthers: number | null;
  /** On the category left out, thresholds optimised on it (as NAB scores any set of files): null without windows. */
  leftOut: Record<string, number | null>;
  /**
   * On the category left out at the threshold chosen on the others (nothing of the
   * category seen at all): standard raw score, false alarms, and normalised score.
   */
  leftOutAtOthersThreshold: { threshold: number; score: number; falseAlarms: number; normalised: number | null };
  /** The same candidate's in-sample figure on the category (for comparison: the best candidate on it). */
  bestInSample: { candidate: string; standard: number | null };
}

/** Everything the leave-one-category-out run measured. */
export interface LocoResult {
  files: string[];
  categories: string[];
  candidates: string[];
  /** Per candidate: all files and each category, thresholds optimised on the files scored. */
  inSample: Record<string, { all: Record<string, ProfileResult>; byCategory: Record<string, Record<string, ProfileResult>> }>;
  /** The candidate chosen on all files (the one to ship). */
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

/** Picks the candidate with the highest standard score on `files` (ties: the earlier candidate). */
function choose(names: readonly string[], byCandidate: Map<string, NabFile[]>, keep: (f: NabFile) => boolean, profiles: Record<string, CostMatrix>, standard: string): { name: string; row: Record<string, ProfileResult> } {
  let best: { name: string; row: Record<string, ProfileResult> } | undefined;
  for (const name of names) {
    const files = (byCandidate.get(name) as NabFile[]).filter(keep);
    const row = scoreDetector(name, files, { [standard]: profiles[standard] }).profiles;
    const v = row[standard].normalised ?? row[standard].score;
    const b = best ? (best.row[standard].normalised ?? best.row[standard].score) : -Infinity;
    if (best === undefined || v > b) best = { name, row };
  }
  return best as { name: string; row: Record<string, ProfileResult> };
}

/** Streams every candidate over every file, then scores in-sample and leave-one-category-out. */
export function runLoco(opts: LocoOptions): LocoResult {
  const candidates = opts.candidates ?? LOCO_CANDIDATES;
  if (candidates.length === 0) throw new RangeError('leave-one-category-out needs at least one candidate');
  const names = candidates.map((c) => c.name);
  if (new Set(names).size !== names.length) throw new RangeError('candidate names must be unique');
  const profiles = readProfiles(opts.nabDir);
  const standard = profiles.standard ? 'standard' : Object.keys(profiles)[0];
  const labels = readLabels(opts.nabDir);
  const files = opts.files ? [...opts.files] : labelledFiles(opts.nabDir, labels, opts.log);
  const series = readAllSeries(opts.nabDir, files, labels);
  const byCandidate = new Map<string, NabFile[]>();
  for (const c of candidates) {
    const t0 = Date.now();
    byCandidate.set(
      c.name,
      series.map((s) => ({ name: s.relPath, timestamps: s.times, scores: Array.from(runSeries(s, c.params).anomalyScores), windows: labels.get(s.relPath) ?? [] })),
    );
    opts.log?.(`candidate ${c.name}: ${files.length} file(s) streamed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  const categories = [...new Set(files.map(categoryOf))];
  const inSample: LocoResult['inSample'] = {};
  for (const name of names) {
    const all = byCandidate.get(name) as NabFile[];
    const byCategory: Record<string, Record<string, ProfileResult>> = {};
    for (const cat of categories) byCategory[cat] = scoreDetector(name, all.filter((f) => categoryOf(f.name) === cat), profiles).profiles;
    inSample[name] = { all: scoreDetector(name, all, profiles).profiles, byCategory };
  }
  const chosenOnAll = choose(names, byCandidate, () => true, profiles, standard).name;
  const folds: LocoFold[] = categories.map((cat) => {
    const inCat = (f: NabFile): boolean => categoryOf(f.name) === cat;
    const pick = choose(names, byCandidate, (f) => !inCat(f), profiles, standard);
    const catFiles = (byCandidate.get(pick.name) as NabFile[]).filter(inCat);
    const leftOut = Object.fromEntries(Object.entries(inSample[pick.name].byCategory[cat]).map(([p, r]) => [p, r.normalised]));
    const at = scoreAt(catFiles, pick.row[standard].threshold, profiles[standard]);
    let bestName = names[0];
    for (const n of names) if ((inSample[n].byCategory[cat][standard].normalised ?? -Infinity) > (inSample[bestName].byCategory[cat][standard].normalised ?? -Infinity)) bestName = n;
    return {
      category: cat,
      files: catFiles.length,
      windows: catFiles.reduce((s, f) => s + f.windows.length, 0),
      chosen: pick.name,
      chosenOnOthers: pick.row[standard].normalised,
      leftOut,
      leftOutAtOthersThreshold: { ...at, normalised: normalised(catFiles, at.score, profiles[standard]) },
      bestInSample: { candidate: bestName, standard: inSample[bestName].byCategory[cat][standard].normalised },
    };
  });
  const withWindows = folds.filter((f) => f.windows > 0);
  return {
    files,
    categories,
    candidates: names,
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
    `NAB in-sample, standard profile (thresholds optimised on the files scored), ${r.files.length} file(s):`,
    `${'candidate'.padEnd(w)}${'all'.padStart(8)}${r.categories.map((c) => c.padStart(Math.max(c.length, 8) + 2)).join('')}`,
    ...r.candidates.map(
      (n) =>
        `${(n === r.chosenOnAll ? `${n} *` : n).padEnd(w)}${fmt(r.inSample[n].all.standard?.normalised).padStart(8)}${r.categories.map((c) => fmt(r.inSample[n].byCategory[c].standard?.normalised).padStart(Math.max(c.length, 8) + 2)).join('')}`,
    ),
    `(* chosen on all files; a category without windows has no normalised score)`,
    '',
    `Leave one category out (candidate chosen on the other categories by their pooled standard score):`,
    `${'left out'.padEnd(cw)}${'chosen'.padEnd(w)}${'others'.padStart(8)}${'left out'.padStart(10)}${'(low FP'.padStart(9)}${'low FN)'.padStart(8)}${"at others' threshold".padStart(22)}${'best in-sample'.padStart(16)}`,
  ];
  for (const f of r.folds) {
    const at = f.leftOutAtOthersThreshold;
    const atText = f.windows > 0 ? `${fmt(at.normalised)} (${at.falseAlarms} FA)` : `${at.score.toFixed(2)} (${at.falseAlarms} FA)`;
    lines.push(
      `${f.category.padEnd(cw)}${f.chosen.padEnd(w)}${fmt(f.chosenOnOthers).padStart(8)}${fmt(f.leftOut.standard).padStart(10)}${fmt(f.leftOut.reward_low_FP_rate).padStart(9)}${fmt(f.leftOut.reward_low_FN_rate).padStart(8)}${atText.padStart(22)}${fmt(f.bestInSample.standard).padStart(16)}`,
    );
  }
  lines.push(
    `average over the ${r.folds.filter((f) => f.windows > 0).length} categories with windows: left out ${fmt(r.averageLeftOut)} (at the others' thresholds ${fmt(r.averageLeftOutAtOthersThreshold)}); in-sample (${r.chosenOnAll}) ${fmt(r.averageInSample)}`,
  );
  return `${lines.join('\n')}\n`;
}
