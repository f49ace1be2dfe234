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
  stop(): Promise<void>;
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

// Sends `bytes` per tick, the datagram size varying so rates are not round numbers.
const SENDER = `
const s = require('node:dgram').createSocket('udp4');
const [addr, perTick] = [process.argv[1], Number(process.argv[2])];
let n = 0;
setInterval(() => {
  for (let left = perTick; left > 0; ) {
    const size = Math.min(left, 600 + ((n++ * 389) % 800));
    s.send(Buffer.alloc(size), 9, addr);
    left -= size;
  }
}, 50);
`;

/** Creates the pair and starts sending about `bytesPerSecond` into the host end. */
export function startVethTraffic(bytesPerSecond: number): VethTraffic {
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
    ip(['link', 'set', iface, 'up']);
    ip(['-n', ns, 'addr', 'add', `${net}.2/30`, 'dev', 'peer0']);
    ip(['-n', ns, 'link', 'set', 'peer0', 'up']);
    ip(['-n', ns, 'link', 'set', 'lo', 'up']);
  } catch (e) {
    deleteNs();
    throw e;
  }
  const sender: ChildProcess = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', SENDER, hostAddr, String(Math.ceil(bytesPerSecond / 20))], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => sender.once('exit', () => resolve()));
  const killOnExit = () => {
    sender.kill('SIGKILL');
    deleteNs();
  };
  process.once('exit', killOnExit);
  return {
    iface,
    stop: async () => {
      if (sender.exitCode === null && sender.signalCode === null) {
        sender.kill('SIGTERM');
        await exited;
      }
      deleteNs();
      process.removeListener('exit', killOnExit);
    },
  };
}
