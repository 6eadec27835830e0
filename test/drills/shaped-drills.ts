// Drills that shape the topology or its links before their fault, on the harness's environment
// (fresh sandbox, real daemon, writer, read_only sampler): a minority cut off from the primary, a
// reset of every connection of the primary, a chain whose middle dies, a delayed replica, a
// semi-sync replica that applies slowly, a clean restart of the primary. Each run returns a
// DrillReport; `ok` is what the drill must prove (docs/drills.md).
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { TcpForwarder } from '../support/tcp-forwarder.js';
import { waitFor } from '../support/wait.js';
import { DrillEnv, judgeMissing, type DrillReport, type ShapedDrillKind } from './harness.js';

const exec = promisify(execFile);

export const SHAPED_DRILLS: readonly ShapedDrillKind[] = ['minority', 'reset', 'intermediate', 'delayed', 'semisync-lagging', 'restart'];

export function isShapedDrill(kind: string): kind is ShapedDrillKind {
  return (SHAPED_DRILLS as readonly string[]).includes(kind);
}

/** The drills' forwarder (loopback; db00N are on .101-.103). */
const FORWARDER = '127.0.0.110';
/** The daemon's source address where a drill cuts the daemon off (`--local-address`). */
const DAEMON_ADDRESS = '127.0.0.200';
/**
 * The daemon's group in the minority drill (nogroup; it stays root otherwise): nftables matches its
 * sockets by it (`meta skgid`), because `--local-address` does not reach the socket (mysql2
 * 3.24 ignores its localAddress option), so a rule on 127.0.0.200 alone never cuts the daemon off.
 */
const DAEMON_GID = 65534;
/** The harness's teardown deletes this table too, so a failed drill never leaves a rule behind. */
const NFT_TABLE = 'topogit_drill';
/** What topogit sets on every replica (failure detection needs them); a CHANGE MASTER that names a
 *  host resets the heartbeat period, so the drills' own statements set them too. */
const SETTINGS = 'MASTER_CONNECT_RETRY=2, MASTER_HEARTBEAT_PERIOD=1';
/** How long the minority drill's partition lasts. */
const PARTITION_MS = 10_000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface LogLine {
  time: number;
  msg?: string;
  step?: string;
  analysis?: string;
  instance?: string;
  sql?: string;
}

interface SlaveRow {
  Master_Host: string;
  Master_Server_Id: number;
  Slave_IO_Running: string;
  Slave_SQL_Running: string;
  Last_IO_Errno: number;
  SQL_Delay: number;
}

/** Runs one of the shaped drills on a fresh environment; one report per run. */
export async function runShapedDrill(kind: ShapedDrillKind, o: { baseOctet: number; intervalMs?: number }): Promise<DrillReport[]> {
  const env = new DrillEnv(o.baseOctet, o.intervalMs ?? 1000);
  try {
    await env.setup();
    switch (kind) {
      case 'minority':
        return await minority(env);
      case 'reset':
        return await reset(env, Number(process.env.TOPOGIT_DRILL_RESET_REPEAT ?? 5));
      case 'intermediate':
        return await intermediate(env);
      case 'delayed':
        return await delayed(env);
      case 'semisync-lagging':
        return await semisyncLagging(env);
      case 'restart':
        return await restart(env, Number(process.env.TOPOGIT_DRILL_RESTART_REPEAT ?? 3));
    }
  } finally {
    await env.teardown(kind);
  }
}

// --- minority ---------------------------------------------------------------------------------

/**
 * topogit and db002 lose db001 and db003; db003 and the applications keep db001. db002 replicates
 * through a forwarder (the only way to cut one replica's link on loopback: every replica connects
 * from 127.0.0.1), and the file says `reconcile: report` so that the daemon leaves that alone.
 * One replica of two confirms the death, the other is silent: no majority, no failover.
 */
