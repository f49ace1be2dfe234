/**
 * A minimal WebAssembly module emitter (no toolchain: the binary format is written
 * byte by byte) and the generator of the Isolation Forest scoring kernels.
 *
 * Only what the kernels need is covered: i32/f64/v128 locals, loads and stores with
 * static offsets, integer and float arithmetic, a few SIMD instructions, structured
 * control flow, one imported memory and exported functions without results.
 */

/** WebAssembly value types. */
export const I32 = 0x7f;
export const F64 = 0x7c;
export const V128 = 0x7b;

/** The subset of the WebAssembly JS API used here (lib.dom is not in this project). */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
interface WasmInstance {
  readonly exports: Record<string, unknown>;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: Record<string, Record<string, unknown>>) => WasmInstance;
  Memory: new (descriptor: { initial: number; maximum?: number }) => WasmMemory;
}

/** The global WebAssembly object, or undefined when the runtime has none. */
export function wasmApi(): WasmApi | undefined {
  const api = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  return typeof api === 'object' && api !== null ? api : undefined;
}

function uleb(out: number[], value: number): void {
  let v = value >>> 0;
  do {
    const b = v & 0x7f;
    v >>>= 7;
    out.push(v !== 0 ? b | 0x80 : b);
  } while (v !== 0);
}

function sleb(out: number[], value: number): void {
  let v = value | 0;
  for (;;) {
    const b = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return;
    }
    out.push(b | 0x80);
  }
}

function name(out: number[], s: string): void {
  const bytes = Buffer.from(s, 'utf8');
  uleb(out, bytes.length);
  for (const b of bytes) out.push(b);
}

function section(out: number[], id: number, body: number[]): void {
  out.push(id);
  uleb(out, body.length);
  for (const b of body) out.push(b);
}

/** The body of one function: typed locals and an instruction stream. */
export class FuncBuilder {
  readonly code: number[] = [];
  private readonly locals: number[] = [];

  constructor(
    readonly name: string,
    readonly params: readonly number[],
  ) {}

  /** Declares a local (params come first) and returns its index. */
  local(type: number): number {
    this.locals.push(type);
    return this.params.length + this.locals.length - 1;
  }

  get(l: number): this {
    this.code.push(0x20);
    uleb(this.code, l);
    return this;
  }
  set(l: number): this {
    this.code.push(0x21);
    uleb(this.code, l);
    return this;
  }
  tee(l: number): this {
    this.code.push(0x22);
    uleb(this.code, l);
    return this;
  }
  i32(c: number): this {
    this.code.push(0x41);
    sleb(this.code, c);
    return this;
  }
  private mem(op: number, align: number, offset: number): this {
    if (!Number.isInteger(offset) || offset < 0 || offset > 0xffffffff) throw new Error(`bad memory offset ${offset}`);
    this.code.push(op, align);
    uleb(this.code, offset);
    return this;
  }
  loadI32(offset = 0): this {
    return this.mem(0x28, 2, offset);
  }
  loadF64(offset = 0): this {
    return this.mem(0x2b, 3, offset);
  }
  storeI32(offset = 0): this {
    return this.mem(0x36, 2, offset);
  }
  storeF64(offset = 0): this {
    return this.mem(0x39, 3, offset);
  }
  loadU8(offset = 0): this {
    return this.mem(0x2d, 0, offset);
  }
  storeI16(offset = 0): this {
    return this.mem(0x3b, 1, offset);
  }
  /** A SIMD instruction (0xfd prefix) without immediates. */
  simd(op: number): this {
    this.code.push(0xfd);
    uleb(this.code, op);
    return this;
  }
  loadV128(offset = 0): this {
    this.code.push(0xfd);
    uleb(this.code, 0x00);
    return this.mem2(4, offset);
  }
  storeV128(offset = 0): this {
    this.code.push(0xfd);
    uleb(this.code, 0x0b);
    return this.mem2(4, offset);
  }
  private mem2(align: number, offset: number): this {
    if (!Number.isInteger(offset) || offset < 0 || offset > 0xffffffff) throw new Error(`bad memory offset ${offset}`);
    this.code.push(align);
    uleb(this.code, offset);
    return this;
  }
  /** Raw opcodes without immediates (arithmetic, comparisons, select, end...). */
  op(...ops: number[]): this {
    for (const o of ops) this.code.push(o);
    return this;
  }
  block(): this {
    this.code.push(0x02, 0x40);
    return this;
  }
  loop(): this {
    this.code.push(0x03, 0x40);
    return this;
  }
  end(): this {
    this.code.push(0x0b);
    return this;
  }
  br(depth: number): this {
    this.code.push(0x0c);
    uleb(this.code, depth);
    return this;
  }
  brIf(depth: number): this {
    this.code.push(0x0d);
    uleb(this.code, depth);
    return this;
  }

