// Plan actions -> SQL statements for one server. Used to show a plan (secrets masked) and to run it.
import type { Action } from '../../core/plan.js';
import { changeSource, displaySql, parseVersion, resetReplicaAll, setReadOnly, startReplica, startSqlThread, stopIoThread, stopReplica, stopSqlThread, type ServerVersion, type Statement } from './dialect.js';
import type { Login } from '../../core/ports.js';

export function statementsFor(action: Action, v: ServerVersion, repl: Login): Statement[] {
  switch (action.kind) {
    case 'set-read-only':
      return setReadOnly(v, action.readOnly);
    case 'start-replication':
      return [startReplica(v)];
    case 'change-source':
      return [
        stopReplica(v),
        changeSource(v, {
          host: action.host,
          port: action.port,
          user: repl.user,
          password: repl.password,
          connectRetry: action.settings.connectRetry,
          heartbeatPeriod: action.settings.heartbeatPeriod,
          ...(action.delaySeconds !== undefined ? { delay: action.delaySeconds } : {}),
        }),
        startReplica(v),
      ];
    case 'promote':
      return [stopReplica(v), resetReplicaAll(v), ...setReadOnly(v, false)];
    case 'wait-caught-up':
      // Not a statement: the executor polls the GTID state and compares it in code.
      return [];
    case 'drain-relay-log':
      // The SQL thread is started only when it stopped without an error (the executor checks).
      return [stopIoThread(v), startSqlThread(v)];
    case 'undelay':
      // The rest depends on where the applier stopped: the executor reads it after these.
      return [stopIoThread(v), stopSqlThread(v)];
    case 'route':
      // Not a statement: the router's runtime API (the executor's router port).
      return [];
  }
}

/** What a plan shows for an action: its statements with the password masked, or what it waits for. */
export function displayAction(action: Action, version: string, flavorHint: string, replUser: string): string[] {
  if (action.kind === 'wait-caught-up') {
    return [`-- wait up to ${action.timeoutSeconds}s until ${action.instance} has executed every GTID ${action.target} has`];
  }
  if (action.kind === 'route') {
    const server = `${action.backend}/${action.instance}`;
    return [`-- ${action.router.kind} ${action.router.address}: set server ${server} state ${action.to}${action.shutdownSessions ? `; shutdown sessions server ${server}` : ''}`];
  }
  const v = parseVersion(version, flavorHint);
  // The password is never known here: a placeholder goes in and is masked on the way out.
  return statementsFor(action, v, { user: replUser, password: '' }).map(displaySql);
}
