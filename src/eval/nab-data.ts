/**
 * Reads a NAB directory (a clone of github.com/numenta/NAB or a part of one):
 * `data/<category>/*.csv`, `labels/combined_windows.json`, `config/profiles.json`,
 * `results/<detector>/...`. The directory is always a parameter, never copied.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { NabDataError } from '../errors';
import { type CostMatrix, type NabFile, type NabWindow, normaliseScore, optimiseThreshold, prepareSweep } from './nab-scorer';

export { NabDataError };

const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?$/;

/** Parses NAB's `YYYY-MM-DD HH:MM:SS[.ffffff]` (no zone: read as UTC) to epoch ms. */
export function parseNabTimestamp(text: string): number {
  const m = TIMESTAMP.exec(text.trim());
  if (!m) throw new NabDataError(`not a NAB timestamp: ${JSON.stringify(text)}`);
  const ms = m[7] ? Number(`0.${m[7]}`) * 1000 : 0;
  return Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]) + ms;
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new NabDataError(code === 'ENOENT' ? `${path}: no such file` : `${path}: cannot read (${code ?? (e as Error).message})`);
  }
}

function readJson(path: string): unknown {
  const text = readText(path);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new NabDataError(`${path}: invalid JSON (${(e as Error).message})`);
  }
}

/**
 * Reads the named columns of a NAB CSV, one string array per name. NAB's files have no
 * quoted fields, so a scan for commas suffices; it avoids splitting every line (the
 * results of all detectors are about a million rows).
 */
function readColumns(path: string, names: readonly string[]): string[][] {
  const text = readText(path);
  let eol = text.indexOf('\n');
  if (eol < 0) eol = text.length;
  const header = text
    .slice(0, eol)
    .split(',')
    .map((h) => h.trim());
  if (header.join('') === '') throw new NabDataError(`${path}: the file is empty`);
  const slotOf = new Int32Array(header.length).fill(-1);
  names.forEach((name, k) => {
    const i = header.indexOf(name);
    if (i < 0) throw new NabDataError(`${path}: no "${name}" column (header: ${header.join(',')})`);
    slotOf[i] = k;
  });
  const limit = Math.max(...names.map((n) => header.indexOf(n))) + 1;
  const out = names.map((): string[] => []);
  let line = 1;
  for (let pos = eol + 1; pos < text.length; pos = eol + 1) {
    line++;
    eol = text.indexOf('\n', pos);
    if (eol < 0) eol = text.length;
    const end = text.charCodeAt(eol - 1) === 13 ? eol - 1 : eol;
    if (end <= pos) continue;
    let col = 0;
    for (let start = pos; col < limit; col++) {
      let comma = text.indexOf(',', start);
      if (comma < 0 || comma > end) comma = end;
      if (slotOf[col] >= 0) out[slotOf[col]].push(text.slice(start, comma));
      if (comma === end) {
        col++;
        break;
      }
      start = comma + 1;
    }
    if (col < limit) throw new NabDataError(`${path}: line ${line} has ${col} fields, expected at least ${limit}`);
  }
  return out;
}

function requireDir(path: string, what: string): void {
  if (!existsSync(path) || !statSync(path).isDirectory()) throw new NabDataError(`${path}: no such directory (${what})`);
}

/** Data files under `DIR/data`, as sorted `category/file.csv` paths (NAB's label keys). */
export function listDataFiles(nabDir: string): string[] {
  const dataDir = join(nabDir, 'data');
  requireDir(dataDir, 'NAB data folder');
  const out: string[] = [];
  for (const category of readdirSync(dataDir, { withFileTypes: true })) {
    if (!category.isDirectory()) continue;
    for (const f of readdirSync(join(dataDir, category.name))) if (f.endsWith('.csv')) out.push(`${category.name}/${f}`);
  }
  return out.sort();
}

/** Label windows by data file (`labels/combined_windows.json`), timestamps as epoch ms. */
export function readLabels(nabDir: string): Map<string, NabWindow[]> {
  const path = join(nabDir, 'labels', 'combined_windows.json');
  const json = readJson(path);
  if (json === null || typeof json !== 'object' || Array.isArray(json))
    throw new NabDataError(`${path}: expected an object of file -> windows`);
  const out = new Map<string, NabWindow[]>();
  for (const [file, windows] of Object.entries(json)) {
    if (!Array.isArray(windows)) throw new NabDataError(`${path}: windows of ${file} are not a list`);
    out.set(
      file,
      windows.map((w: unknown) => {
        if (!Array.isArray(w) || w.length !== 2 || typeof w[0] !== 'string' || typeof w[1] !== 'string') {
          throw new NabDataError(`${path}: a window of ${file} is not [start, end]: ${JSON.stringify(w)}`);
        }
        return [parseNabTimestamp(w[0]), parseNabTimestamp(w[1])] as const;
      }),
    );
  }
  return out;
}