  /** The encoded body (locals declaration, code, final end). */
  encode(): number[] {
    const body: number[] = [];
    // Run-length encoded local declarations.
    const groups: [number, number][] = [];
    for (const t of this.locals) {
      const last = groups[groups.length - 1];
      if (last && last[1] === t) last[0]++;
      else groups.push([1, t]);
    }
    uleb(body, groups.length);
    for (const [count, t] of groups) {
      uleb(body, count);
      body.push(t);
    }
    for (const b of this.code) body.push(b);
    body.push(0x0b);
    const out: number[] = [];
    uleb(out, body.length);
    for (const b of body) out.push(b);
    return out;
  }
}

/** Opcodes without immediates. */
export const OP = {
  i32eqz: 0x45,
  i32ltU: 0x49,
  i32gtU: 0x4b,
  f64lt: 0x63,
  i32add: 0x6a,
  i32sub: 0x6b,
  i32mul: 0x6c,
  i32and: 0x71,
  i32or: 0x72,
  i32shl: 0x74,
  i32shrU: 0x76,
  f64add: 0xa0,
} as const;

/** SIMD opcodes (after the 0xfd prefix). */
export const SIMD = {
  i8x16swizzle: 0x0e,
  i16x8gtS: 0x31,
  i16x8bitmask: 0x84,
  f64x2add: 0xf0,
} as const;

/**
 * Assembles a module importing memory `env.mem` and exporting the given functions
 * (none of which return a value).
 */
export function assembleModule(funcs: readonly FuncBuilder[], minPages = 1): Uint8Array {
  const out: number[] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  // Types: one per function (duplicates are allowed).
  const types: number[] = [];
  uleb(types, funcs.length);
  for (const f of funcs) {
    types.push(0x60);
    uleb(types, f.params.length);
    for (const p of f.params) types.push(p);
    uleb(types, 0);
  }
  section(out, 1, types);
  const imports: number[] = [];
  uleb(imports, 1);
  name(imports, 'env');
  name(imports, 'mem');
  imports.push(0x02, 0x00);
  uleb(imports, minPages);
  section(out, 2, imports);
  const fsec: number[] = [];
  uleb(fsec, funcs.length);
  funcs.forEach((_, i) => uleb(fsec, i));
  section(out, 3, fsec);
  const exp: number[] = [];
  uleb(exp, funcs.length);
  funcs.forEach((f, i) => {
    name(exp, f.name);
    exp.push(0x00);
    uleb(exp, i);
  });
  section(out, 7, exp);
  const code: number[] = [];
  uleb(code, funcs.length);
  for (const f of funcs) for (const b of f.encode()) code.push(b);
  section(out, 10, code);
  return Uint8Array.from(out);
}

