/**
 * Known network traffic for tests of a real collector: a veth pair whose host end is
 * named to match docker/telegraf.conf's interface filter (`eth*`), its other end in a
 * network namespace of its own, from which a process sends UDP datagrams to the host
 * end, so the host end's bytes_recv grows. Addresses are in 198.18.0.0/15 (RFC 2544,
 * benchmarking; never routed). Needs root (CAP_NET_ADMIN) and iproute2; fails with one
 * line without them. stop() deletes the namespace, which deletes both ends.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';

/** A veth pair with traffic flowing into `iface`. */
export interface VethTraffic {
  /** The host end's name, e.g. `ethtg1234`. */
  readonly iface: string;
  /** The network namespace holding the other end. */
  readonly ns: string;
  /**
   * Starts one more sender into the host end (e.g. a burst on top of the steady traffic);
   * its stop() ends it. stop() of the pair ends it too.
   */
  addSender(bytesPerSecond: number, opts?: SenderOptions): { stop(): Promise<void> };
  stop(): Promise<void>;
}

/** Options of {@link startVethTraffic}. */
export interface VethOptions {
  /**
   * MTU of both ends (default: the kernel's, 1500). With a large MTU and large datagrams
   * (SenderOptions.datagramBytes) tens of MB/s cost little CPU: no fragmentation.
   */
  mtu?: number;
}

/** Options of one sender. */
export interface SenderOptions {
  /** Every datagram this size (bytes of payload); default: 600-1399 bytes, varying. */
  datagramBytes?: number;
}

function ip(args: string[]): void {
  try {
    execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    const why = (err.stderr?.toString('utf8').trim() || err.message).split('\n')[0];
    throw new Error(`ip ${args.join(' ')} failed (a veth pair for test traffic needs root and iproute2): ${why}`);
  }
}

// Sends `bytes` per tick, the datagram size varying so rates are not round numbers
// (or, with a third argument, datagrams of that size from one reused buffer).
const SENDER = `
const s = require('node:dgram').createSocket('udp4');
const [addr, perTick, fixed] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3] || 0)];
const big = fixed > 0 ? Buffer.alloc(fixed) : null;
let n = 0;
setInterval(() => {
  for (let left = perTick; left > 0; ) {
    const size = Math.min(left, big ? fixed : 600 + ((n++ * 389) % 800));
    if (big) s.send(big, 0, size, 9, addr);
    else s.send(Buffer.alloc(size), 9, addr);
    left -= size;
  }
}, 50);
`;

/** Creates the pair and starts sending about `bytesPerSecond` into the host end. */
export function startVethTraffic(bytesPerSecond: number, options: VethOptions = {}): VethTraffic {
  const id = process.pid % 10_000;
  const iface = `ethtg${id}`;
  const ns = `adtest-${id}`;
  const net = `198.18.${id % 250}`;
  const hostAddr = `${net}.1`;
  const deleteNs = () => {
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    } catch {
      // none, or gone
    }
  };
  // A leftover of an earlier run that died with this pid.
  deleteNs();
  ip(['netns', 'add', ns]);
  try {
    ip(['link', 'add', iface, 'type', 'veth', 'peer', 'name', 'peer0', 'netns', ns]);
    ip(['addr', 'add', `${hostAddr}/30`, 'dev', iface]);
    if (options.mtu !== undefined) {
      ip(['link', 'set', iface, 'mtu', String(options.mtu)]);
      ip(['-n', ns, 'link', 'set', 'peer0', 'mtu', String(options.mtu)]);
    }
    ip(['link', 'set', iface, 'up']);
    ip(['-n', ns, 'addr', 'add', `${net}.2/30`, 'dev', 'peer0']);
    ip(['-n', ns, 'link', 'set', 'peer0', 'up']);
    ip(['-n', ns, 'link', 'set', 'lo', 'up']);
  } catch (e) {
    deleteNs();
    throw e;
  }
  const extra = new Set<ChildProcess>();
  const startSender = (rate: number, opts: SenderOptions = {}): ChildProcess => {
    const args = ['netns', 'exec', ns, process.execPath, '-e', SENDER, hostAddr, String(Math.ceil(rate / 20))];
    if (opts.datagramBytes !== undefined) args.push(String(opts.datagramBytes));
    return spawn('ip', args, { stdio: 'ignore' });
  };
  const stopSender = async (child: ChildProcess): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await gone;
    }
  };
  const sender: ChildProcess = startSender(bytesPerSecond);
  const exited = new Promise<void>((resolve) => sender.once('exit', () => resolve()));
  const killOnExit = () => {
    sender.kill('SIGKILL');
    for (const c of extra) c.kill('SIGKILL');
    deleteNs();
  };
  process.once('exit', killOnExit);
  return {
    iface,
    ns,
    addSender: (rate, opts) => {
      const child = startSender(rate, opts);
      extra.add(child);
      return {
        stop: async () => {
          await stopSender(child);
          extra.delete(child);
        },
      };
    },
    stop: async () => {
      for (const c of [...extra]) await stopSender(c);
      extra.clear();
      if (sender.exitCode === null && sender.signalCode === null) {
        sender.kill('SIGTERM');
        await exited;
      }
      deleteNs();
      process.removeListener('exit', killOnExit);
    },
  };
}
