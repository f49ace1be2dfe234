import type { SimulatedRow } from '../data/simulate';

/** The training CSV format: timestamp,host,cpu_usage,memory_usage,network_load,anomaly. */
export function rowsToCsv(rows: SimulatedRow[]): string {
  const out = ['timestamp,host,cpu_usage,memory_usage,network_load,anomaly'];
  for (const r of rows)
    out.push(`${new Date(r.timestamp).toISOString()},${r.host},${r.cpu_usage},${r.memory_usage},${r.network_load},${r.anomaly}`);
  return `${out.join('\n')}\n`;
}
