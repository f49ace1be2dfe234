import { execFileSync } from 'node:child_process';
import { parseArtifact, type ModelArtifact } from '../core/artifact';
import { MlflowClient, MODEL_FILE, type Metric } from './client';
import { MlflowError } from './errors';

/**
 * A training run in MLflow: run, params, metrics, tags and artifacts, then the Model
 * Registry: a new version of the registered model, and the `champion` alias moved to it
 * when it beats the current champion on the same test data (or when asked to).
 */

export const CHAMPION_ALIAS = 'champion';
/** Where the model file goes in the run's artifacts; the registered version's source is this directory. */
export const MODEL_ARTIFACT_DIR = 'model';

/** What the champion comparison looks at: F1 at the model's own threshold, then PR-AUC. */
export interface ComparableMetrics {
  f1: number;
  pr_auc: number | null;
}

export interface ChampionState {
  version: string;
  /** The champion's figures on the candidate's test data; null when it could not be scored. */
  metrics: ComparableMetrics | null;
  /** Why the champion's artifact is unusable (download or verification failed), if it is. */
  unusable?: string;
}

/**
 * Whether the champion alias moves to the candidate:
 * - with `promote`, always;
 * - with no champion yet, or a champion whose artifact is unusable, yes;
 * - without labels (candidate null), no: nothing says the candidate is better;
 * - otherwise when its test F1 is higher, or equal with a higher PR-AUC.
 */
export function decideChampion(
  candidate: ComparableMetrics | null,
  champion: ChampionState | null,
  promote: boolean,
): { move: boolean; reason: string } {
  if (promote) return { move: true, reason: `--promote${champion ? ` (replaces version ${champion.version})` : ''}` };
  if (!champion) return { move: true, reason: 'there was no champion yet' };
  if (champion.unusable) return { move: true, reason: `the champion (version ${champion.version}) is unusable: ${champion.unusable}` };
  if (!candidate)
    return {
      move: false,
      reason: `the data has no labels, so nothing shows this model beats the champion (version ${champion.version}); pass --promote to make it champion`,
    };
  if (!champion.metrics) return { move: false, reason: `the champion (version ${champion.version}) could not be scored on the test data` };
  const c = candidate;
  const ch = champion.metrics;
  const vs = `test F1 ${c.f1.toFixed(4)} vs ${ch.f1.toFixed(4)}, PR-AUC ${fmt(c.pr_auc)} vs ${fmt(ch.pr_auc)} on the same test rows`;
  if (c.f1 > ch.f1) return { move: true, reason: `beats the champion (version ${champion.version}): ${vs}` };
  if (c.f1 === ch.f1 && (c.pr_auc ?? -1) > (ch.pr_auc ?? -1))
    return { move: true, reason: `ties the champion (version ${champion.version}) on F1 and beats it on PR-AUC: ${vs}` };
  return { move: false, reason: `does not beat the champion (version ${champion.version}): ${vs}` };
}

const fmt = (v: number | null): string => (v === null ? 'n/a' : v.toFixed(4));

/** The checked-out commit (and a `-dirty` mark), or 'unknown' outside a git work tree. */
export function gitCommit(cwd = process.cwd()): string {
  try {
    const head = execFileSync('git', ['rev-parse', 'HEAD'], {
      cwd,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 5000,
    }).trim();
    if (!/^[0-9a-f]{40}$/.test(head)) return 'unknown';
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
      cwd,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 5000,
    }).trim();
    return dirty ? `${head}-dirty` : head;
  } catch {
    return 'unknown';
  }
}

export interface TrackingInput {
  experiment: string;
  runName: string;
  /** Registered model name. */
  modelName: string;
  promote: boolean;
  params: Record<string, string | number | boolean>;
  metrics: Metric[];
  tags: Record<string, string>;
  /** The artifact's bytes, uploaded as model/model.json. */
  modelJson: string;
  /** Other files: path inside the run's artifacts -> content. */
  artifacts: Array<{ path: string; content: Buffer | string }>;
  /** The candidate's test figures; null without labels. */
  candidate: ComparableMetrics | null;
  /** Scores another model on the candidate's test rows (null without labels). */
  scoreOnTest: (artifact: ModelArtifact) => ComparableMetrics | null;
}