async function minority(env: DrillEnv): Promise<DrillReport[]> {
  const fwd = new TcpForwarder({ host: FORWARDER, port: 3306 }, { host: host(env, 'db001'), port: 3306 });
  try {
    await fwd.start();
    await env.sql('db002', 'STOP SLAVE', `CHANGE MASTER TO MASTER_HOST='${FORWARDER}', MASTER_PORT=3306, MASTER_USE_GTID=slave_pos, ${SETTINGS}`, 'START SLAVE');
    // It still reports db001's server id: how topogit tells whom it replicates from.
    await waitFor('db002 to replicate from db001 through the forwarder', () => slaveRow(env, 'db002'), (r) => channel(r) === `${FORWARDER} IO Yes SQL Yes` && Number(r?.Master_Server_Id) === 1, 20_000);
    await editTopology(env, (t) => t.replace(/^failover:\n/m, 'failover:\n  reconcile: report\n'), 'drill: reconcile report (db002 replicates through a forwarder)');
    await env.startDaemon({}, ['--local-address', DAEMON_ADDRESS], { gid: DAEMON_GID });
    await startLoad(env);

    const before = await env.failoverCommits();
    const offset = env.daemonLog.length;
    await jitter(env);
    const t0 = Date.now();
    const firstId = env.nextWriteId;
    const reasons = new Set<string>();
    const analyses = new Set<string>();
    let daemonLostPrimary = false;
    let landed: string | undefined;
    try {
      await nftDrop([host(env, 'db001'), host(env, 'db003')], { saddr: DAEMON_ADDRESS, skgid: DAEMON_GID });
      await fwd.refuse();
      // The fault as designed, or the drill proves nothing: db002 lost db001 on a connection
      // error, db003 still has it.
      landed = await waitFor(
        'db002 to lose db001 on a connection error while db003 keeps it',
        async () => ({ db002: await slaveRow(env, 'db002'), db003: await slaveRow(env, 'db003') }),
        (x) => x.db002?.Slave_IO_Running !== 'Yes' && [2003, 2013].includes(Number(x.db002?.Last_IO_Errno)) && x.db003?.Slave_IO_Running === 'Yes',
        PARTITION_MS,
      ).then(
        () => undefined,
        (e: Error) => e.message,
      );
      while (Date.now() - t0 < PARTITION_MS) {
        const c = await clusterJson(env).catch(() => undefined);
        const blocked = c?.conditions.find((x) => x.type === 'FailoverBlocked');
        if (blocked?.status) reasons.add(blocked.reason);
        if (c?.analysis) analyses.add(c.analysis);
        if (c?.tree.find((i) => i.name === 'db001')?.health === 'Unreachable') daemonLostPrimary = true;
        await sleep(250); // how often /api/clusters is read while the 10 s partition lasts
      }
    } finally {
      await nftHeal();
      await fwd.start();
    }
    const healedAt = Date.now();
    const lastDuringFault = env.lastAckedOn('db001');
    await env.afterPasses(3, 'after the partition healed');
    const failovers = (await env.failoverCommits()) - before;
    const resumed = await resumedOn(env, 'db001', firstId);
    const missingIds = await env.missing('db001');
    let behind = 0;
    for (const [name, via] of [
      ['db002', FORWARDER],
      ['db003', host(env, 'db001')],
    ] as const) {
      const err = await replicatesFrom(env, name, via);
      if (err) behind++;
    }
    const quorum = [...reasons].find((r) => r.startsWith('quorum:'));
    const during = daemonSaw(env, offset, healedAt);
    const checks: (true | string)[] = [
      landed === undefined || `FAULT NOT AS DESIGNED: ${landed}`,
      daemonLostPrimary || 'FAULT NOT AS DESIGNED: the daemon never lost db001',
      failovers === 0 || `${failovers} FAILOVER(S)`,
      quorum !== undefined || `FailoverBlocked NEVER SAID quorum (it said: ${[...reasons].join(' | ') || 'not blocked'}; analyses: ${[...analyses].join(', ')}; logged: ${during.summary})`,
      lastDuringFault >= firstId || 'NO WRITE ACKNOWLEDGED BY db001 DURING THE PARTITION',
    ];
    return [
      report(env, 'minority', 1, {
        detail: `topogit (${DAEMON_ADDRESS}) and db002 cut off from db001 and db003 for ${PARTITION_MS / 1000} s; db003 and the writer kept db001 (${lastDuringFault >= firstId ? lastDuringFault - firstId + 1 : 0} ids written meanwhile)${quorum ? `; blocked: ${quorum.slice(0, 90)}` : ''}`,
        failovers,
        allowedFailovers: 0,
        writesResumed: resumed === undefined,
        missingIds,
        behind,
        checks,
      }),
    ];
  } finally {
    await nftHeal();
    await fwd.stop();
  }
}

// --- reset --------------------------------------------------------------------------------------

