import { readFileSync, statSync } from 'node:fs';
import { ArtifactError, DEFAULT_MAX_ARTIFACT_BYTES, parseArtifact, type ParseOptions } from './core/artifact';
import { Detector } from './core/detector';

/** The model the service serves, swapped atomically on reload. */
export interface LoadedModel {
  detector: Detector;
  loadedAt: Date;
  /** Where it came from: a file path or a models:/ or runs:/ URI. */
  source: string;
}

/**
 * Reads and verifies an artifact file; throws ArtifactError with one line. A file larger
 * than `opts.maxBytes` is refused from its size, without reading it.
 */
export function loadDetectorFile(path: string, opts: ParseOptions = {}): Detector {
  let text: string;
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_ARTIFACT_BYTES;
  try {
    const size = statSync(path).size;
    if (size > maxBytes)
      throw new ArtifactError(`model artifact ${path}: ${size} bytes, more than the limit of ${maxBytes} (MODEL_MAX_BYTES); not read`);
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (e instanceof ArtifactError) throw e;
    throw new ArtifactError(`model artifact ${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  // Any metric set: the service serves what its model declares (server.ts checks the mapping provides it).
  return new Detector(parseArtifact(text, `model artifact ${path}`, opts), { inputs: 'any' });
}

/** Holds the current model. Readers take `current` once per request. */
export class ModelStore {
  private model: LoadedModel | null = null;

  constructor(initial?: LoadedModel) {
    this.model = initial ?? null;
  }

  get current(): LoadedModel | null {
    return this.model;
  }

  /** Replaces the model in one assignment: a request sees the old or the new, never a mix. */
  swap(next: LoadedModel): void {
    this.model = next;
  }

  static fromDetector(detector: Detector, source: string): ModelStore {
    return new ModelStore({ detector, loadedAt: new Date(), source });
  }
}
