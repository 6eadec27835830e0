// HAProxy's pure parts: reading `show servers state` and the sandbox's configuration. The texts
// below are what HAProxy 2.6.12 (Debian 12's haproxy 2.6.12-1+deb12u4) answered, captured once with
// runtimeCommand() against a haproxy started by startHaproxy() (servers db001..db003 on
// 127.0.0.211-213:3306, primary db001, writer backend mysql_rw, reader backend mysql_ro), before
// and after the runtime commands named at each text.
import { describe, expect, it } from 'vitest';
import { parseServersState } from '../../src/adapters/haproxy.js';
import { haproxyConfig, type HaproxyOptions } from '../../src/adapters/sandbox/haproxy.js';

const HEADER =
  '# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port';

/** `show servers state mysql_rw` just after the start: db001 enabled, db002 and db003 `disabled` in the config (admin 5 = FMAINT|CMAINT). */
const WRITER_AT_START =
  '1\n' +
  HEADER +
  '\n' +
  '3 mysql_rw 1 db001 127.0.0.211 2 0 1 1 0 1 0 2 0 0 0 0 - 3306 - 0 0 - - 0\n' +
  '3 mysql_rw 2 db002 127.0.0.212 0 5 1 1 0 1 0 0 8 0 0 0 - 3306 - 0 0 - - 0\n' +
  '3 mysql_rw 3 db003 127.0.0.213 0 5 1 1 0 1 0 0 8 0 0 0 - 3306 - 0 0 - - 0\n' +
  '\n';

/**
 * `show servers state mysql_rw` after `set server mysql_rw/db002 state ready`: a server disabled in
 * the config and made ready keeps CMAINT (admin 4) and is ready.
 */
const WRITER_DB002_READY =
  '1\n' +
  HEADER +
  '\n' +
  '3 mysql_rw 1 db001 127.0.0.211 2 0 1 1 0 1 0 2 0 0 0 0 - 3306 - 0 0 - - 0\n' +
  '3 mysql_rw 2 db002 127.0.0.212 2 4 1 1 0 1 0 0 8 0 0 0 - 3306 - 0 0 - - 0\n' +
  '3 mysql_rw 3 db003 127.0.0.213 0 5 1 1 0 1 0 0 8 0 0 0 - 3306 - 0 0 - - 0\n' +
  '\n';

/**
 * `show servers state` (every backend) after `set server mysql_rw/db002 state drain` (admin 12 =
 * CMAINT|FDRAIN), `set server mysql_ro/db002 state maint` (admin 1 = FMAINT) and
 * `set server mysql_ro/db003 state drain` (admin 8 = FDRAIN).
 */
const ALL_BACKENDS =
  '1\n' +
  HEADER +
  '\n' +
  '3 mysql_rw 1 db001 127.0.0.211 2 0 1 1 0 1 0 2 0 0 0 0 - 3306 - 0 0 - - 0\n' +
  '3 mysql_rw 2 db002 127.0.0.212 2 12 1 1 0 1 0 0 8 0 0 0 - 3306 - 0 0 - - 0\n' +
  '3 mysql_rw 3 db003 127.0.0.213 0 5 1 1 0 1 0 0 8 0 0 0 - 3306 - 0 0 - - 0\n' +
  '5 mysql_ro 1 db001 127.0.0.211 0 5 1 1 0 1 0 0 8 0 0 0 - 3306 - 0 0 - - 0\n' +
  '5 mysql_ro 2 db002 127.0.0.212 0 1 1 1 0 1 0 0 0 0 0 0 - 3306 - 0 0 - - 0\n' +
  '5 mysql_ro 3 db003 127.0.0.213 2 8 1 1 0 1 0 2 0 0 0 0 - 3306 - 0 0 - - 0\n' +
  '\n';

/** `show servers state` of a backend with no servers. */
const EMPTY_BACKEND = '1\n' + HEADER + '\n\n';