/** Every TCP connection of the primary killed at once (ss -K, both ends), `repeat` times: no failover. */
async function reset(env: DrillEnv, repeat: number): Promise<DrillReport[]> {
  await env.startDaemon();
  await startLoad(env);
  const reports: DrillReport[] = [];
  for (let run = 1; run <= repeat; run++) {
    const primary = await env.primaryInGit();
    const h = host(env, primary);
    const before = await env.failoverCommits();
    const offset = env.daemonLog.length;
    await jitter(env);
    const t0 = Date.now();
    const firstId = env.nextWriteId;
    // Both ends: the clients' sockets (replicas' IO threads, the writer, the sampler, the daemon's
    // probes) and the server's. ss -K needs CONFIG_INET_DIAG_DESTROY (checked: it works here).
    const [clients, server] = await Promise.all([exec('ss', ['-K', 'dst', h, 'dport', '=', '3306']), exec('ss', ['-K', 'src', h, 'sport', '=', '3306'])]);
    const killed = socketLines(clients.stdout) + socketLines(server.stdout);
    // At least the replicas' two IO-thread connections (the first ss may leave the second nothing
    // to list: a killed client end resets the server's end): fewer means the fault did not land.
    if (killed < 2) throw new Error(`ss -K killed only ${killed} sockets of ${primary}:3306:\n${clients.stdout}\n${server.stdout}`);
    await env.afterPasses(3, 'after the connection reset');
    const failovers = (await env.failoverCommits()) - before;
    const saw = daemonSaw(env, offset);
    const resumed = await resumedOn(env, primary, firstId);
    const missingIds = await env.missing(primary);
    const behind = await env.leftBehind(primary);
    reports.push(
      report(env, 'reset', run, {
        detail: `every TCP connection of ${primary}:3306 killed at once (ss -K, ${killed} sockets); the daemon saw: ${saw.summary}`,
        failovers,
        allowedFailovers: 0,
        ...env.phases(t0, offset),
        writesResumed: resumed === undefined,
        missingIds,
        behind,
        checks: [failovers === 0 || `${failovers} FAILOVER(S)`, resumed === undefined || resumed],
      }),
    );
  }
  return reports;
}

// --- intermediate -------------------------------------------------------------------------------

/** db001 -> db002 -> db003; SIGKILL db002: db003 moves under db001, nothing is promoted. */
async function intermediate(env: DrillEnv): Promise<DrillReport[]> {
  await editTopology(env, (t) => t.replace(/^( {2}db003: \{ host: [\d.]+, port: 3306, source: )db001 \}/m, '$1db002 }'), 'drill: db003 replicates from db002 (a chain)');
  await env.sql('db003', 'STOP SLAVE', `CHANGE MASTER TO MASTER_HOST='${host(env, 'db002')}', MASTER_PORT=3306, MASTER_USE_GTID=slave_pos, ${SETTINGS}`, 'START SLAVE');
  await waitFor('db003 to replicate from db002', () => slaveRow(env, 'db003'), (r) => channel(r) === `${host(env, 'db002')} IO Yes SQL Yes`, 20_000);
  await env.startDaemon();
  await startLoad(env);

  const before = await env.failoverCommits();
  const offset = env.daemonLog.length;
  await jitter(env);
  const t0 = Date.now();
  const firstId = env.nextWriteId;
  const gap = watchAckGap(env, 'db001');
  const failures: string[] = [];
  await env.fleet.run('sandbox', 'kill', 'db002');
  const since = (label: string) => (e: Error | undefined) => {
    if (e) {
      failures.push(`${label}: ${e.message}`);
      return null;
    }
    return Date.now() - t0;
  };
  const subject = 'relocate(drill): db003 db002 -> db001';
  const [movedMs, commitMs] = await Promise.all([
    waitFor('db003 to replicate from db001 with both threads', () => slaveRow(env, 'db003'), (r) => channel(r) === `${host(env, 'db001')} IO Yes SQL Yes`, 30_000).then(() => since('moved')(undefined), since('NOT MOVED')),
    waitFor(`"${subject}" on the remote`, () => subjects(env), (s) => s.includes(subject), 30_000).then(() => since('commit')(undefined), since('NO RELOCATE COMMIT')),
  ]);
  const resumed = await resumedOn(env, 'db001', firstId);
  const longestGap = gap.stop();
  const failovers = (await env.failoverCommits()) - before;
  const promoted = logLines(env, offset).some((l) => l.step === 'promoted');
  const missingIds = await env.missing('db001');
  // db002 comes back read-only and replicates from db001 again, as the file now says of both.
  await env.fleet.run('sandbox', 'start', 'db002');
  const behind = await env.leftBehind('db001');
  return [
    report(env, 'intermediate', 1, {
      detail: `SIGKILL db002 (db001 -> db002 -> db003); db003 under db001 after ${movedMs ?? '-'} ms, relocate commit pushed after ${commitMs ?? '-'} ms; longest pause between writes on db001: ${longestGap} ms${failures.length ? `; ${failures.join('; ')}` : ''}`,
      failovers,
      allowedFailovers: 0,
      detectionMs: null,
      writableMs: null,
      repointedMs: movedMs,
      commitMs,
      writesResumed: resumed === undefined,
      missingIds,
      behind,
      checks: [
        movedMs !== null || 'db003 NOT MOVED UNDER db001',
        commitMs !== null || 'NO RELOCATE COMMIT',
        failovers === 0 || `${failovers} FAILOVER(S)`,
        !promoted || 'SOMETHING WAS PROMOTED',
        longestGap < 1000 || `WRITES ON db001 PAUSED ${longestGap} ms`,
      ],
    }),
  ];
}