/** Scoring profiles (`config/profiles.json`) by name. */
export function readProfiles(nabDir: string): Record<string, CostMatrix> {
  const path = join(nabDir, 'config', 'profiles.json');
  const json = readJson(path) as Record<string, { CostMatrix?: Record<string, unknown> }>;
  const out: Record<string, CostMatrix> = {};
  for (const [name, profile] of Object.entries(json ?? {})) {
    const m = profile?.CostMatrix;
    const keys = ['tpWeight', 'fpWeight', 'fnWeight', 'tnWeight'] as const;
    if (!m || keys.some((k) => typeof m[k] !== 'number'))
      throw new NabDataError(`${path}: profile ${name} lacks a numeric CostMatrix (${keys.join(', ')})`);
    out[name] = {
      tpWeight: m.tpWeight as number,
      fpWeight: m.fpWeight as number,
      fnWeight: m.fnWeight as number,
      tnWeight: m.tnWeight as number,
    };
  }
  if (Object.keys(out).length === 0) throw new NabDataError(`${path}: no profiles`);
  return out;
}

/** Detector names: the folders under `DIR/results`, sorted. */
export function listDetectors(nabDir: string): string[] {
  const dir = join(nabDir, 'results');
  requireDir(dir, 'NAB results folder');
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
}

/** Timestamps (raw text) of a data file `category/file.csv`. */
export function readDataTimestamps(nabDir: string, relPath: string): string[] {
  return readColumns(join(nabDir, 'data', relPath), ['timestamp'])[0];
}

/** Where NAB keeps a detector's results for a data file: `<root>/<det>/<category>/<det>_<file>`. */
export function resultFile(root: string, detector: string, relPath: string): string {
  const slash = relPath.lastIndexOf('/');
  return join(root, detector, relPath.slice(0, slash + 1) + `${detector}_${relPath.slice(slash + 1)}`);
}

/** Path of a published detector's results for a data file: `results/<det>/<category>/<det>_<file>`. */
export const resultsPath = (nabDir: string, detector: string, relPath: string): string =>
  resultFile(join(nabDir, 'results'), detector, relPath);

/** A detector's raw results for one data file: timestamps (text) and `anomaly_score`s. */
export function readDetectorScores(nabDir: string, detector: string, relPath: string): { timestamps: string[]; scores: number[] } {
  const path = resultsPath(nabDir, detector, relPath);
  const [timestamps, raw] = readColumns(path, ['timestamp', 'anomaly_score']);
  const scores = raw.map((text, i) => {
    const v = Number(text);
    if (text.trim() === '' || Number.isNaN(v)) throw new NabDataError(`${path}: data row ${i + 1} has no numeric anomaly_score`);
    return v;
  });
  return { timestamps, scores };
}

/** One per-file row of a published `<det>_<profile>_scores.csv`. */
export interface PublishedScoreRow {
  detector: string;
  profile: string;
  file: string;
  threshold: number;
  score: number;
  tp: number;
  tn: number;
  fp: number;
  fn: number;
  totalCount: number;
}

/** Per-file rows of `results/<det>/<det>_<profile>_scores.csv` (a "Totals" row, if any, is left out). */
export function readPublishedScores(nabDir: string, detector: string, profile: string): PublishedScoreRow[] {
  const path = join(nabDir, 'results', detector, `${detector}_${profile}_scores.csv`);
  const names = ['Detector', 'Profile', 'File', 'Threshold', 'Score', 'TP', 'TN', 'FP', 'FN', 'Total_Count'];
  const [d, p, f, th, s, tp, tn, fp, fn, tc] = readColumns(path, names);
  const out: PublishedScoreRow[] = [];
  for (let i = 0; i < f.length; i++) {
    if (f[i].trim() === '' || d[i] === 'Totals') continue;
    const nums = [th[i], s[i], tp[i], tn[i], fp[i], fn[i], tc[i]].map(Number);
    if (nums.some(Number.isNaN)) throw new NabDataError(`${path}: data row ${i + 1} has a non-numeric field`);
    const [threshold, score, tpN, tnN, fpN, fnN, totalCount] = nums;
    out.push({ detector: d[i], profile: p[i], file: f[i], threshold, score, tp: tpN, tn: tnN, fp: fpN, fn: fnN, totalCount });
  }
  return out;
}

/** Caches data-file timestamps across detectors (they are the same for every detector). */
export type TimestampCache = Map<string, { text: string[]; ms: number[] }>;

/**
 * Loads a detector's scores for data files as `NabFile`s. Like NAB, timestamps come from
 * the data file; the results must have the same rows, or this throws naming the file.
 */
