#!/usr/bin/env node
// The stack's floor, for comparison with the daemon's memory: Node and mysql2 alone (the client the
// product card fixes), holding one connection per instance and probing it every interval with the
// statements a probe sends, nothing of topogit loaded. With --libs it also loads the other libraries
// the daemon needs (yaml, ajv, pino, simple-git, commander, chokidar). It prints its VmRSS (kB) on SIGUSR2.
//   node scripts/lib/floor-client.mjs --hosts 127.0.0.11,127.0.0.12 --user topogit [--libs]   (password: TOPOGIT_PASSWORD)
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import mysql from 'mysql2/promise';

const { values } = parseArgs({ options: { hosts: { type: 'string' }, user: { type: 'string', default: 'topogit' }, 'interval-ms': { type: 'string', default: '2500' }, libs: { type: 'boolean', default: false } } });
if (values.libs) for (const lib of ['yaml', 'ajv', 'pino', 'simple-git', 'commander', 'chokidar']) await import(lib);
const conns = await Promise.all((values.hosts ?? '').split(',').map((host) => mysql.createConnection({ host, port: 3306, user: values.user, password: process.env.TOPOGIT_PASSWORD, multipleStatements: true })));
setInterval(() => {
  for (const c of conns) c.query('SELECT @@read_only, @@gtid_current_pos, @@gtid_binlog_state; SHOW SLAVE STATUS').catch(() => undefined);
}, Number(values['interval-ms'])).unref();
process.on('SIGUSR2', () => process.stdout.write(`${/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]}\n`));
process.on('SIGTERM', () => process.exit(0));
setInterval(() => undefined, 1 << 30);