// --- delayed -------------------------------------------------------------------------------------

/** db002 MASTER_DELAY=20, db003 current; SIGKILL db001: db003 is promoted at once, db002 loses nothing. */
async function delayed(env: DrillEnv): Promise<DrillReport[]> {
  await env.sql('db002', 'STOP SLAVE', `CHANGE MASTER TO MASTER_DELAY=20, ${SETTINGS}`, 'START SLAVE');
  await waitFor('db002 to replicate with a 20 s delay', () => slaveRow(env, 'db002'), (r) => channel(r) === `${host(env, 'db001')} IO Yes SQL Yes` && Number(r?.SQL_Delay) === 20, 20_000);
  await env.startDaemon();
  await startLoad(env);
  await waitBehind(env, 'db002', 100, 'its 20 s delay');

  const before = await env.failoverCommits();
  const offset = env.daemonLog.length;
  await jitter(env);
  const t0 = Date.now();
  const firstId = env.nextWriteId;
  await env.fleet.run('sandbox', 'kill', 'db001');
  const notes = await awaitFailover(env, before, offset);
  const newPrimary = await env.primaryInGit();
  const phases = env.phases(t0, offset);
  const failovers = (await env.failoverCommits()) - before;
  const resumed = await resumedOn(env, newPrimary, firstId);
  const missingIds = await env.missing(newPrimary);
  // db002, repointed with its delay kept, has every write acknowledged before the kill once the
  // delay has passed. A wait that runs out is the verdict, so it goes into the report.
  const ackedBefore = env.ackedIds.filter((id) => id < firstId);
  const completeMs = await waitFor(
    'db002 to have every write acknowledged before the kill (its delay is 20 s)',
    async () => {
      const rows = (await env.sql('db002', `SELECT id FROM topogit_demo.drill WHERE id < ${Number(firstId)}`)) as { id: number }[];
      const have = new Set(rows.map((r) => r.id));
      return ackedBefore.filter((id) => !have.has(id)).length;
    },
    (n) => n === 0,
    45_000,
  ).then(
    () => Date.now() - t0,
    (e: Error) => (notes.push(`db002 INCOMPLETE: ${e.message}`), null),
  );
  await env.fleet.run('sandbox', 'start', 'db001');
  const behind = await env.leftBehind(newPrimary);
  const loss = await judgeMissing(env, missingIds, 'db001', newPrimary);
  if (loss) notes.push(loss);
  const fast = phases.detectionMs !== null && phases.writableMs !== null ? phases.writableMs - phases.detectionMs : null;
  return [
    report(env, 'delayed', 1, {
      detail: `SIGKILL db001 (db002 MASTER_DELAY=20, db003 current); new primary ${newPrimary}, writable ${fast ?? '-'} ms after detection; db002 had every write acknowledged before the kill ${completeMs ?? '-'} ms after it${notes.length ? `; ${notes.join('; ')}` : ''}`,
      failovers,
      allowedFailovers: 1,
      ...phases,
      writesResumed: resumed === undefined,
      missingIds,
      // Asynchronous: the last writes db001 acknowledged may never have left it (judgeMissing says
      // so, and fails the run when a survivor had one or db001 rejoined with one).
      asyncLossAllowed: true,
      behind,
      checks: [!/LOST WRITES|REJOINED/.test(loss) || loss, failovers === 1 || `${failovers} FAILOVERS`, newPrimary === 'db003' || `NEW PRIMARY ${newPrimary}`, (fast !== null && fast < 1000) || `WRITABLE ${fast ?? '-'} ms AFTER DETECTION`, completeMs !== null || 'db002 INCOMPLETE'],
    }),
  ];
}