/**
 * Compile-time shape of a kernel module.
 *
 * 'scalar': tree t's 2^depth node words (heap order from index 1, slot 0 unused) at
 * nodesPtr + t * 4 * 2^depth; a word is (thresholdRank << shift) | (4 * feature) and a
 * point's rank row holds d i32 `rank << shift`, so that the point goes right iff its
 * rank word exceeds the node word (unsigned). One dependent step per level.
 *
 * 'simd' (d <= 8): trees are cut into blocks of 3 levels (SIMD_BLOCK_BYTES each: 8 i16
 * threshold ranks for the 7 nodes in heap order, lane 7 unused, then 8 pairs of
 * swizzle byte indices 2f, 2f + 1). A point's ranks (one i16x8 row) are gathered by the
 * block's features with one swizzle, compared with the 7 thresholds at once
 * (i16x8.gt_s), and the 8-bit mask picks the block's exit by table lookup (the tables
 * of simdExitTables at address 0): a depth-8 tree takes 3 such steps. The blocks of
 * block level lv (first node index 8^lv) follow those above it: the block of root node
 * j sits at treeBase + 32 * (blocks above + j - 8^lv).
 */
export interface KernelShape {
  kind: 'scalar' | 'simd';
  /** Number of features (row width). */
  d: number;
  /** Depth of the complete trees: every point takes exactly `depth` levels per tree. */
  depth: number;
  /** Scalar kernel: node words are (rank << shift) | 4 * feature. */
  shift: number;
  /** Points traversed in lock step per tree (independent dependency chains). */
  lanes: number;
  /**
   * Scalar kernel: scoreRows adds the leaf rows two f64 at a time (f64x2.add, the same
   * IEEE additions), which needs SIMD support. The SIMD kernel always does.
   */
  vectorAdds?: boolean;
}

/** f64 per leaf row and per output row of scoreRows: value, d gains, padding to even. */
export function rowWidth(d: number): number {
  return 2 * Math.ceil((d + 1) / 2);
}

/** Bytes of a rank row. */
export function rankRowBytes(shape: KernelShape): number {
  return shape.kind === 'simd' ? 16 : 4 * shape.d;
}

/** Bytes of one SIMD block: 8 i16 threshold ranks, then 8 pairs of swizzle byte indices. */
export const SIMD_BLOCK_BYTES = 32;
/** The SIMD kernel's exit tables at the start of memory, 256 bytes each. */
export const SIMD_LUT_BYTES = 1024;

/** Levels per block of each block level, from the root: 3, 3, ..., then 1 to 3. */
export function simdBlockLevels(depth: number): number[] {
  const levels: number[] = [];
  for (let rest = depth; rest > 0; rest -= 3) levels.push(Math.min(3, rest));
  return levels;
}

/** Bytes of one tree's nodes. */
export function treeNodeBytes(shape: KernelShape): number {
  if (shape.kind === 'scalar') return 4 * 2 ** shape.depth;
  let blocks = 0;
  simdBlockLevels(shape.depth).forEach((_, lv) => (blocks += 8 ** lv));
  return SIMD_BLOCK_BYTES * blocks;
}

/**
 * The exit tables. Bit q of a block's mask is set when the point goes right at lane q.
 * Table 0 maps a mask to 32 * exit (exit = 4 b0 + 2 b1 + b2 along the point's path),
 * for inner block levels; table L (1..3) maps it to 8 * (exit >> (3 - L)) for a last
 * block of L levels (whose lower lanes never go right).
 */
export function simdExitTables(): Uint8Array {
  const lut = new Uint8Array(SIMD_LUT_BYTES);
  for (let m = 0; m < 256; m++) {
    const b0 = m & 1;
    const q1 = 2 + b0;
    const b1 = (m >> (q1 - 1)) & 1;
    const q2 = 2 * q1 + b1;
    const b2 = (m >> (q2 - 1)) & 1;
    const exit = 4 * b0 + 2 * b1 + b2;
    lut[m] = 32 * exit;
    for (let l = 1; l <= 3; l++) lut[256 * l + m] = 8 * (exit >> (3 - l));
  }
  return lut;
}

