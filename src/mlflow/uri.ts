import { MlflowError } from './errors';

/** What a model URI points at, before any request is made. */
export type ModelRef =
  | { kind: 'alias'; name: string; alias: string }
  | { kind: 'version'; name: string; version: string }
  | { kind: 'latest'; name: string; stage?: string }
  | { kind: 'run'; runId: string; path: string }
  | { kind: 'artifact'; path: string };

/** The path under the artifact proxy (`/api/2.0/mlflow-artifacts/artifacts/`). */
export const ARTIFACT_PROXY_PREFIX = '/api/2.0/mlflow-artifacts/artifacts';

function invalid(uri: string, why: string): MlflowError {
  return new MlflowError(`invalid model URI '${uri}': ${why}`, 'invalid_argument');
}

/**
 * Parses `models:/<name>@<alias>`, `models:/<name>/<version>`, `models:/<name>/latest`,
 * `models:/<name>/<stage>`, `runs:/<run_id>/<path>` and `mlflow-artifacts:/<path>`.
 * Throws MlflowError (`invalid_argument`) for anything else.
 */
export function parseModelUri(uri: string): ModelRef {
  const u = uri.trim();
  if (u.startsWith('models:')) {
    const rest = u.slice('models:'.length).replace(/^\/+/, '');
    const at = rest.lastIndexOf('@');
    if (at >= 0) {
      const name = rest.slice(0, at);
      const alias = rest.slice(at + 1);
      if (!name || !alias || alias.includes('/')) throw invalid(uri, 'expected models:/<name>@<alias>');
      return { kind: 'alias', name, alias };
    }
    const slash = rest.lastIndexOf('/');
    const name = rest.slice(0, slash);
    const second = rest.slice(slash + 1);
    if (slash <= 0 || !second) throw invalid(uri, 'expected models:/<name>/<version> or models:/<name>@<alias>');
    if (/^[0-9]+$/.test(second)) return { kind: 'version', name, version: String(Number(second)) };
    if (second.toLowerCase() === 'latest') return { kind: 'latest', name };
    return { kind: 'latest', name, stage: second };
  }
  if (u.startsWith('runs:')) {
    const rest = u.slice('runs:'.length).replace(/^\/+/, '');
    const slash = rest.indexOf('/');
    const runId = slash < 0 ? rest : rest.slice(0, slash);
    const path = slash < 0 ? '' : rest.slice(slash + 1);
    if (!/^[A-Za-z0-9_-]+$/.test(runId)) throw invalid(uri, 'expected runs:/<run_id>/<path>');
    return { kind: 'run', runId, path: normalizeArtifactPath(path, true) };
  }
  if (u.startsWith('mlflow-artifacts:')) return { kind: 'artifact', path: artifactProxyPath(u) };
  throw invalid(uri, 'expected models:/<name>@<alias>, models:/<name>/<version>, runs:/<run_id>/<path> or mlflow-artifacts:/<path>');
}

/**
 * The proxy path of an artifact location served by `mlflow server --serve-artifacts`:
 * `mlflow-artifacts:/1/<run>/artifacts` (or `mlflow-artifacts://host:port/1/...`, or an
 * `http(s)://.../api/2.0/mlflow-artifacts/artifacts/1/...` URL) becomes `1/<run>/artifacts`.
 * Other stores (s3://, file://, ...) are not reachable through the tracking server.
 */
export function artifactProxyPath(artifactUri: string): string {
  const m = /^mlflow-artifacts:(?:\/\/[^/]*)?(\/.*)?$/.exec(artifactUri);
  if (m) return normalizeArtifactPath(decodeURIComponent(m[1] ?? ''), true);
  if (/^https?:\/\//.test(artifactUri)) {
    const i = artifactUri.indexOf(`${ARTIFACT_PROXY_PREFIX}/`);
    if (i >= 0) return normalizeArtifactPath(decodeURIComponent(artifactUri.slice(i + ARTIFACT_PROXY_PREFIX.length + 1)), true);
  }
  throw new MlflowError(
    `artifact location '${artifactUri}' is not served by the tracking server's artifact proxy (start mlflow ` +
      `server with --serve-artifacts and no --default-artifact-root outside it)`,
    'invalid_argument',
  );
}

/**
 * A relative artifact path with `/` separators, no empty, `.` or `..` segments.
 * `allowEmpty` accepts '' (the root).
 */
export function normalizeArtifactPath(path: string, allowEmpty = false): string {
  const parts = path
    .replace(/\\/g, '/')
    .split('/')
    .filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..')) throw new MlflowError(`artifact path '${path}' must not contain '..'`, 'invalid_argument');
  if (parts.length === 0 && !allowEmpty) throw new MlflowError('artifact path must not be empty', 'invalid_argument');
  return parts.join('/');
}

/** Joins artifact path pieces, skipping empty ones. */
export function joinArtifactPath(...parts: string[]): string {
  return parts.filter((p) => p !== '').join('/');
}

/** Percent-encodes each segment of a relative artifact path for use in a URL path. */
export function encodeArtifactPath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}