// --- semisync-lagging ---------------------------------------------------------------------------

/**
 * Lossless semi-sync where the only acknowledging replica applies slowly: db002 acknowledges
 * (relay log) but applies 5 s late; db003 is asynchronous and receives 500 ms late (it replicates
 * through a forwarder that holds what db001 sends for 500 ms, and drops it if db001 dies). At the
 * kill the last acknowledged writes are in db002's relay log only: topogit must apply them
 * (`undelayed`) before anyone is promoted.
 */
async function semisyncLagging(env: DrillEnv): Promise<DrillReport[]> {
  const fwd = new TcpForwarder({ host: FORWARDER, port: 3306 }, { host: host(env, 'db001'), port: 3306 }, { delayMs: 500 });
  try {
    await fwd.start();
    for (const n of Object.keys(env.hosts)) {
      await env.sql(n, 'SET GLOBAL rpl_semi_sync_master_wait_point = AFTER_SYNC', 'SET GLOBAL rpl_semi_sync_master_timeout = 10000', `SET GLOBAL rpl_semi_sync_slave_enabled = ${n === 'db002' ? 1 : 0}`);
    }
    await env.sql('db001', 'SET GLOBAL rpl_semi_sync_master_enabled = 1');
    // Restarting the IO threads makes them (re)register as semi-sync or not.
    await env.sql('db002', 'STOP SLAVE', `CHANGE MASTER TO MASTER_DELAY=5, ${SETTINGS}`, 'START SLAVE');
    await env.sql('db003', 'STOP SLAVE', `CHANGE MASTER TO MASTER_HOST='${FORWARDER}', MASTER_PORT=3306, MASTER_USE_GTID=slave_pos, ${SETTINGS}`, 'START SLAVE');
    await waitFor('db002 to replicate with a 5 s delay', () => slaveRow(env, 'db002'), (r) => channel(r) === `${host(env, 'db001')} IO Yes SQL Yes` && Number(r?.SQL_Delay) === 5, 20_000);
    await waitFor('db003 to replicate through the 500 ms forwarder', () => slaveRow(env, 'db003'), (r) => channel(r) === `${FORWARDER} IO Yes SQL Yes`, 20_000);
    await waitFor('db001 to have exactly one semi-sync replica (db002)', () => semiSyncClients(env, 'db001'), (n) => n === 1, 20_000);
    await env.startDaemon();
    await startLoad(env);
    // Acknowledged writes waiting in db002's relay log: what the drill is about.
    await waitBehind(env, 'db002', 50, 'its 5 s delay');

    const before = await env.failoverCommits();
    const offset = env.daemonLog.length;
    await jitter(env);
    const t0 = Date.now();
    const firstId = env.nextWriteId;
    await env.fleet.run('sandbox', 'kill', 'db001');
    const notes = await awaitFailover(env, before, offset);
    const newPrimary = await env.primaryInGit();
    const phases = env.phases(t0, offset);
    const failovers = (await env.failoverCommits()) - before;
    const steps = logLines(env, offset).filter((l) => l.step !== undefined);
    const undelayed = steps.some((l) => l.step === 'undelayed');
    const caughtUp = steps.find((l) => l.step === 'caught-up');
    // The new primary may have no semi-sync replica yet: its first commit waits out the 10 s timeout.
    const resumed = await resumedOn(env, newPrimary, firstId);
    const missingIds = await env.missing(newPrimary);
    await env.fleet.run('sandbox', 'start', 'db001');
    const behind = await env.leftBehind(newPrimary);
    return [
      report(env, 'semisync-lagging', 1, {
        detail: `SIGKILL db001 (semi-sync AFTER_SYNC, db002 the only acknowledging replica with MASTER_DELAY=5, db003 500 ms behind); ${undelayed ? 'db002 undelayed' : 'NO undelayed STEP'}; new primary ${newPrimary}${caughtUp ? `; ${(caughtUp.msg ?? '').replace(/^failover caught-up: /, '')}` : ''}${notes.length ? `; ${notes.join('; ')}` : ''}`,
        failovers,
        allowedFailovers: 1,
        ...phases,
        writesResumed: resumed === undefined,
        missingIds,
        behind,
        checks: [failovers === 1 || `${failovers} FAILOVERS`, undelayed || 'NO undelayed STEP'],
      }),
    ];
  } finally {
    await fwd.stop();
  }
}