export interface TrackingResult {
  trackingUri: string;
  experimentId: string;
  runId: string;
  /** Web UI page of the run. */
  runUrl: string;
  modelName: string;
  registeredVersion: string;
  modelUri: string;
  champion: { moved: boolean; version: string | null; previous: string | null; reason: string };
}

/**
 * Logs a training run and registers its model. On a failure after the run was created,
 * the run is marked FAILED (best effort) and the MlflowError is rethrown with context.
 */
export async function trackTraining(client: MlflowClient, input: TrackingInput): Promise<TrackingResult> {
  const exp = await client.getOrCreateExperiment(input.experiment);
  const run = await client.createRun(exp.experimentId, input.runName, { 'mlflow.runName': input.runName, ...input.tags });
  try {
    await client.logBatch(run.runId, { params: input.params, metrics: input.metrics });
    await client.uploadArtifact(run.runId, `${MODEL_ARTIFACT_DIR}/${MODEL_FILE}`, input.modelJson);
    for (const a of input.artifacts) await client.uploadArtifact(run.runId, a.path, a.content);

    await client.createRegisteredModel(input.modelName, 'Isolation Forest over CPU, memory and network load (infra-anomaly-detector)');
    const source = await client.artifactUri(run.runId, MODEL_ARTIFACT_DIR);
    const version = await client.createModelVersion(input.modelName, source, run.runId, {
      tags: { model_version: input.tags.model_version ?? '' },
      description: `model ${input.tags.model_version ?? ''}`,
    });

    const champion = await currentChampion(client, input);
    const decision = decideChampion(input.candidate, champion, input.promote);
    if (decision.move) await client.setRegisteredModelAlias(input.modelName, CHAMPION_ALIAS, version.version);
    await client.logBatch(run.runId, {
      tags: {
        registered_model: input.modelName,
        registered_version: version.version,
        champion: decision.move ? 'true' : 'false',
        champion_reason: decision.reason,
      },
    });
    await client.updateRun(run.runId, 'FINISHED');
    return {
      trackingUri: client.trackingUri,
      experimentId: exp.experimentId,
      runId: run.runId,
      runUrl: `${client.trackingUri}/#/experiments/${exp.experimentId}/runs/${run.runId}`,
      modelName: input.modelName,
      registeredVersion: version.version,
      modelUri: `models:/${input.modelName}/${version.version}`,
      champion: {
        moved: decision.move,
        version: decision.move ? version.version : (champion?.version ?? null),
        previous: champion?.version ?? null,
        reason: decision.reason,
      },
    };
  } catch (e) {
    await client.updateRun(run.runId, 'FAILED').catch(() => undefined);
    throw e instanceof MlflowError ? e.withContext(`MLflow run ${run.runId}`) : e;
  }
}

/** The current champion and its figures on the candidate's test rows; null when there is none. */
async function currentChampion(client: MlflowClient, input: TrackingInput): Promise<ChampionState | null> {
  // The registered model's alias list (MLflow answers a missing alias with 400, not 404).
  const version = (await client.getRegisteredModel(input.modelName)).aliases.find((a) => a.alias === CHAMPION_ALIAS)?.version;
  if (version === undefined) return null;
  let artifact: ModelArtifact;
  try {
    const resolved = await client.resolveModel(`models:/${input.modelName}@${CHAMPION_ALIAS}`);
    artifact = parseArtifact(resolved.bytes.toString('utf8'), `champion ${input.modelName} version ${version}`);
  } catch (e) {
    // Unreachable is not "unusable": let the caller see the outage.
    if (e instanceof MlflowError && (e.kind === 'unreachable' || e.kind === 'timeout')) throw e;
    return { version, metrics: null, unusable: (e as Error).message };
  }
  return { version, metrics: input.scoreOnTest(artifact) };
}
