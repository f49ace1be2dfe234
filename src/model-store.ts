import { readFileSync } from 'node:fs';
import { ArtifactError, parseArtifact } from './core/artifact';
import { Detector } from './core/detector';

/** The model the service serves, swapped atomically on reload. */
export interface LoadedModel {
  detector: Detector;
  loadedAt: Date;
  /** Where it came from: a file path or a models:/ or runs:/ URI. */
  source: string;
}

/** Reads and verifies an artifact file; throws ArtifactError with one line. */
export function loadDetectorFile(path: string): Detector {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ArtifactError(`model artifact ${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return new Detector(parseArtifact(text, `model artifact ${path}`));
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
