// Captures the probe rows of a running sandbox into test/fixtures/rows/<name>.json, so the pure
// parsers are tested on what real servers print. Usage:
//   node scripts/capture-rows.mjs <fixture-name> <host> [port]   (password from TOPOGIT_PASSWORD)
import mysql from 'mysql2/promise';
import { writeFileSync, mkdirSync } from 'node:fs';
import { PROBE_VARIABLES_SQL, parseVersion, showReplicaStatus, showReplicas } from '../dist/adapters/mysql/dialect.js';

const [name, host, port = '3306'] = process.argv.slice(2);
const conn = await mysql.createConnection({ host, port: Number(port), user: process.env.TOPOGIT_USER ?? 'topogit', password: process.env.TOPOGIT_PASSWORD ?? '', supportBigNumbers: true, bigNumberStrings: true, dateStrings: true });
const [vars] = await conn.query(PROBE_VARIABLES_SQL);
const version = vars.find((r) => r.Variable_name === 'version').Value;
const comment = vars.find((r) => r.Variable_name === 'version_comment')?.Value ?? '';
const v = parseVersion(version, comment);
const [status] = await conn.query(showReplicaStatus(v));
const [replicas] = await conn.query(showReplicas(v));
await conn.end();
mkdirSync('test/fixtures/rows', { recursive: true });
const out = { captured: new Date().toISOString(), source: `real server ${version} via ${host}:${port}`, variables: vars, replicaStatus: status, replicas };
writeFileSync(`test/fixtures/rows/${name}.json`, JSON.stringify(out, null, 2) + '\n');
console.log(`wrote test/fixtures/rows/${name}.json`);