// --- restart --------------------------------------------------------------------------------------

/**
 * A clean restart of the primary (`sandbox stop` then `sandbox start` at once; it comes back
 * read-only). Either nothing is promoted (the primary answered again first, or the failover was
 * undone) and the daemon makes it writable again, or one failover completes and the old primary
 * rejoins. Exactly one writable primary at the end in both cases.
 */
async function restart(env: DrillEnv, repeat: number): Promise<DrillReport[]> {
  await env.startDaemon();
  await startLoad(env);
  const reports: DrillReport[] = [];
  for (let run = 1; run <= repeat; run++) {
    const primary = await env.primaryInGit();
    const before = await env.failoverCommits();
    const offset = env.daemonLog.length;
    await jitter(env);
    const t0 = Date.now();
    const firstId = env.nextWriteId;
    for (const step of ['stop', 'start']) {
      const r = await env.fleet.run('sandbox', step, primary);
      if (r.code !== 0) throw new Error(`sandbox ${step} ${primary} failed: ${r.err}`);
    }
    const restartMs = Date.now() - t0;
    // Whatever the daemon does about it, it does within a pass: three more passes and it is settled.
    await env.afterPasses(3, `after ${primary} restarted`);
    const failovers = (await env.failoverCommits()) - before;
    const newPrimary = await env.primaryInGit();
    const phases = env.phases(t0, offset);
    const saw = daemonSaw(env, offset);
    const resumed = await resumedOn(env, newPrimary, firstId);
    const missingIds = await env.missing(newPrimary);
    const behind = await env.leftBehind(newPrimary);
    // Exactly one writable instance, the file's primary. A wait that runs out is the verdict.
    const writable = await waitFor(
      `exactly one writable instance, ${newPrimary}`,
      () => writableInstances(env),
      (w) => w.length === 1 && w[0] === newPrimary,
      20_000,
    ).then(
      () => undefined,
      (e: Error) => e.message,
    );
    // Nothing promoted: when the daemon made the restarted (read-only) primary writable again.
    const madeWritable = logLines(env, offset).find((l) => l.instance === primary && l.sql === 'SET GLOBAL read_only = 0');
    const writableAgainMs = failovers === 0 && madeWritable ? madeWritable.time - t0 : null;
    const what =
      failovers === 0
        ? `no failover, ${primary} writable again after ${writableAgainMs ?? '-'} ms`
        : `failover ${primary} -> ${newPrimary}${behind === 0 ? `, ${primary} rejoined` : ''}`;
    reports.push(
      report(env, 'restart', run, {
        detail: `clean restart of ${primary} (stop + start: ${restartMs} ms): ${what}; the daemon saw: ${saw.summary}${writable ? `; ${writable}` : ''}`,
        failovers,
        allowedFailovers: 1,
        ...phases,
        ...(failovers === 0 ? { writableMs: writableAgainMs } : {}),
        writesResumed: resumed === undefined,
        missingIds,
        behind,
        checks: [writable === undefined || 'NOT EXACTLY ONE WRITABLE', resumed === undefined || resumed],
      }),
    );
  }
  return reports;
}

// --- shared -------------------------------------------------------------------------------------

function host(env: DrillEnv, name: string): string {
  const h = env.hosts[name];
  if (!h) throw new Error(`no instance ${name} in the drill (${Object.keys(env.hosts).join(', ')})`);
  return h;
}

/** The writer and the sampler running: 20 acknowledged writes and 5 samples. */
async function startLoad(env: DrillEnv): Promise<void> {
  env.startWriter();
  env.startSampler();
  await waitFor('the writer and the sampler to run (20 acknowledged writes, 5 samples)', async () => ({ acked: env.ackedCount, samples: env.samples }), (x) => x.acked >= 20 && x.samples >= 5, 15_000);
}

async function jitter(env: DrillEnv): Promise<void> {
  await sleep(Math.random() * env.intervalMs); // random jitter: the fault lands at a random moment of the detection interval, as a real one would
}

/** Commits and pushes an edit of the topology before the daemon starts, and pulls it into its clone. */
async function editTopology(env: DrillEnv, edit: (text: string) => string, message: string): Promise<void> {
  const work = path.join(env.fleet.dir, 'work');
  const file = path.join(work, 'topologies', 'drill.yaml');
  const text = await readFile(file, 'utf8');
  const next = edit(text);
  if (next === text) throw new Error(`"${message}" changed nothing in:\n${text}`);
  await writeFile(file, next);
  await env.git(work, 'commit', '-qam', message);
  await env.git(work, 'push', '-q', 'origin', 'main');
  await env.git(env.ops, 'pull', '-q', '--ff-only');
}

