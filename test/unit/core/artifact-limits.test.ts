import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ArtifactError, parseArtifact, serialize, sign, signWithKey, type ModelArtifact } from '../../../src/core/artifact';
import { FileModelSource } from '../../../src/model-source';
import { loadDetectorFile } from '../../../src/model-store';
import { MODEL_PATH } from '../../helpers/fixtures';

/** Issue 11 item 4 (size and shape limits) and the optional keyed signature. */
const text = readFileSync(MODEL_PATH, 'utf8');
const bundled = (): ModelArtifact => JSON.parse(text) as ModelArtifact;
const resign = (a: ModelArtifact): string => {
  const { sha256: _s, signature: _g, ...rest } = a;
  return serialize(sign(rest));
};

function errorOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ArtifactError);
    expect((e as Error).message).not.toContain('\n');
    return (e as Error).message;
  }
  throw new Error('no error');
}

describe('artifact size and shape limits', () => {
  const dir = mkdtempSync(join(tmpdir(), 'artifact-limits-'));

  it('refuses a file over MODEL_MAX_BYTES from its size, before reading it', () => {
    const path = join(dir, 'big.json');
    writeFileSync(path, text);
    expect(errorOf(() => loadDetectorFile(path, { maxBytes: 100_000 }))).toBe(
      `model artifact ${path}: ${text.length} bytes, more than the limit of 100000 (MODEL_MAX_BYTES); not read`,
    );
    expect(loadDetectorFile(path, { maxBytes: text.length }).version).toBe(bundled().version);
  });

  it('refuses text over the limit before JSON.parse', () => {
    const huge = `${'['.repeat(3_000_000)}`;
    const t0 = Date.now();
    expect(errorOf(() => parseArtifact(huge, 'x', { maxBytes: 1_000_000 }))).toBe(
      'x: 3000000 characters, more than the limit of 1000000 bytes (MODEL_MAX_BYTES)',
    );
    expect(Date.now() - t0).toBeLessThan(50);
  });

  it.each([
    [
      'trees',
      (a: ModelArtifact) => (a.forest.roots = Array.from({ length: 1001 }, () => a.forest.roots[0])),
      'the forest is too large: 1001 trees, more than the limit of 1000',
    ],
    [
      'subsample',
      (a: ModelArtifact) => (a.forest.subsample = 5000),
      'the forest is too large: 5000 points of subsample, more than the limit of 4096',
    ],
    [
      'features',
      (a: ModelArtifact) => (a.features = Array.from({ length: 300 }, () => a.features[0])),
      'the forest is too large: 300 features, more than the limit of 256',
    ],
  ])('refuses a forest beyond the %s limit with one line, before the schema walks it', (_name, change, message) => {
    const a = bundled();
    change(a);
    expect(errorOf(() => parseArtifact(resign(a), 'm'))).toBe(`m: ${message}`);
  });

  it('refuses too many nodes (limit given for the test)', () => {
    const nodes = bundled().forest.feature.length;
    expect(errorOf(() => parseArtifact(text, 'm', { limits: { trees: 1000, subsample: 4096, nodes: nodes - 1, features: 256 } }))).toBe(
      `m: the forest is too large: ${nodes} nodes, more than the limit of ${nodes - 1}`,
    );
  });
});

describe('keyed artifact signatures (MODEL_SIGNING_KEY)', () => {
  const key = 'a-secret-of-32-characters-long!!';
  const signed = serialize(signWithKey(bundled(), key));

  it('loads an artifact signed with the key, and without a key ignores the signature', () => {
    expect(parseArtifact(signed, 'm', { signingKey: key }).signature?.alg).toBe('hmac-sha256');
    expect(parseArtifact(signed, 'm').sha256).toBe(bundled().sha256);
  });

  it('refuses an unsigned artifact when a key is set', () => {
    expect(errorOf(() => parseArtifact(text, 'm', { signingKey: key }))).toMatch(/^m: unsigned; MODEL_SIGNING_KEY is set/);
  });

  it('refuses another key, and content changed and re-checksummed after signing', () => {
    expect(errorOf(() => parseArtifact(signed, 'm', { signingKey: `${key}x` }))).toMatch(/^m: signature does not match MODEL_SIGNING_KEY/);
    const a = JSON.parse(signed) as ModelArtifact;
    a.threshold.value = 0.99;
    const { sha256: _s, signature, ...rest } = a;
    const forged = serialize({ ...sign(rest), signature });
    expect(errorOf(() => parseArtifact(forged, 'm', { signingKey: key }))).toMatch(/signature does not match/);
    // The unkeyed checksum alone does not notice: it was recomputed.
    expect(parseArtifact(forged, 'm').threshold.value).toBe(0.99);
  });

  it('the service refuses an unsigned model file at load', async () => {
    await expect(new FileModelSource(MODEL_PATH, { signingKey: key }).load()).rejects.toThrow(/unsigned; MODEL_SIGNING_KEY is set/);
  });
});
