import { findInfluxd, freePort } from '../../helpers/influxd';

describe('influxd test helper', () => {
  const saved = process.env.INFLUXD;
  afterEach(() => {
    if (saved === undefined) delete process.env.INFLUXD;
    else process.env.INFLUXD = saved;
  });

  it('fails with one line naming the fix when $INFLUXD is not an executable', () => {
    process.env.INFLUXD = '/nonexistent/influxd';
    expect(() => findInfluxd()).toThrow(
      'INFLUXD=/nonexistent/influxd is not an executable file. influxd not found: apt-get install influxdb (Debian) or set INFLUXD=/path/to/influxd',
    );
  });

  it('uses $INFLUXD when it is executable', () => {
    process.env.INFLUXD = process.execPath;
    expect(findInfluxd()).toBe(process.execPath);
  });

  it('hands out loopback ports', async () => {
    const port = await freePort();
    expect(port).toBeGreaterThan(0);
    expect(port).toBeLessThan(65536);
  });
});
