/**
 * A minimal WebAssembly module emitter (no toolchain: the binary format is written
 * byte by byte) and the generator of the Isolation Forest scoring kernel.
 *
 * Only what the kernel needs is covered: i32/f64 locals, loads and stores with static
 * offsets, integer and float arithmetic, `select`, structured control flow, one
 * imported memory and exported functions.
 */

/** WebAssembly value types. */
export const I32 = 0x7f;
export const F64 = 0x7c;

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
  select: 0x1b,
  i32eqz: 0x45,
  i32ne: 0x47,
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

/** Compile-time shape of a scoring kernel. */
export interface KernelShape {
  /** Number of features (row width). */
  d: number;
  /** Depth of the complete trees: every point takes exactly `depth` steps. */
  depth: number;
  /** Node words are (thresholdRank << shift) | (4 * feature). */
  shift: number;
  /** Points traversed in lock step per tree (independent load chains). */
  lanes: number;
}

/**
 * Generates the kernel module. Exports:
 *
 * - `rank(n, xPtr, rankPtr, tablePtr, half)`: for each of n rows of d f64 at xPtr,
 *   writes d i32 `count(thresholds_f < x_f) << shift` at rankPtr. Feature f's sorted
 *   thresholds (padded with +Infinity to 2 * half entries) start at
 *   tablePtr + f * 16 * half. Branch-free binary search, the d features interleaved.
 * - `score(n, rankPtr, accPtr, nTrees, nodesPtr, leavesPtr)`: adds each tree's leaf
 *   value to the f64 at accPtr + 8p, trees in order. Tree t's 2^depth node words (heap
 *   order from index 1) start at nodesPtr + t * 4 * 2^depth, its 2^depth leaf values at
 *   leavesPtr + t * 8 * 2^depth. A point goes to child 2j + (rank > threshold rank).
 * - `scoreContrib(n, rankPtr, accPtr, contribPtr, nTrees, nodesPtr, leavesPtr, lcPtr)`:
 *   as `score`, and adds each leaf's d per-feature path gains (lcPtr, 8d bytes per leaf)
 *   to the d f64 at contribPtr + 8dp.
 */
export function kernelModule(shape: KernelShape): Uint8Array {
  return assembleModule([rankFunc(shape), scoreFunc(shape, false), scoreFunc(shape, true)]);
}

function rankFunc({ d, shift }: KernelShape): FuncBuilder {
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
  // tab[k] = tablePtr + k * 16 * half - 8, so that entry (pos + s - 1) is at tab + 8 (pos + s).
  f.get(half).i32(4).op(OP.i32shl).set(stride);
  for (let k = 0; k < d; k++) {
    f.get(tablePtr).get(stride).i32(k).op(OP.i32mul, OP.i32add).i32(8).op(OP.i32sub).set(tab[k]);
  }
  f.block();
  f.get(n).op(OP.i32eqz).brIf(0);
  f.loop();
  for (let k = 0; k < d; k++) {
    f.get(xPtr).loadF64(8 * k).set(xv[k]);
    f.i32(0).set(pos[k]);
  }
  f.get(half).set(s);
  f.loop();
  for (let k = 0; k < d; k++) {
    // pos += (table[pos + s - 1] < x) ? s : 0
    f.get(pos[k]);
    f.get(s).i32(0);
    f.get(tab[k]).get(pos[k]).get(s).op(OP.i32add).i32(3).op(OP.i32shl, OP.i32add).loadF64();
    f.get(xv[k]).op(OP.f64lt);
    f.op(OP.select, OP.i32add).set(pos[k]);
  }
  f.get(s).i32(1).op(OP.i32shrU).tee(s).brIf(0);
  f.end();
  for (let k = 0; k < d; k++) {
    f.get(rankPtr).get(pos[k]);
    if (shift > 0) f.i32(shift).op(OP.i32shl);
    f.storeI32(4 * k);
  }
  f.get(xPtr).i32(8 * d).op(OP.i32add).set(xPtr);
  f.get(rankPtr).i32(4 * d).op(OP.i32add).set(rankPtr);
  f.get(n).i32(1).op(OP.i32sub).tee(n).brIf(0);
  f.end();
  f.end();
  return f;
}

