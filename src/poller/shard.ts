/**
 * Host sharding across replicas, like Prometheus' hashmod relabelling: a host belongs to
 * shard fnv1a32(host) mod count, so each host is scored by exactly one replica.
 */
export function shardOf(host: string, count: number): number {
  let h = 0x811c9dc5;
  const bytes = Buffer.from(host, 'utf8');
  for (const b of bytes) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % count;
}

export interface Shard {
  count: number;
  index: number;
}

export const ownsHost = (shard: Shard, host: string): boolean => shard.count <= 1 || shardOf(host, shard.count) === shard.index;