export function loadDetectorFiles(
  nabDir: string,
  detector: string,
  relPaths: readonly string[],
  labels: Map<string, NabWindow[]>,
  cache: TimestampCache = new Map(),
): NabFile[] {
  return relPaths.map((relPath) => {
    const windows = labels.get(relPath);
    if (windows === undefined) throw new NabDataError(`${join(nabDir, 'labels', 'combined_windows.json')}: no windows for ${relPath}`);
    let data = cache.get(relPath);
    if (data === undefined) {
      const text = readDataTimestamps(nabDir, relPath);
      data = { text, ms: text.map(parseNabTimestamp) };
      cache.set(relPath, data);
    }
    const res = readDetectorScores(nabDir, detector, relPath);
    const path = resultsPath(nabDir, detector, relPath);
    if (res.scores.length !== data.text.length)
      throw new NabDataError(`${path}: ${res.scores.length} rows, but the data file has ${data.text.length}`);
    const bad = res.timestamps.findIndex((t, i) => t !== data.text[i] && parseNabTimestamp(t) !== data.ms[i]);
    if (bad >= 0) throw new NabDataError(`${path}: row ${bad + 2} has timestamp ${res.timestamps[bad]}, the data file ${data.text[bad]}`);
    return { name: relPath, timestamps: data.ms, scores: res.scores, windows };
  });
}

/** One detector's result for one profile, threshold optimised on the files scored. */
export interface ProfileResult {
  threshold: number;
  /** Summed raw score over the files. */
  score: number;
  /** `100 * (S - S_null) / (S_perfect - S_null)`; null over files without windows (it is undefined there). */
  normalised: number | null;
}

/** One detector's line of the leaderboard. */
export interface LeaderboardRow {
  detector: string;
  profiles: Record<string, ProfileResult>;
  /** The files scored. */
  files: string[];
  /** Files asked for that the detector has no results for (left out of its row). */
  missing: string[];
}

/** Options of {@link leaderboard}. */
export interface LeaderboardOptions {
  /** Detectors to score (default: every folder under `results/`). */
  detectors?: readonly string[];
  /** Data files to score, as `category/file.csv` (default: every labelled file under `data/`). */
  files?: readonly string[];
  /** The label windows, when the caller has read them already (default: read from `labels/`). */
  labels?: ReturnType<typeof readLabels>;
  /** Timestamps read already (shared across calls). */
  cache?: TimestampCache;
}

/** Sorts rows by a profile's normalised score, best first (rows without one last). */
export function sortRows<T extends { profiles: Record<string, ProfileResult> }>(rows: T[], profile: string): T[] {
  const key = (r: T): number => r.profiles[profile]?.normalised ?? -Infinity;
  return rows.sort((a, b) => key(b) - key(a));
}

/**
 * Normalised NAB scores per detector and profile, with each threshold optimised on the
 * files scored (so on a subset of NAB these differ from NAB's published corpus scores).
 * A detector is scored on the files it has results for; the others are listed in its
 * row's `missing` (a detector with none of them is left out). Rows are sorted by the
 * first profile's normalised score, best first.
 */
export function leaderboard(
  nabDir: string,
  profiles: Record<string, CostMatrix> = readProfiles(nabDir),
  options: LeaderboardOptions = {},
): LeaderboardRow[] {
  const labels = options.labels ?? readLabels(nabDir);
  const files = options.files ?? listDataFiles(nabDir).filter((f) => labels.has(f));
  if (files.length === 0) throw new NabDataError(`${join(nabDir, 'data')}: no labelled data files`);
  const detectors = options.detectors ?? listDetectors(nabDir);
  const cache: TimestampCache = options.cache ?? new Map();
  const rows: LeaderboardRow[] = [];
  for (const detector of detectors) {
    const present = files.filter((f) => existsSync(resultsPath(nabDir, detector, f)));
    if (present.length === 0) continue;
    const row = scoreDetector(detector, loadDetectorFiles(nabDir, detector, present, labels, cache), profiles);
    row.missing = files.filter((f) => !present.includes(f));
    rows.push(row);
  }
  return sortRows(rows, Object.keys(profiles)[0]);
}

/** A detector's leaderboard row from its files: each profile's threshold optimised on them, and the normalised score. */
export function scoreDetector(detector: string, files: readonly NabFile[], profiles: Record<string, CostMatrix>): LeaderboardRow {
  const prep = prepareSweep(files);
  const out: Record<string, ProfileResult> = {};
  for (const [name, cost] of Object.entries(profiles)) {
    const best = optimiseThreshold(prep, cost);
    out[name] = {
      threshold: best.threshold,
      score: best.score,
      normalised: prep.labelledWindows > 0 ? normaliseScore(best.score, prep.labelledWindows, cost) : null,
    };
  }
  return { detector, profiles: out, files: files.map((f) => f.name), missing: [] };
}

/** The category of a data file `category/file.csv`. */
export const categoryOf = (relPath: string): string => relPath.slice(0, relPath.lastIndexOf('/'));

/**
 * Names a list of files briefly: whole categories by name (`realTweets (10)`), other files
 * by path.
 */
export function describeFiles(subset: readonly string[], all: readonly string[]): string {
  const inSubset = new Set(subset);
  const parts: string[] = [];
  for (const category of [...new Set(all.map(categoryOf))]) {
    const mine = all.filter((f) => categoryOf(f) === category);
    const chosen = mine.filter((f) => inSubset.has(f));
    if (chosen.length === 0) continue;
    if (chosen.length === mine.length) parts.push(`${category} (${chosen.length})`);
    else parts.push(...chosen);
  }
  return parts.join(', ');
}