function scoreFunc({ d, depth, shift, lanes }: KernelShape, contrib: boolean): FuncBuilder {
  const params = contrib ? [I32, I32, I32, I32, I32, I32, I32, I32] : [I32, I32, I32, I32, I32, I32];
  const f = new FuncBuilder(contrib ? 'scoreContrib' : 'score', params);
  const n = 0;
  const rankPtr = 1;
  const accPtr = 2;
  const contribPtr = contrib ? 3 : -1;
  const nTrees = contrib ? 4 : 3;
  const nodesPtr = contrib ? 5 : 4;
  const leavesPtr = contrib ? 6 : 5;
  const lcPtr = contrib ? 7 : -1;
  const width = 2 ** depth;
  const mask = shift > 0 ? (1 << shift) - 1 : 0;
  const rowBytes = 4 * d;

  const nb = f.local(I32);
  const lb = f.local(I32);
  const lcb = f.local(I32);
  const rp = f.local(I32);
  const ap = f.local(I32);
  const cp = f.local(I32);
  const rem = f.local(I32);
  const t = f.local(I32);
  const w = f.local(I32);
  const lc = f.local(I32);
  const j: number[] = [];
  for (let k = 0; k < lanes; k++) j.push(f.local(I32));

  /** Traverses `count` points (rows rp, rp + rowBytes, ...) through tree nb/lb/lcb. */
  const group = (count: number): void => {
    for (let k = 0; k < count; k++) f.i32(1).set(j[k]);
    for (let step = 0; step < depth; step++) {
      for (let k = 0; k < count; k++) {
        // w = node word; c = rank[feature] > threshold rank; j = 2j + c
        f.get(nb).get(j[k]).i32(2).op(OP.i32shl, OP.i32add).loadI32().set(w);
        f.get(j[k]).i32(1).op(OP.i32shl);
        if (mask !== 0) f.get(rp).get(w).i32(mask).op(OP.i32and, OP.i32add);
        else f.get(rp);
        f.loadI32(k * rowBytes).get(w).op(OP.i32gtU);
        f.op(OP.i32or).set(j[k]);
      }
    }
    for (let k = 0; k < count; k++) {
      f.get(ap).get(ap).loadF64(8 * k);
      f.get(lb).get(j[k]).i32(3).op(OP.i32shl, OP.i32add).loadF64();
      f.op(OP.f64add).storeF64(8 * k);
      if (contrib) {
        f.get(lcb).get(j[k]).i32(8 * d).op(OP.i32mul, OP.i32add).set(lc);
        for (let q = 0; q < d; q++) {
          const off = 8 * (k * d + q);
          f.get(cp).get(cp).loadF64(off).get(lc).loadF64(8 * q).op(OP.f64add).storeF64(off);
        }
      }
    }
    f.get(rp).i32(count * rowBytes).op(OP.i32add).set(rp);
    f.get(ap).i32(count * 8).op(OP.i32add).set(ap);
    if (contrib) f.get(cp).i32(count * 8 * d).op(OP.i32add).set(cp);
    f.get(rem).i32(count).op(OP.i32sub).set(rem);
  };

  f.block();
  f.get(nTrees).op(OP.i32eqz).brIf(0);
  f.get(n).op(OP.i32eqz).brIf(0);
  f.get(nodesPtr).set(nb);
  // Leaf index j runs over [2^depth, 2^(depth+1)): bias the bases accordingly (mod 2^32).
  f.get(leavesPtr).i32(8 * width).op(OP.i32sub).set(lb);
  if (contrib) f.get(lcPtr).i32(8 * d * width).op(OP.i32sub).set(lcb);
  f.get(nTrees).set(t);
  f.loop(); // trees
  f.get(rankPtr).set(rp);
  f.get(accPtr).set(ap);
  if (contrib) f.get(contribPtr).set(cp);
  f.get(n).set(rem);
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
  f.get(nb).i32(4 * width).op(OP.i32add).set(nb);
  f.get(lb).i32(8 * width).op(OP.i32add).set(lb);
  if (contrib) f.get(lcb).i32(8 * d * width).op(OP.i32add).set(lcb);
  f.get(t).i32(1).op(OP.i32sub).tee(t).brIf(0);
  f.end(); // loop
  f.end(); // block
  return f;
}
