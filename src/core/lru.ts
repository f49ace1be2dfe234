/**
 * A map of at most `capacity` entries; reading or creating an entry makes it the most
 * recently used, and a new entry beyond the capacity evicts the least recently used.
 * Per-key state is kept in these (feature history, gate state), so memory is bounded
 * by the number of keys.
 */
export class LruMap<V> {
  private readonly map = new Map<string, V>();
  /** Entries dropped to stay within the capacity. */
  evictions = 0;

  /** `onEvict` is told of each entry dropped to stay within the capacity. */
  constructor(
    readonly capacity: number,
    private readonly onEvict?: (key: string, value: V) => void,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error(`maxKeys must be a positive integer, got ${capacity}`);
  }

  get size(): number {
    return this.map.size;
  }

  has(key: string): boolean {
    return this.map.has(key);
  }

  /** The key's entry without marking it used (undefined if absent). */
  peek(key: string): V | undefined {
    return this.map.get(key);
  }

  /** The key's entry, made by `create` if absent; marks it most recently used. */
  get(key: string, create: () => V): V {
    let v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
      return v;
    }
    if (this.map.size >= this.capacity) {
      const oldest = this.map.keys().next().value as string;
      const gone = this.map.get(oldest) as V;
      this.map.delete(oldest);
      this.evictions++;
      this.onEvict?.(oldest, gone);
    }
    v = create();
    this.map.set(key, v);
    return v;
  }

  /** The entries' values, least recently used first (reading them does not reorder). */
  values(): IterableIterator<V> {
    return this.map.values();
  }

  delete(key: string): boolean {
    return this.map.delete(key);
  }

  clear(): void {
    this.map.clear();
  }
}
