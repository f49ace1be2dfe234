import { isIP } from 'node:net';
import { connect } from 'node:tls';

/** Node's codes of a certificate the client does not trust or that does not match the broker: no retry can fix them. */
const CERT_ERRORS = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** A broker's TLS certificate refused: what was wrong, in one line. */
export class KafkaTlsError extends Error {}

/**
 * Before the Kafka client starts (it retries every connection error for about 90 s, a
 * certificate it does not trust included): one TLS handshake with each broker in turn,
 * with the configured CA. A certificate refused for good throws KafkaTlsError at once;
 * a broker that does not answer, or any other error, is left to the client's retries
 * (the broker may just not be up yet). Resolves at the first handshake that succeeds.
 */
export async function checkBrokerTls(brokers: readonly string[], ca: string | undefined, timeoutMs = 5000): Promise<void> {
  for (const broker of brokers) {
    const i = broker.lastIndexOf(':');
    const host = broker.slice(0, i).replace(/^\[|\]$/g, '');
    const port = Number(broker.slice(i + 1));
    if (!host || !Number.isInteger(port)) continue;
    const outcome = await new Promise<'ok' | 'other' | Error>((resolve) => {
      const socket = connect({ host, port, ca: ca ? [ca] : undefined, servername: isIP(host) ? undefined : host, timeout: timeoutMs });
      const done = (r: 'ok' | 'other' | Error): void => {
        socket.destroy();
        resolve(r);
      };
      socket.once('secureConnect', () => done('ok'));
      socket.once('timeout', () => done('other'));
      socket.once('error', (e: NodeJS.ErrnoException) => done(e.code && CERT_ERRORS.has(e.code) ? e : 'other'));
    });
    if (outcome === 'ok') return;
    if (outcome instanceof Error) {
      const code = (outcome as NodeJS.ErrnoException).code;
      throw new KafkaTlsError(
        `the TLS certificate of Kafka broker ${broker} is refused (${code}: ${outcome.message})` +
          (ca ? '; is KAFKA_TLS_CA_FILE the CA that signed it?' : '; set KAFKA_TLS_CA_FILE to the CA that signed it'),
      );
    }
  }
}