/**
 * Generates a kernel module (importing its memory as env.mem). Exports:
 *
 * - `rank(n, xPtr, rankPtr, tablePtr, half)`: the rank rows of n points (see rankFunc).
 * - `score(n, rankPtr, accPtr, nTrees, nodesPtr, leavesPtr)`: adds each tree's leaf value
 *   (2^depth f64 per tree at leavesPtr, slot j - 2^depth for leaf heap index j) to the
 *   f64 at accPtr + 8p, trees in order.
 * - `scoreRows(n, rankPtr, rowsPtr, nTrees, nodesPtr, lcPtr)`: the same with rows of
 *   W = rowWidth(d) f64 (value, per-feature path gains, padding) per leaf at lcPtr,
 *   added to the W f64 at rowsPtr + 8Wp (with f64x2 adds in the SIMD kernel).
 * - `scoreAcross` and `scoreRowsAcross`: the same contracts, point after point, each
 *   point walking `lanes` trees in lock step instead of `lanes` points through one tree
 *   (for a few points: a lone point then has independent dependency chains too). Leaf
 *   values and rows are still added in tree order, so the sums are bit-identical.
 */
export function kernelModule(shape: KernelShape): Uint8Array {
  if (shape.kind === 'simd' && shape.d > 8) throw new Error('the SIMD kernel takes at most 8 features');
  const rank = shape.kind === 'simd' ? rankFunc(shape.d, 16, 2, 0) : rankFunc(shape.d, 4 * shape.d, 4, shape.shift);
  return assembleModule([
    rank,
    scoreFunc(shape, false, 'points'),
    scoreFunc(shape, true, 'points'),
    scoreFunc(shape, false, 'trees'),
    scoreFunc(shape, true, 'trees'),
  ]);
}

/**
 * A score function. `across` is what its lanes (independent walks in lock step) run over:
 * 'points' (lane k: point p + k through tree t; trees outermost) or 'trees' (lane k: tree
 * t + k for point p; points outermost).
 */