async function slaveRow(env: DrillEnv, name: string): Promise<SlaveRow | undefined> {
  return ((await env.sql(name, 'SHOW SLAVE STATUS')) as SlaveRow[])[0];
}

/** `<Master_Host> IO <Slave_IO_Running> SQL <Slave_SQL_Running>`, or `not replicating`. */
function channel(r: SlaveRow | undefined): string {
  return r ? `${r.Master_Host} IO ${r.Slave_IO_Running} SQL ${r.Slave_SQL_Running}` : 'not replicating';
}

/** undefined when `name` replicates from `via` with both threads within 20 s, else why not (a verdict). */
async function replicatesFrom(env: DrillEnv, name: string, via: string): Promise<string | undefined> {
  return waitFor(`${name} to replicate from ${via} with both threads running`, () => slaveRow(env, name), (r) => channel(r) === `${via} IO Yes SQL Yes`, 20_000).then(
    () => undefined,
    (e: Error) => {
      process.stderr.write(`drill: ${e.message}\n`);
      return e.message;
    },
  );
}

/** undefined when `name` acknowledged a write made at or after id `firstId` within 30 s, else why not. */
async function resumedOn(env: DrillEnv, name: string, firstId: number): Promise<string | undefined> {
  return waitFor(`${name} to acknowledge a write made after the fault`, async () => env.lastAckedOn(name), (id) => id >= firstId, 30_000).then(
    () => undefined,
    (e: Error) => e.message,
  );
}

/** Waits for the failover commit and the daemon's "written-back" line; returns what went wrong (a verdict). */
async function awaitFailover(env: DrillEnv, before: number, offset: number): Promise<string[]> {
  const notes: string[] = [];
  const committed = await waitFor('a failover commit on the remote', env.failoverCommits, (n) => n > before, 30_000).then(
    () => true,
    (e: Error) => (notes.push(e.message), false),
  );
  if (committed) await waitFor('the daemon to log "written-back"', async () => env.daemonLog.slice(offset), (l) => l.includes('"step":"written-back"'), 5000);
  return notes;
}

/** Waits until `name` has applied at least `n` fewer rows than were acknowledged (it is behind on purpose). */
async function waitBehind(env: DrillEnv, name: string, n: number, why: string): Promise<void> {
  await waitFor(
    `${name} to be ${n} acknowledged writes behind (${why})`,
    async () => env.ackedCount - Number(((await env.sql(name, 'SELECT COUNT(*) AS n FROM topogit_demo.drill')) as { n: number }[])[0]?.n),
    (d) => d >= n,
    20_000,
  );
}

async function subjects(env: DrillEnv): Promise<string[]> {
  const { stdout } = await exec('git', ['--git-dir', env.bare, 'log', '--format=%s', 'main']);
  return stdout.split('\n');
}

interface ClusterJson {
  analysis: string | null;
  conditions: { type: string; status: boolean; reason: string }[];
  tree: { name: string; health: string }[];
}

/** The daemon's view of the drill's cluster (GET /api/clusters). */
async function clusterJson(env: DrillEnv): Promise<ClusterJson | undefined> {
  return (JSON.parse((await env.get('/api/clusters')).body) as { clusters: ClusterJson[] }).clusters[0];
}

async function semiSyncClients(env: DrillEnv, name: string): Promise<number> {
  const rows = (await env.sql(name, "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_clients'")) as { Value: string }[];
  return Number(rows[0]?.Value ?? -1);
}

async function writableInstances(env: DrillEnv): Promise<string[]> {
  const out: string[] = [];
  for (const name of Object.keys(env.hosts)) {
    if ((await env.fleet.readOnly(name).catch(() => 1)) === 0) out.push(name);
  }
  return out;
}

function logLines(env: DrillEnv, offset: number): LogLine[] {
  return env.daemonLog
    .slice(offset)
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);
}

