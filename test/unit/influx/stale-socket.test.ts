import { retryStaleSocket } from '../../../src/influx/stale-socket';

const fail = (code: string, nested = false) => Object.assign(new Error(code), nested ? { cause: { code } } : { code });

describe('retryStaleSocket', () => {
  it('sends once more after ECONNRESET or EPIPE (also as an error cause), and only once', async () => {
    for (const err of [fail('ECONNRESET'), fail('EPIPE'), fail('ECONNRESET', true)]) {
      const send = jest.fn().mockRejectedValueOnce(err).mockResolvedValueOnce('ok');
      await expect(retryStaleSocket(send)).resolves.toBe('ok');
      expect(send).toHaveBeenCalledTimes(2);
    }
    const always = jest.fn().mockRejectedValue(fail('ECONNRESET'));
    await expect(retryStaleSocket(always)).rejects.toThrow('ECONNRESET');
    expect(always).toHaveBeenCalledTimes(2);
  });

  it('does not repeat other failures', async () => {
    for (const err of [fail('ECONNREFUSED'), fail('ETIMEDOUT'), new Error('HTTP 500')]) {
      const send = jest.fn().mockRejectedValue(err);
      await expect(retryStaleSocket(send)).rejects.toBe(err);
      expect(send).toHaveBeenCalledTimes(1);
    }
  });
});