function scoreFunc(shape: KernelShape, rows: boolean, across: 'points' | 'trees'): FuncBuilder {
  const { kind, d, depth, shift, lanes } = shape;
  const byTree = across === 'trees';
  const f = new FuncBuilder((rows ? 'scoreRows' : 'score') + (byTree ? 'Across' : ''), [I32, I32, I32, I32, I32, I32]);
  const [n, rankPtr, accPtr, nTrees, nodesPtr, leavesPtr] = [0, 1, 2, 3, 4, 5];
  const width = 2 ** depth;
  const W = rows ? rowWidth(d) : 1;
  const leafBytes = 8 * W;
  const rowBytes = rankRowBytes(shape);
  const treeBytes = treeNodeBytes(shape);

  const nb = f.local(I32);
  const lb = f.local(I32);
  const rp = f.local(I32);
  const ap = f.local(I32);
  const rem = f.local(I32);
  const t = byTree ? -1 : f.local(I32); // trees left (lanes over points)
  const tmp = f.local(I32);
  const j: number[] = [];
  for (let k = 0; k < lanes; k++) j.push(f.local(I32));

  // SIMD: per block level, base + bias + 32 j addresses the block of root node j.
  const levels = kind === 'simd' ? simdBlockLevels(depth) : [];
  const nLv = levels.length;
  const levelBias: number[] = [];
  for (let lv = 0, blocks = 0; lv < nLv; lv++) {
    levelBias.push(SIMD_BLOCK_BYTES * (blocks - 8 ** lv));
    blocks += 8 ** lv;
  }
  const lvb: number[] = [];
  const xv: number[] = [];
  let rootThr = -1;
  let rootIdx = -1;
  if (kind === 'simd') {
    for (let lv = 0; lv < nLv; lv++) lvb.push(f.local(I32));
    // By tree, the lanes share one point's ranks and read their roots from their trees.
    for (let k = 0; k < (byTree ? 1 : lanes); k++) xv.push(f.local(V128));
    if (!byTree) {
      rootThr = f.local(V128);
      rootIdx = f.local(V128);
    }
  }
  const mask = shift > 0 ? (1 << shift) - 1 : 0;
  // Static byte offsets of lane k: its tree's nodes and leaves (by tree), its point's rank
  // row and accumulator (by point).
  const nodeOff = (k: number): number => (byTree ? k * treeBytes : 0);
  const leafOff = (k: number): number => (byTree ? k * leafBytes * width : 0);
  const rankOff = (k: number): number => (byTree ? 0 : k * rowBytes);
  const accOff = (k: number): number => (byTree ? 0 : k * 8 * W);

  /** Scalar: j = heap index; leaves j * 8 bytes from lb. */
  const scalarWalk = (count: number): void => {
    for (let k = 0; k < count; k++) f.i32(1).set(j[k]);
    for (let step = 0; step < depth; step++) {
      for (let k = 0; k < count; k++) {
        // w = node word; j = 2j + (rank word > w)
        f.get(nb).get(j[k]).i32(2).op(OP.i32shl, OP.i32add).loadI32(nodeOff(k)).set(tmp);
        f.get(j[k]).i32(1).op(OP.i32shl);
        if (mask !== 0) f.get(rp).get(tmp).i32(mask).op(OP.i32and, OP.i32add);
        else f.get(rp);
        f.loadI32(rankOff(k)).get(tmp).op(OP.i32gtU);
        f.op(OP.i32add).set(j[k]);
      }
    }
    for (let k = 0; k < count; k++) f.get(j[k]).i32(3).op(OP.i32shl).set(j[k]);
  };

  /** SIMD: j = 32 * heap index on inner block levels, then 8 * leaf heap index. */
  const simdWalk = (count: number): void => {
    // By tree, xv[0] holds the point's ranks (loaded once per point) and the lanes' roots
    // are read from their trees; lvb is set from nb here, since nb moves with each group.
    if (!byTree)
      for (let k = 0; k < count; k++)
        f.get(rp)
          .loadV128(16 * k)
          .set(xv[k]);
    else for (let lv = 1; lv < nLv; lv++) f.get(nb).i32(levelBias[lv]).op(OP.i32add).set(lvb[lv]);
    if (nLv === 0) for (let k = 0; k < count; k++) f.i32(8).set(j[k]);
    for (let lv = 0; lv < nLv; lv++) {
      const last = lv === nLv - 1;
      const table = last ? levels[lv] : 0;
      for (let k = 0; k < count; k++) {
        // table[bitmask(gather(ranks, idx) > thr)]
        f.get(xv[byTree ? 0 : k]);
        if (lv === 0 && !byTree) f.get(rootIdx);
        else if (lv === 0) f.get(nb).loadV128(16 + nodeOff(k));
        else
          f.get(lvb[lv])
            .get(j[k])
            .op(OP.i32add)
            .loadV128(16 + nodeOff(k));
        f.simd(SIMD.i8x16swizzle);
        if (lv === 0 && !byTree) f.get(rootThr);
        else if (lv === 0) f.get(nb).loadV128(nodeOff(k));
        else f.get(lvb[lv]).get(j[k]).op(OP.i32add).loadV128(nodeOff(k));
        f.simd(SIMD.i16x8gtS)
          .simd(SIMD.i16x8bitmask)
          .loadU8(256 * table);
        if (lv === 0) {
          // Root heap index 1: inner 32 (8 + e); last 8 (2^L + e).
          f.i32(last ? 8 * 2 ** levels[lv] : 32 * 8);
        } else {
          // inner: 32 (8 j + e) = 8 (32 j) + 32 e; last: 8 (2^L j + e) = (32 j) 2^L / 4 + 8 e.
          f.get(j[k]);
          if (!last) f.i32(3).op(OP.i32shl);
          else if (levels[lv] === 3) f.i32(1).op(OP.i32shl);
          else if (levels[lv] === 1) f.i32(1).op(OP.i32shrU);
        }
        f.op(OP.i32add).set(j[k]);
      }
    }
  };

  /** Traverses `count` points (rank rows rp...) through the current tree. */
  const group = (count: number): void => {
    if (kind === 'simd') simdWalk(count);
    else scalarWalk(count);
    // j[k] is now 8 * leaf heap index.
    for (let k = 0; k < count; k++) {
      if (!rows) {
        f.get(ap).get(ap).loadF64(accOff(k));
        f.get(lb).get(j[k]).op(OP.i32add).loadF64(leafOff(k));
        f.op(OP.f64add).storeF64(accOff(k));
        continue;
      }
      f.get(lb).get(j[k]).i32(W).op(OP.i32mul, OP.i32add).set(tmp);
      const vector = kind === 'simd' || shape.vectorAdds === true;
      for (let q = 0; q < W; q += vector ? 2 : 1) {
        const off = accOff(k) + 8 * q;
        f.get(ap).get(ap);
        if (vector)
          f.loadV128(off)
            .get(tmp)
            .loadV128(8 * q + leafOff(k))
            .simd(SIMD.f64x2add)
            .storeV128(off);
        else
          f.loadF64(off)
            .get(tmp)
            .loadF64(8 * q + leafOff(k))
            .op(OP.f64add)
            .storeF64(off);
      }
    }
    if (byTree) {
      f.get(nb)
        .i32(count * treeBytes)
        .op(OP.i32add)
        .set(nb);
      f.get(lb)
        .i32(count * leafBytes * width)
        .op(OP.i32add)
        .set(lb);
    } else {
      f.get(rp)
        .i32(count * rowBytes)
        .op(OP.i32add)
        .set(rp);
      f.get(ap)
        .i32(count * 8 * W)
        .op(OP.i32add)
        .set(ap);
    }
    f.get(rem).i32(count).op(OP.i32sub).set(rem);
  };

  /** Groups of `lanes`, then single lanes, until rem is 0. */
  const groups = (): void => {
    if (lanes > 1) {
      f.block();
      f.loop();
      f.get(rem).i32(lanes).op(OP.i32ltU).brIf(1);
      group(lanes);
      f.br(0);
      f.end();
      f.end();
    }
    f.block();
    f.loop();
    f.get(rem).op(OP.i32eqz).brIf(1);
    group(1);
    f.br(0);
    f.end();
    f.end();
  };

  /** nb and lb at the first tree. Leaf heap indices run over [2^depth, 2^(depth+1)): lb is biased accordingly (mod 2^32). */
  const firstTree = (): void => {
    f.get(nodesPtr).set(nb);
    f.get(leavesPtr)
      .i32(leafBytes * width)
      .op(OP.i32sub)
      .set(lb);
  };

  f.block();
  f.get(nTrees).op(OP.i32eqz).brIf(0);
  f.get(n).op(OP.i32eqz).brIf(0);
  if (byTree) {
    // Points outermost; rem counts the point's trees left.
    f.get(rankPtr).set(rp);
    f.get(accPtr).set(ap);
    f.loop(); // points
    firstTree();
    if (kind === 'simd') f.get(rp).loadV128(0).set(xv[0]);
    f.get(nTrees).set(rem);
    groups();
    f.get(rp).i32(rowBytes).op(OP.i32add).set(rp);
    f.get(ap)
      .i32(8 * W)
      .op(OP.i32add)
      .set(ap);
    f.get(n).i32(1).op(OP.i32sub).tee(n).brIf(0);
  } else {
    // Trees outermost; rem counts the tree's points left.
    firstTree();
    f.get(nTrees).set(t);
    f.loop(); // trees
    if (kind === 'simd') {
      for (let lv = 1; lv < nLv; lv++) f.get(nb).i32(levelBias[lv]).op(OP.i32add).set(lvb[lv]);
      if (nLv > 0) {
        f.get(nb).loadV128(0).set(rootThr);
        f.get(nb).loadV128(16).set(rootIdx);
      }
    }
    f.get(rankPtr).set(rp);
    f.get(accPtr).set(ap);
    f.get(n).set(rem);
    groups();
    f.get(nb).i32(treeBytes).op(OP.i32add).set(nb);
    f.get(lb)
      .i32(leafBytes * width)
      .op(OP.i32add)
      .set(lb);
    f.get(t).i32(1).op(OP.i32sub).tee(t).brIf(0);
  }
  f.end(); // loop
  f.end(); // block
  return f;
}