/** What the daemon logged since `offset` (until `until`): analyses other than PrimaryReachable, refused and undone failovers. */
function daemonSaw(env: DrillEnv, offset: number, until = Infinity): { analyses: string; summary: string } {
  const lines = logLines(env, offset).filter((l) => l.time <= until);
  const analyses = [...new Set(lines.flatMap((l) => (l.analysis && l.analysis !== 'PrimaryReachable' ? [l.analysis] : [])))].join(', ');
  const count = (re: RegExp) => lines.filter((l) => re.test(l.msg ?? '')).length;
  const secondProbe = count(/answered a second probe/);
  const undone = count(/^failover undone/);
  const blocked = count(/^quorum:/);
  const parts = [
    analyses ? `analyses ${analyses}` : 'only PrimaryReachable',
    ...(secondProbe ? [`${secondProbe} failover(s) refused on the second probe`] : []),
    ...(undone ? [`${undone} failover(s) undone`] : []),
    ...(blocked ? [`${blocked} pass(es) blocked by quorum`] : []),
  ];
  return { analyses, summary: parts.join(', ') };
}

/** Socket lines in `ss` output (the header and blank lines left out). */
function socketLines(out: string): number {
  return out.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('Netid')).length;
}

/** Watches the acknowledgements of `name` and returns the longest time without one when stopped. */
function watchAckGap(env: DrillEnv, name: string): { stop(): number } {
  let last = env.lastAckedOn(name);
  let lastAt = Date.now();
  let longest = 0;
  const timer = setInterval(() => {
    const now = Date.now();
    const id = env.lastAckedOn(name);
    if (id !== last) {
      longest = Math.max(longest, now - lastAt);
      last = id;
      lastAt = now;
    }
  }, 25); // sampling period of the measurement (25 ms resolution), not a wait
  return {
    stop() {
      clearInterval(timer);
      return Math.max(longest, Date.now() - lastAt);
    },
  };
}

/** Drops the daemon's packets to port 3306 of `to`: those from its address, and those of its group's sockets. */
async function nftDrop(to: readonly string[], from: { saddr: string; skgid: number }): Promise<void> {
  await exec('nft', ['add', 'table', 'inet', NFT_TABLE]);
  await exec('nft', ['add', 'chain', 'inet', NFT_TABLE, 'out', '{ type filter hook output priority 0; }']);
  for (const d of to) {
    await exec('nft', ['add', 'rule', 'inet', NFT_TABLE, 'out', 'ip', 'saddr', from.saddr, 'ip', 'daddr', d, 'tcp', 'dport', '3306', 'drop']);
    await exec('nft', ['add', 'rule', 'inet', NFT_TABLE, 'out', 'meta', 'skgid', String(from.skgid), 'ip', 'daddr', d, 'tcp', 'dport', '3306', 'drop']);
  }
}

async function nftHeal(): Promise<void> {
  await exec('nft', ['delete', 'table', 'inet', NFT_TABLE]).catch(() => undefined);
}

interface Verdict {
  readonly detail: string;
  readonly failovers: number;
  /** Failovers beyond this many are unexpected. */
  readonly allowedFailovers: number;
  readonly detectionMs?: number | null;
  readonly writableMs?: number | null;
  readonly repointedMs?: number | null;
  readonly commitMs?: number | null;
  readonly writesResumed: boolean;
  readonly missingIds: readonly number[];
  /** Asynchronous replication: missing writes are judged by judgeMissing (in checks), not refused outright. */
  readonly asyncLossAllowed?: boolean;
  readonly behind: number;
  /** The drill's own conditions: true, or what went wrong (appended to the detail). */
  readonly checks: readonly (true | string)[];
}

function report(env: DrillEnv, drill: ShapedDrillKind, run: number, v: Verdict): DrillReport {
  const failed = v.checks.filter((c): c is string => c !== true);
  const ok = failed.length === 0 && env.twoWritable === 0 && v.writesResumed && (v.missingIds.length === 0 || v.asyncLossAllowed === true) && v.behind === 0 && v.failovers <= v.allowedFailovers;
  return {
    drill,
    run,
    detail: [v.detail, ...failed.filter((f) => !v.detail.includes(f))].join('; '),
    failedOver: v.failovers > 0,
    detectionMs: v.detectionMs ?? null,
    writableMs: v.writableMs ?? null,
    repointedMs: v.repointedMs ?? null,
    commitMs: v.commitMs ?? null,
    twoWritableSamples: env.twoWritable,
    ackedWrites: env.ackedCount,
    writesResumed: v.writesResumed,
    missingAcked: v.missingIds.length,
    missingIds: v.missingIds,
    replicasLeftBehind: v.behind,
    unexpectedFailovers: Math.max(0, v.failovers - v.allowedFailovers),
    ok,
  };
}
