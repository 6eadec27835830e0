// The Docker sandbox's pure parts: what each container is told, and that probing for an engine is
// quick and quiet where none runs. Starting containers is not tested here (no engine on CI).
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { containerArgs, containerEnv, containerName, dockerAvailable, IMAGES, resetBinlog } from '../../src/adapters/sandbox/containers.js';
import { serverArgs, type SandboxInstance } from '../../src/adapters/sandbox/local.js';
import { imageFlavor } from '../../src/adapters/sandbox/sandbox.js';

const db002 = { host: '127.0.0.12', port: 3306, serverId: 2 };

describe('containerArgs', () => {
  it('gives a MariaDB container the local fleet settings: own address, GTID, report_host', () => {
    expect(containerArgs('mariadb', db002)).toEqual([
      '--bind-address=127.0.0.12',
      '--port=3306',
      '--server-id=2',
      '--report-host=127.0.0.12',
      '--report-port=3306',
      '--log-bin=binlog',
      '--log-slave-updates',
      '--binlog-format=ROW',
      '--skip-name-resolve',
      '--read-only',
      '--innodb-buffer-pool-size=32M',
      '--max-connections=300',
      '--gtid-strict-mode=1',
      '--performance-schema=OFF',
    ]);
  });

  it('gives a MySQL container GTID mode and no X protocol listener (host networking: no port 33060 clash)', () => {
    const args = containerArgs('mysql', db002);
    expect(args).toEqual(expect.arrayContaining(['--gtid-mode=ON', '--enforce-gtid-consistency=ON', '--mysqlx=OFF', '--bind-address=127.0.0.12', '--report-host=127.0.0.12', '--server-id=2']));
    expect(args).not.toContain('--gtid-strict-mode=1');
  });

  it('is serverArgs less what the image owns (paths, --no-defaults, --user)', () => {
    for (const flavor of ['mariadb', 'mysql'] as const) {
      const i: SandboxInstance = { ...db002, name: 'db002', dir: '/tmp/x/db002' };
      const local = serverArgs({ flavor, server: '/usr/sbin/mysqld', version: '' }, i);
      const args = containerArgs(flavor, db002);
      expect(local.filter((a) => !args.includes(a)).every((a) => /^--(no-defaults|datadir=|socket=|pid-file=|log-error=|user=)/.test(a))).toBe(true);
      expect(args.every((a) => local.includes(a))).toBe(true);
      expect(args.some((a) => a.includes('/tmp/x'))).toBe(false);
    }
  });

  it('keeps a fallback address and port (127.0.0.1 with its own port)', () => {
    expect(containerArgs('mariadb', { host: '127.0.0.1', port: 3308, serverId: 3 })).toEqual(
      expect.arrayContaining(['--bind-address=127.0.0.1', '--port=3308', '--report-port=3308']),
    );
  });
});

describe('containerEnv', () => {
  it('lets root in over TCP without a password and skips the time-zone load', () => {
    expect(containerEnv('mariadb')).toEqual({ MARIADB_ALLOW_EMPTY_ROOT_PASSWORD: '1', MARIADB_ROOT_HOST: '%', MARIADB_INITDB_SKIP_TZINFO: '1' });
    expect(containerEnv('mysql')).toEqual({ MYSQL_ALLOW_EMPTY_PASSWORD: 'yes', MYSQL_ROOT_HOST: '%', MYSQL_INITDB_SKIP_TZINFO: '1' });
  });

  it('uses the images the issue names', () => {
    expect(IMAGES).toEqual({ mariadb: 'mariadb:10.11', mysql: 'mysql:8.4' });
  });
});

describe('naming and statements', () => {
  it('names containers after cluster and instance, in characters Docker accepts', () => {
    expect(containerName('shop', 'db001')).toBe('topogit-shop-db001');
    expect(containerName('shop eu/1', 'db001')).toBe('topogit-shop-eu-1-db001');
  });

  it('resets the binary log with the statement each server accepts', () => {
    expect(resetBinlog('mariadb', '10.11.10-MariaDB-ubu2204-log')).toBe('RESET MASTER');
    expect(resetBinlog('mysql', '8.4.3')).toBe('RESET BINARY LOGS AND GTIDS');
    expect(resetBinlog('mysql', '8.0.40')).toBe('RESET MASTER');
  });

  it('reads the image flavor from TOPOGIT_SANDBOX_IMAGE_FLAVOR, mariadb by default', () => {
    expect(imageFlavor({})).toBe('mariadb');
    expect(imageFlavor({ TOPOGIT_SANDBOX_IMAGE_FLAVOR: 'MySQL' })).toBe('mysql');
    expect(() => imageFlavor({ TOPOGIT_SANDBOX_IMAGE_FLAVOR: 'postgres' })).toThrow(/neither mariadb nor mysql/);
  });
});

describe('dockerAvailable', () => {
  // Only meaningful where no engine could answer: not with DOCKER_HOST set or a local engine socket.
  const engineMayRun = process.env.DOCKER_HOST !== undefined || existsSync('/var/run/docker.sock');
  it.skipIf(engineMayRun)('answers false within 3 s where no engine runs', async () => {
    const t = Date.now();
    await expect(dockerAvailable()).resolves.toBe(false);
    expect(Date.now() - t).toBeLessThan(3000);
  });
});
