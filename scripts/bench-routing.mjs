#!/usr/bin/env node
// Applications follow the primary (issue 13), measured with real clients: `sandbox up --router
// haproxy` (three MariaDB servers on 127.0.0.<base>.., a real HAProxy on the next address: writer
// frontend :3306), the topology in a bare remote with a work clone (the operator's) and an ops
// clone where `topogit watch` runs (failover.auto true, blockSeconds 0, default detection).
// Two clients write through the HAProxy writer frontend, never to a server address, each at a
// fixed rate (every --write-ms, default 20 ms), in a worker thread of their own (the bench's own
// work never delays a tick):
//   - pool: an application on mysql2's connection pool (connectionLimit 4, mysql2's defaults
//     otherwise), one insert per tick; an insert that fails is an error and the next tick
//     inserts again, as an application retrying would;
//   - cli: the `mariadb` command-line client, one process per write; while one still runs the
//     tick is skipped (and counted).
// Each inserts `(client, @@server_id)` into bench.w, whose `at DATETIME(6) DEFAULT NOW(6)` is set
// by the server that committed it: the gaps are read from the rows themselves, no client clock.
// Events: --drills SIGKILLs of the primary (its pid file; it is started again and rejoins before
// the next event) and --switchovers committed switchovers: the file's primary edited in the work
// clone (the operator's GitOps way: edit, commit, push), the daemon pulls and runs it.
// After each event, from the rows in [1 s before the event, 1 s after both clients wrote to the new
// primary]: the longest gap between consecutive committed rows (per client and both together),
// the rows committed on the old primary after the new primary's first row (must be 0), and the
// errors each client saw; for failovers topogit's own writable time (the daemon's `promoted` step
// minus the kill, as bench-failover.mjs reads it).
//   node scripts/bench-routing.mjs [--drills 10] [--switchovers 10] [--base-ip 11] [--write-ms 20]
// Prints markdown tables and writes bench/results/routing.json.
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import mysql from 'mysql2/promise';
import { benchEnv, freePort, median, sleep, until } from './lib/bench.mjs';

const INSERT = (client) => `INSERT INTO bench.w (client, server_id) VALUES ('${client}', @@server_id)`;

if (!isMainThread) {
  await runClients(workerData);
} else {
  await main();
}

// --- The clients (worker thread) -----------------------------------------------------------

async function runClients(o) {
  const stats = {
    pool: { ok: 0, failed: 0, skipped: 0, errors: {}, samples: [] },
    cli: { ok: 0, failed: 0, skipped: 0, errors: {}, samples: [] },
  };
  const fail = (who, key, message) => {
    const s = stats[who];
    s.failed++;
    s.errors[key] = (s.errors[key] ?? 0) + 1;
    if (s.samples.length < 200) s.samples.push({ at: Date.now(), key, message: message.slice(0, 200) });
  };
  // An application's pool: mysql2's defaults (connectTimeout 10 s, keep-alive) but 4 connections.
  const pool = mysql.createPool({ host: o.host, port: o.port, user: o.user, password: o.password, connectionLimit: 4 });
  let poolBusy = null;
  let cliBusy = null;
  const tick = () => {
    if (poolBusy) stats.pool.skipped++;
    else {
      poolBusy = pool
        .query(INSERT('pool'))
        .then(
          () => stats.pool.ok++,
          (e) => fail('pool', e.code ?? e.errno ?? 'error', e.message ?? String(e)),
        )
        .finally(() => (poolBusy = null));
    }
    if (cliBusy) stats.cli.skipped++;
    else {
      cliBusy = new Promise((resolve) => {
        execFile('mariadb', ['-h', o.host, '-P', String(o.port), '-u', o.user, `-p${o.password}`, '-e', INSERT('cli')], { timeout: 60_000 }, (err, _out, stderr) => {
          if (!err) stats.cli.ok++;
          else {
            // With -e, the client prints the failed statement between dashes first, then `ERROR nnnn (...)`.
            const lines = String(stderr).trim().split('\n');
            const line = lines.find((l) => /^ERROR \d+/.test(l)) ?? lines.at(-1) ?? '';
            fail('cli', /^ERROR \d+/.exec(line)?.[0] ?? (err.killed ? 'killed after 60 s' : `exit ${err.code}`), line || err.message);
          }
          resolve();
        });
      }).finally(() => (cliBusy = null));
    }
  };
  const timer = setInterval(tick, o.writeMs);
  parentPort.on('message', async (m) => {
    if (m === 'stats') parentPort.postMessage({ stats: structuredClone(stats) });
    if (m === 'stop') {
      clearInterval(timer);
      await Promise.all([poolBusy, cliBusy]);
      await pool.end().catch(() => undefined);
      parentPort.postMessage({ stopped: structuredClone(stats) });
      parentPort.close();
    }
  });
}