describe('parseServersState', () => {
  it('reads a writer backend at the start: the primary ready and up, the others maint (disabled in the config) and down', () => {
    expect(parseServersState(WRITER_AT_START)).toEqual([
      { backend: 'mysql_rw', server: 'db001', admin: 'ready', up: true },
      { backend: 'mysql_rw', server: 'db002', admin: 'maint', up: false },
      { backend: 'mysql_rw', server: 'db003', admin: 'maint', up: false },
    ]);
  });

  it('reads a server disabled in the config and made ready at runtime as ready (CMAINT alone is not maintenance)', () => {
    expect(parseServersState(WRITER_DB002_READY)[1]).toEqual({ backend: 'mysql_rw', server: 'db002', admin: 'ready', up: true });
  });

  it('reads maint set by the runtime API, drain (alone and over CMAINT), and several backends in one answer', () => {
    expect(parseServersState(ALL_BACKENDS)).toEqual([
      { backend: 'mysql_rw', server: 'db001', admin: 'ready', up: true },
      { backend: 'mysql_rw', server: 'db002', admin: 'drain', up: true },
      { backend: 'mysql_rw', server: 'db003', admin: 'maint', up: false },
      { backend: 'mysql_ro', server: 'db001', admin: 'maint', up: false },
      { backend: 'mysql_ro', server: 'db002', admin: 'maint', up: false },
      { backend: 'mysql_ro', server: 'db003', admin: 'drain', up: true },
    ]);
  });

  it('reads a backend with no servers as none', () => {
    expect(parseServersState(EMPTY_BACKEND)).toEqual([]);
  });

  it('takes the maintenance flags HAProxy counts (forced 0x01, inherited 0x02, resolution 0x20) over drain, and ignores 0x40 (FQDN set)', () => {
    const line = (admin: number, op = 0) => `3 b 1 s 127.0.0.1 ${op} ${admin} 1 1 0 1 0 0 0 0 0 0 - 3306 - 0 0 - - 0`;
    const admin = (n: number, op?: number) => parseServersState(`1\n${HEADER}\n${line(n, op)}\n`)[0]?.admin;
    expect([0x01, 0x02, 0x20, 0x01 | 0x08, 0x02 | 0x10].map((n) => admin(n))).toEqual(['maint', 'maint', 'maint', 'maint', 'maint']);
    expect([0x08, 0x10].map((n) => admin(n, 2))).toEqual(['drain', 'drain']);
    expect([0x04, 0x40].map((n) => admin(n, 2))).toEqual(['ready', 'ready']);
    // Operational states: only 2 (RUNNING) is up; 1 (STARTING) and 3 (STOPPING) are not fully up.
    expect([0, 1, 2, 3].map((op) => parseServersState(`1\n${HEADER}\n${line(0, op)}\n`)[0]?.up)).toEqual([false, false, true, false]);
  });

  it('finds columns by the header, not by position', () => {
    expect(parseServersState('1\n# srv_admin_state srv_name be_name srv_op_state\n1 db001 rw 0\n')).toEqual([{ backend: 'rw', server: 'db001', admin: 'maint', up: false }]);
  });

  it('refuses what is not a version 1 dump, with what it got', () => {
    expect(() => parseServersState("Can't find backend.\n\n")).toThrow(/expected format version 1 on the first line, got "Can't find backend."/);
    expect(() => parseServersState('2\n' + HEADER + '\n')).toThrow(/format version 1/);
    expect(() => parseServersState('1\n')).toThrow(/no "# be_id be_name \.\.\." header/);
    expect(() => parseServersState('1\n# be_id be_name srv_id srv_name\n')).toThrow(/no srv_op_state column/);
    expect(() => parseServersState(`1\n${HEADER}\n3 mysql_rw 1 db001 127.0.0.211 x\n`)).toThrow(/cannot read the line "3 mysql_rw 1 db001 127.0.0.211 x"/);
  });
});

describe('haproxyConfig', () => {
  const o: HaproxyOptions = {
    dir: '/tmp/x',
    runtime: { host: '127.0.0.211', port: 39001 },
    writer: { bind: { host: '127.0.0.211', port: 39002 }, backend: 'mysql_rw' },
    reader: { bind: { host: '127.0.0.211', port: 39003 }, backend: 'mysql_ro' },
    servers: [
      { name: 'db001', host: '127.0.0.211', port: 3306 },
      { name: 'db002', host: '127.0.0.212', port: 3306 },
      { name: 'db003', host: '127.0.0.213', port: 3306 },
    ],
    primary: 'db002',
  };
  const section = (text: string, head: string) => {
    const lines = text.split('\n');
    const start = lines.indexOf(head);
    expect(start, `no "${head}" section in:\n${text}`).toBeGreaterThanOrEqual(0);
    const end = lines.findIndex((l, i) => i > start && l !== '' && !l.startsWith(' '));
    return lines.slice(start + 1, end < 0 ? undefined : end).map((l) => l.trim()).filter((l) => l !== '');
  };

  it('has an admin-level runtime API on the given TCP address, or on a unix socket', () => {
    expect(section(haproxyConfig(o), 'global')).toContain('stats socket ipv4@127.0.0.211:39001 level admin');
    expect(section(haproxyConfig({ ...o, runtime: { path: '/tmp/x/admin.sock' } }), 'global')).toContain('stats socket /tmp/x/admin.sock level admin');
  });

  it('proxies TCP with long client/server timeouts and a short connect timeout', () => {
    const d = section(haproxyConfig(o), 'defaults');
    expect(d).toEqual(expect.arrayContaining(['mode tcp', 'timeout connect 1s', 'timeout client 1h', 'timeout server 1h']));
  });

  it('enables only the primary for writes and every other server for reads, balance first, no health checks', () => {
    const text = haproxyConfig(o);
    expect(section(text, 'frontend writer')).toEqual(['bind 127.0.0.211:39002', 'default_backend mysql_rw']);
    expect(section(text, 'frontend reader')).toEqual(['bind 127.0.0.211:39003', 'default_backend mysql_ro']);
    expect(section(text, 'backend mysql_rw')).toEqual(['balance first', 'server db001 127.0.0.211:3306 disabled', 'server db002 127.0.0.212:3306', 'server db003 127.0.0.213:3306 disabled']);
    expect(section(text, 'backend mysql_ro')).toEqual(['balance first', 'server db001 127.0.0.211:3306', 'server db002 127.0.0.212:3306 disabled', 'server db003 127.0.0.213:3306']);
    expect(text).not.toMatch(/\bcheck\b/);
  });

  it('without a primary starts every writer server in maint; without a reader has no reader', () => {
    const text = haproxyConfig({ ...o, primary: undefined, reader: undefined });
    expect(section(text, 'backend mysql_rw').filter((l) => l.startsWith('server ')).every((l) => l.endsWith(' disabled'))).toBe(true);
    expect(text).not.toContain('reader');
    expect(text).not.toContain('mysql_ro');
  });

  it('refuses a primary that is not a server, and one backend for both', () => {
    expect(() => haproxyConfig({ ...o, primary: 'db009' })).toThrow('the primary db009 is not one of the servers (db001, db002, db003)');
    expect(() => haproxyConfig({ ...o, reader: { bind: { host: '127.0.0.211', port: 39003 }, backend: 'mysql_rw' } })).toThrow('the reader and writer backends are both mysql_rw');
  });
});
