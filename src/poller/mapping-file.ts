import { readFileSync } from 'node:fs';
import type { MetricPreset } from '../core/metrics';
import { MappingSchema, mappingIssueMessage, presetMapping, type Mapping } from './telegraf';

/** The mapping from METRICS_MAPPING_FILE (JSON, checked), or the preset set's (METRIC_SET) from Telegraf's standard inputs. */
export function loadMapping(file: string | undefined, includeSent: boolean, preset: MetricPreset = 'basic'): Mapping {
  if (!file) return presetMapping(preset, includeSent);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`METRICS_MAPPING_FILE ${file}: ${(e as Error).message}`);
  }
  const r = MappingSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new Error(`METRICS_MAPPING_FILE ${file}: ${i.path.join('.') || '(root)'}: ${mappingIssueMessage(i)}`);
  }
  return r.data;
}