// --- The bench (main thread) ---------------------------------------------------------------

async function main() {
  const { values } = parseArgs({
    options: {
      drills: { type: 'string', default: '10' },
      switchovers: { type: 'string', default: '10' },
      'base-ip': { type: 'string', default: '11' },
      'write-ms': { type: 'string', default: '20' },
    },
  });
  const drills = Number(values.drills);
  const switchovers = Number(values.switchovers);
  const base = Number(values['base-ip']);
  const writeMs = Number(values['write-ms']);
  const names = ['db001', 'db002', 'db003'];
  const host = (n) => `127.0.0.${base + names.indexOf(n)}`;
  const serverId = (n) => names.indexOf(n) + 1;
  const nameOf = (id) => names[id - 1];
  const FRONT = `127.0.0.${base + names.length}`;
  const RUNTIME = `${FRONT}:9999`;
  const root = fileURLToPath(new URL('..', import.meta.url));
  const bin = path.join(root, 'bin', 'topogit.js');
  const { readBackend } = await import(new URL('../dist/adapters/haproxy.js', import.meta.url).href);
  const { editSources } = await import(new URL('../dist/config/edit.js', import.meta.url).href);
  const PW = 'bench-pw';
  const dir = mkdtempSync(path.join(tmpdir(), 'topogit-bench-routing-'));
  const env = benchEnv(dir);
  // Everything runs asynchronously: a synchronous child would stop this thread (not the clients').
  const exec = promisify(execFile);
  const sh = async (cmd, args, cwd) => {
    try {
      const r = await exec(cmd, args, { cwd, env, maxBuffer: 64 * 1024 * 1024 });
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (e) {
      return { code: e.code ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? e.message };
    }
  };
  const must = async (cmd, args, cwd) => {
    const r = await sh(cmd, args, cwd);
    if (r.code !== 0) throw new Error(`${path.basename(cmd)} ${args.join(' ')}: exit ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
    return r.stdout;
  };
  const topogit = (cwd, ...args) => must(process.execPath, [bin, ...args], cwd);
  const max = (xs) => (xs.length ? Math.max(...xs) : null);

  // Direct connections to the servers (the bench's own reads, never through HAProxy).
  const conns = new Map();
  async function q(name, sql, params = []) {
    let c = conns.get(name);
    if (!c) {
      c = await mysql.createConnection({ host: host(name), port: 3306, user: 'topogit', password: PW, connectTimeout: 2000 });
      c.on('error', () => conns.delete(name));
      conns.set(name, c);
    }
    try {
      const [rows] = await c.query(sql, params);
      return rows;
    } catch (e) {
      conns.delete(name);
      c.destroy();
      throw e;
    }
  }
  const dropConn = (name) => {
    conns.get(name)?.destroy();
    conns.delete(name);
  };
  /** The server's NOW(6), as text (compared with `at` by that server's rules, no client clock). */
  const nowOn = async (name) => (await q(name, 'SELECT CAST(NOW(6) AS CHAR) AS n'))[0].n;
  /** Microseconds since the epoch, exact (UNIX_TIMESTAMP of a DATETIME(6) is a decimal with 6 places). */
  const micros = (t) => {
    const [s, f = ''] = String(t).split('.');
    return Number(s) * 1e6 + Number(f.padEnd(6, '0').slice(0, 6));
  };

  const work = path.join(dir, 'work');
  const ops = path.join(dir, 'ops');
  const bare = path.join(dir, 'remote.git');
  const file = (clone) => path.join(clone, 'topologies', 'bench.yaml');
  const primaryOf = (text) => /^ {2}(db00\d): \{ host: [\d.]+, port: 3306 \}/m.exec(text)?.[1];
  let daemon;
  let worker;
  let log = '';
  let api = '';
  const events = [];
  let clientTotals;
  let baseline;
  let sandboxUp = false;
  const started = Date.now();

  const logLines = (from) =>
    log
      .slice(from)
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => {
        try {
          return JSON.parse(l);
        } catch {
          return {};
        }
      });
  /** The writer backend: the servers that are `ready` in it. */
  const writerReady = async () => (await readBackend(RUNTIME, 'mysql_rw', 1000)).filter((s) => s.admin === 'ready').map((s) => s.server);
  /** Healthy: the daemon's file and the live tree agree, the writer backend holds `primary` alone, every replica replicates from it. */
  async function healthy(primary) {
    const c = ((await (await fetch(`${api}/api/clusters`)).json()).clusters ?? [])[0];
    const cond = Object.fromEntries((c?.conditions ?? []).map((x) => [x.type, x.status]));
    if (!(cond.Ready === true && cond.Degraded !== true && cond.Drifted !== true && cond.RoutingStale !== true)) return false;
    if (primaryOf(readFileSync(file(ops), 'utf8')) !== primary) return false;
    if ((await writerReady()).join(',') !== primary) return false;
    for (const n of names.filter((x) => x !== primary)) {
      const [r] = await q(n, 'SHOW SLAVE STATUS');
      if (!r || r.Master_Host !== host(primary) || r.Slave_IO_Running !== 'Yes' || r.Slave_SQL_Running !== 'Yes') return false;
    }
    return true;
  }
  const clientStats = () =>
    new Promise((resolve) => {
      const on = (m) => {
        if (!m.stats) return;
        worker.off('message', on);
        resolve(m.stats);
      };
      worker.on('message', on);
      worker.postMessage('stats');
    });
  const diff = (a, b) =>
    Object.fromEntries(
      ['pool', 'cli'].map((k) => {
        const errors = {};
        for (const [code, n] of Object.entries(b[k].errors)) if (n - (a[k].errors[code] ?? 0) > 0) errors[code] = n - (a[k].errors[code] ?? 0);
        return [k, { ok: b[k].ok - a[k].ok, failed: b[k].failed - a[k].failed, skipped: b[k].skipped - a[k].skipped, errors, samples: b[k].samples.slice(a[k].samples.length, a[k].samples.length + 5) }];
      }),
    );
  /** Until each client has a row committed on `name` after `since` (a server's NOW(6)). */
  const writesOn = (name, since, ms = 30_000) =>
    until(`both clients write to ${name}`, async () => {
      const rows = await q(name, 'SELECT client, COUNT(*) AS n FROM bench.w WHERE server_id = ? AND at > ? GROUP BY client', [serverId(name), since]);
      return rows.length === 2;
    }, ms);

  /**
   * Reads the rows of [from - 1 s, to] on every server (a row committed on a server that never
   * sent it exists only there) and computes the gaps and the old primary's late rows.
   */
  async function judge(from, to, oldPrimary, newPrimary) {
    const byKey = new Map();
    for (const n of names) {
      const rows = await q(n, 'SELECT id, client, server_id, UNIX_TIMESTAMP(at) AS t FROM bench.w WHERE at BETWEEN ? - INTERVAL 1 SECOND AND ?', [from, to]);
      for (const r of rows) byKey.set(`${r.server_id}/${r.id}`, { client: r.client, serverId: Number(r.server_id), t: micros(r.t) });
    }
    const [{ lo, hi }] = await q(newPrimary, 'SELECT UNIX_TIMESTAMP(? - INTERVAL 1 SECOND) AS lo, UNIX_TIMESTAMP(?) AS hi', [from, to]);
    const rows = [...byKey.values()].sort((a, b) => a.t - b.t);
    // The longest interval without a committed row, the window's edges included.
    const gap = (rs) => {
      const ts = [micros(lo), ...rs.map((r) => r.t), micros(hi)];
      let best = { ms: 0, after: null };
      for (let i = 1; i < ts.length; i++) if (ts[i] - ts[i - 1] > best.ms * 1000) best = { ms: (ts[i] - ts[i - 1]) / 1000, after: i - 1 };
      return Math.round(best.ms * 10) / 10;
    };
    const eventFrom = micros((await q(newPrimary, 'SELECT UNIX_TIMESTAMP(?) AS t', [from]))[0].t);
    const firstNew = rows.find((r) => r.serverId === serverId(newPrimary) && r.t >= eventFrom)?.t;
    const lateOnOld = firstNew === undefined ? null : rows.filter((r) => r.serverId === serverId(oldPrimary) && r.t > firstNew).length;
    const lastOld = rows.filter((r) => r.serverId === serverId(oldPrimary)).at(-1)?.t;
    return {
      rows: rows.length,
      gapMs: { pool: gap(rows.filter((r) => r.client === 'pool')), cli: gap(rows.filter((r) => r.client === 'cli')), any: gap(rows) },
      // From the old primary's last row to the new primary's first (both servers' own NOW(6)).
      switchMs: firstNew !== undefined && lastOld !== undefined ? Math.round((firstNew - lastOld) / 100) / 10 : null,
      lateOnOld,
    };
  }

  try {
    await must('git', ['init', '-q', '--bare', '-b', 'main', bare], dir);
    await must('git', ['clone', '-q', bare, work], dir);
    const up = await topogit(work, 'sandbox', 'up', '--cluster', 'bench', '--base-ip', String(base), '--router', 'haproxy');
    sandboxUp = true;
    process.stdout.write(up);
    // The bench table, made by root over db001's socket (the admin user may write only topogit_demo).
    const sock = path.join(dir, '.sandbox', 'bench', 'db001', 'mysqld.sock');
    await must('mariadb', ['-S', sock, '-u', 'root', '-e', "CREATE DATABASE bench; CREATE TABLE bench.w (id BIGINT AUTO_INCREMENT PRIMARY KEY, client VARCHAR(16), server_id INT, at DATETIME(6) DEFAULT NOW(6)); GRANT ALL ON bench.* TO 'topogit'@'%'"], dir);
    writeFileSync(file(work), readFileSync(file(work), 'utf8').replace(/^failover:\n(?: {2}.*\n)+/m, 'failover:\n  auto: true\n  blockSeconds: 0\n'));
    writeFileSync(path.join(work, '.gitignore'), '.topogit/\n');
    await must('git', ['add', '.'], work);
    await must('git', ['commit', '-qm', 'bench'], work);
    await must('git', ['push', '-q', 'origin', 'main'], work);
    await must('git', ['clone', '-q', bare, ops], dir);
    const port = await freePort();
    api = `http://127.0.0.1:${port}`;
    daemon = spawn(process.execPath, [bin, 'watch', '--pull-interval', '1000', '--http', `127.0.0.1:${port}`], { cwd: ops, env, stdio: ['ignore', 'pipe', 'pipe'] });
    daemon.stdout.on('data', (d) => (log += d));
    daemon.stderr.on('data', (d) => (log += d));
    await until('the cluster is healthy, HAProxy in step', () => healthy('db001'));

    worker = new Worker(fileURLToPath(import.meta.url), { workerData: { host: FRONT, port: 3306, user: 'topogit', password: PW, writeMs } });
    worker.on('error', (e) => console.error('clients:', e));
    await writesOn('db001', '1970-01-01');
    // A quiet window first: the longest gaps with no event at all (scheduling, the machine's noise),
    // once the clients have written for longer than the second before the window that judge() reads.
    await sleep(2000);
    {
      const from = await nowOn('db001');
      const before = await clientStats();
      await sleep(5000);
      const to = await nowOn('db001');
      baseline = { ...(await judge(from, to, 'db001', 'db001')), clients: diff(before, await clientStats()) };
      delete baseline.lateOnOld;
      delete baseline.switchMs;
      console.log(`baseline (5 s, no event): longest gap pool ${baseline.gapMs.pool} ms, cli ${baseline.gapMs.cli} ms, both ${baseline.gapMs.any} ms; ${baseline.rows} rows`);
    }

    let primary = 'db001';
    const plan = [...Array(drills).fill('failover'), ...Array(switchovers).fill('switchover')];
    for (const [k, kind] of plan.entries()) {
      await until(`the cluster is healthy with ${primary} primary before event ${k + 1}`, () => healthy(primary), 60_000);
      const old = primary;
      const offset = log.length;
      const before = await clientStats();
      let r;
      if (kind === 'failover') {
        // Kill at a random phase of the detection interval, as a real crash would.
        await sleep(Math.random() * 2500);
        const from = await nowOn(old);
        const pid = Number(readFileSync(path.join(dir, '.sandbox', 'bench', old, 'mysqld.pid'), 'utf8'));
        const killedAt = Date.now();
        process.kill(pid, 'SIGKILL');
        dropConn(old);
        await until('the failover commit', () => /"step":"written-back"/.test(log.slice(offset)));
        const lines = logLines(offset);
        const at = (pred) => lines.find(pred)?.time;
        const to = await until('the writer backend holds one server', async () => {
          const w = await writerReady();
          return w.length === 1 && w[0] !== old ? w[0] : undefined;
        });
        await writesOn(to, from);
        await sleep(1000);
        const until_ = await nowOn(to);
        const after = await clientStats();
        // The old primary comes back; the daemon rejoins it (its rows are read once it answers).
        await topogit(work, 'sandbox', 'start', old);
        await until(`${old} rejoined under ${to}`, () => healthy(to), 60_000);
        r = {
          kind,
          from: old,
          to,
          writableMs: at((l) => l.step === 'promoted') - killedAt,
          routedMs: at((l) => l.step === 'routed') !== undefined ? at((l) => l.step === 'routed') - killedAt : null,
          ...(await judge(from, until_, old, to)),
          clients: diff(before, after),
        };
        primary = to;
      } else {
        const to = names.filter((n) => n !== old)[k % 2];
        const from = await nowOn(old);
        // The operator's way: the file names the new primary, committed and pushed; the daemon pulls it.
        await must('git', ['pull', '-q', '--ff-only'], work);
        const text = editSources(readFileSync(file(work), 'utf8'), new Map(names.map((n) => [n, n === to ? null : to])));
        // (A switchover back to the primary the last failover chose gives, byte for byte, the text of
        // that failover's write-back: the daemon once took it for its own and never ran it, found by
        // this benchmark; fixed in src/daemon/reload.ts, so the text goes in as the operator wrote it.)
        writeFileSync(file(work), text);
        await must('git', ['commit', '-qam', `bench: switchover to ${to}`], work);
        const pushedAt = Date.now();
        await must('git', ['push', '-q', 'origin', 'main'], work);
        await until('the writer backend holds the new primary alone', async () => (await writerReady()).join(',') === to);
        const routedAt = Date.now();
        await writesOn(to, from);
        await sleep(1000);
        const until_ = await nowOn(to);
        const after = await clientStats();
        await until(`${old} replicates from ${to}`, () => healthy(to), 60_000);
        const lines = logLines(offset);
        // The daemon's statements on the servers: read_only ON on the old primary, OFF on the new one.
        const stmt = (inst, re) => lines.find((l) => l.msg === 'statement' && l.instance === inst && re.test(l.sql ?? ''))?.time;
        const readOnlyAt = stmt(old, /read_only\s*=\s*(1|ON)/i);
        const writableAt = stmt(to, /read_only\s*=\s*(0|OFF)/i);
        r = {
          kind,
          from: old,
          to,
          // From the old primary's SET read_only = 1 to the new primary's SET read_only = 0, as the daemon logged them.
          writableMs: readOnlyAt !== undefined && writableAt !== undefined ? writableAt - readOnlyAt : null,
          pushToRoutedMs: routedAt - pushedAt,
          ...(await judge(from, until_, old, to)),
          clients: diff(before, after),
        };
        primary = to;
      }
      events.push(r);
      const errs = (c) => Object.entries(r.clients[c].errors).map(([code, n]) => `${n}× ${code}`).join(', ') || 'none';
      console.log(
        `${kind} ${k + 1}: ${r.from} -> ${r.to}; longest gap pool ${r.gapMs.pool} ms, cli ${r.gapMs.cli} ms, both ${r.gapMs.any} ms; old primary's last row to new primary's first ${r.switchMs} ms; ` +
          `rows on ${r.from} after ${r.to}'s first: ${r.lateOnOld}; ${kind === 'failover' ? `topogit writable ${r.writableMs} ms, routed ${r.routedMs} ms` : `read-only to writable ${r.writableMs} ms`}; ` +
          `errors pool ${errs('pool')}; cli ${errs('cli')}; skipped ticks pool ${r.clients.pool.skipped}, cli ${r.clients.cli.skipped}`,
      );
    }
  } catch (e) {
    // Keep what the daemon said (test-results/ is not committed) and the cluster as it saw it.
    mkdirSync(path.join(root, 'test-results'), { recursive: true });
    writeFileSync(path.join(root, 'test-results', 'bench-routing-daemon.log'), log);
    const c = await fetch(`${api}/api/clusters`).then((r) => r.json(), () => undefined);
    console.error(`failed: ${e.message}\nthe daemon's conditions: ${JSON.stringify(c?.clusters?.[0]?.conditions)}\nits log: test-results/bench-routing-daemon.log`);
    throw e;
  } finally {
    if (worker) {
      clientTotals = await new Promise((resolve) => {
        worker.on('message', (m) => m.stopped && resolve(m.stopped));
        worker.postMessage('stop');
        setTimeout(() => resolve(undefined), 70_000); // the slowest client call's own deadline, then give up
      });
      await worker.terminate();
    }
    for (const c of conns.values()) c.destroy();
    if (daemon && daemon.exitCode === null) {
      daemon.kill('SIGTERM');
      await new Promise((r) => daemon.once('exit', r));
    }
    if (sandboxUp) await sh(process.execPath, [bin, 'sandbox', 'down', '--cluster', 'bench'], work);
    rmSync(dir, { recursive: true, force: true });
  }

  // --- Report ---------------------------------------------------------------------------------
  const kinds = ['failover', 'switchover'];
  const of = (kind) => events.filter((e) => e.kind === kind);
  const sum = (xs) => xs.reduce((a, b) => a + b, 0);
  const fmt = (v) => (v === null || v === undefined ? '-' : `${Math.round(v)}`);
  const summary = Object.fromEntries(
    kinds.map((kind) => {
      const es = of(kind);
      const g = (c) => es.map((e) => e.gapMs[c]);
      return [
        kind,
        {
          events: es.length,
          gapMs: Object.fromEntries(['pool', 'cli', 'any'].map((c) => [c, { median: median(g(c)), max: max(g(c)) }])),
          lateOnOld: sum(es.map((e) => e.lateOnOld ?? 0)),
          lateOnOldUnknown: es.filter((e) => e.lateOnOld === null).length,
          errors: { pool: sum(es.map((e) => e.clients.pool.failed)), cli: sum(es.map((e) => e.clients.cli.failed)) },
          skipped: { pool: sum(es.map((e) => e.clients.pool.skipped)), cli: sum(es.map((e) => e.clients.cli.skipped)) },
          writableMedianMs: median(es.map((e) => e.writableMs).filter((x) => x !== null)),
          gapMinusWritableMedianMs: kind === 'failover' ? { pool: median(es.map((e) => e.gapMs.pool - e.writableMs)), cli: median(es.map((e) => e.gapMs.cli - e.writableMs)) } : undefined,
          errorCodes: Object.fromEntries(['pool', 'cli'].map((c) => [c, es.reduce((acc, e) => {
            for (const [code, n] of Object.entries(e.clients[c].errors)) acc[code] = (acc[code] ?? 0) + n;
            return acc;
          }, {})])),
        },
      ];
    }),
  );
  console.log(`\nWrites through HAProxy (${FRONT}:3306), both clients every ${writeMs} ms; gaps read from the rows' NOW(6); switchovers: the file's primary edited, committed and pushed in the work clone, run by the daemon.`);
  console.log(`Baseline with no event (5 s): longest gap pool ${baseline?.gapMs.pool} ms, cli ${baseline?.gapMs.cli} ms.\n`);
  console.log('| kind | events | longest write gap, pool: median / max | cli: median / max | both clients: median / max | rows on the old primary after the new primary\'s first | client errors pool / cli | skipped ticks pool / cli | topogit writable, median |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const kind of kinds) {
    const s = summary[kind];
    if (s.events === 0) continue;
    console.log(
      `| ${kind} | ${s.events} | ${fmt(s.gapMs.pool.median)} / ${fmt(s.gapMs.pool.max)} ms | ${fmt(s.gapMs.cli.median)} / ${fmt(s.gapMs.cli.max)} ms | ${fmt(s.gapMs.any.median)} / ${fmt(s.gapMs.any.max)} ms | ${s.lateOnOld}${s.lateOnOldUnknown ? ` (${s.lateOnOldUnknown} unknown)` : ''} | ${s.errors.pool} / ${s.errors.cli} | ${s.skipped.pool} / ${s.skipped.cli} | ${kind === 'failover' ? `${fmt(s.writableMedianMs)} ms (from SIGKILL)` : `${fmt(s.writableMedianMs)} ms (read-only to writable)`} |`,
    );
  }
  for (const kind of kinds) {
    const s = summary[kind];
    if (s.events === 0) continue;
    const codes = (c) => Object.entries(s.errorCodes[c]).map(([code, n]) => `${n}× ${code}`).join(', ') || 'none';
    console.log(`\n${kind}: client errors: pool ${codes('pool')}; cli ${codes('cli')}.`);
    if (s.gapMinusWritableMedianMs) console.log(`${kind}: longest gap minus topogit's writable time, median: pool ${fmt(s.gapMinusWritableMedianMs.pool)} ms, cli ${fmt(s.gapMinusWritableMedianMs.cli)} ms.`);
  }
  const goals = {
    failoverGapMedianUnder1s: summary.failover.events ? summary.failover.gapMs.pool.median < 1000 && summary.failover.gapMs.cli.median < 1000 : null,
    failoverWithin150msOfWritable: summary.failover.events ? summary.failover.gapMinusWritableMedianMs.pool <= 150 && summary.failover.gapMinusWritableMedianMs.cli <= 150 : null,
    switchoverGapMedianUnder300ms: summary.switchover.events ? summary.switchover.gapMs.pool.median < 300 && summary.switchover.gapMs.cli.median < 300 : null,
    noLateWritesOnOldPrimary: sum(events.map((e) => e.lateOnOld ?? 0)) === 0 && events.every((e) => e.lateOnOld !== null),
  };
  console.log(`\ngoals: ${Object.entries(goals).map(([g, ok]) => `${g} ${ok === null ? 'n/a' : ok ? 'met' : 'NOT met'}`).join('; ')}`);
  mkdirSync(path.join(root, 'bench', 'results'), { recursive: true });
  writeFileSync(
    path.join(root, 'bench', 'results', 'routing.json'),
    JSON.stringify({ date: new Date().toISOString(), durationS: Math.round((Date.now() - started) / 1000), writeMs, frontend: `${FRONT}:3306`, switchoverMethod: "the file's primary edited in the work clone, committed and pushed; the daemon pulls (--pull-interval 1000) and runs it", baseline, summary, goals, clientTotals, events }, null, 2) + '\n',
  );
}