/**
 * `rank(n, xPtr, rankPtr, tablePtr, half)`: for each of n rows of d f64 at xPtr, the
 * count of feature f's thresholds below x_f. Feature f's thresholds form a complete
 * binary search tree of 2 * half - 1 entries in Eytzinger (heap) order, padded with
 * +Infinity, at tablePtr + f * 16 * half (entry i at + 8 i, entry 0 unused). Going
 * right whenever entry < x, a search ends at gap j - 2 * half, which is the count of
 * entries below x (0 for NaN). Branch-free, the d features interleaved, the top levels
 * in a few cache lines. Written at rankPtr + p * rowBytes + f * laneBytes: as i32
 * shifted left by `shift` (laneBytes 4) or as i16 (laneBytes 2).
 */
function rankFunc(d: number, rowBytes: number, laneBytes: 2 | 4, shift: number): FuncBuilder {
  const f = new FuncBuilder('rank', [I32, I32, I32, I32, I32]);
  const [n, xPtr, rankPtr, tablePtr, half] = [0, 1, 2, 3, 4];
  const s = f.local(I32);
  const stride = f.local(I32);
  const tab: number[] = [];
  const pos: number[] = [];
  const xv: number[] = [];
  for (let k = 0; k < d; k++) {
    tab.push(f.local(I32));
    pos.push(f.local(I32));
  }
  for (let k = 0; k < d; k++) xv.push(f.local(F64));
  f.get(half).i32(4).op(OP.i32shl).set(stride);
  for (let k = 0; k < d; k++) f.get(tablePtr).get(stride).i32(k).op(OP.i32mul, OP.i32add).set(tab[k]);
  f.block();
  f.get(n).op(OP.i32eqz).brIf(0);
  f.loop();
  for (let k = 0; k < d; k++) {
    f.get(xPtr)
      .loadF64(8 * k)
      .set(xv[k]);
    f.i32(1).set(pos[k]);
  }
  f.get(half).set(s);
  f.loop();
  for (let k = 0; k < d; k++) {
    // j = 2 j + (table[j] < x)
    f.get(pos[k]).i32(1).op(OP.i32shl);
    f.get(tab[k]).get(pos[k]).i32(3).op(OP.i32shl, OP.i32add).loadF64();
    f.get(xv[k]).op(OP.f64lt);
    f.op(OP.i32add).set(pos[k]);
  }
  f.get(s).i32(1).op(OP.i32shrU).tee(s).brIf(0);
  f.end();
  for (let k = 0; k < d; k++) {
    f.get(rankPtr).get(pos[k]).get(half).i32(1).op(OP.i32shl, OP.i32sub);
    if (shift > 0) f.i32(shift).op(OP.i32shl);
    if (laneBytes === 4) f.storeI32(4 * k);
    else f.storeI16(2 * k);
  }
  f.get(xPtr)
    .i32(8 * d)
    .op(OP.i32add)
    .set(xPtr);
  f.get(rankPtr).i32(rowBytes).op(OP.i32add).set(rankPtr);
  f.get(n).i32(1).op(OP.i32sub).tee(n).brIf(0);
  f.end();
  f.end();
  return f;
}
