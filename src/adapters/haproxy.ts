// HAProxy's runtime API (management guide, "Unix Socket commands"), the RouterPort that routing
// reads and changes routers through. One command per connection, in the non-interactive mode:
// connect (TCP `host:port`, or a unix socket when the address starts with `/`), write the command
// and a newline, read until HAProxy closes. Every call has a deadline (connect + answer) and fails
// with a one-line Error that names the router's address and what failed.
//
// Answers observed from HAProxy 2.6.12 (Debian 12):
//   `show servers state <b>`      -> "1\n# be_id be_name srv_id srv_name ...\n<one line per server>\n\n"
//                                    "Can't find backend.\n\n" for a backend that does not exist
//   `set server <b>/<s> state x`  -> "\n" on success; "No such backend.\n\n" / "No such server.\n\n"
//   `shutdown sessions server ..` -> the same
import net from 'node:net';
import type { RouterPort } from '../core/ports.js';
import type { RouterChange, RouterServer, RouterSpec } from '../core/routing.js';

// srv_admin_state is a mask (management guide, "show servers state"; src/server.h):
const SRV_ADMF_FMAINT = 0x01; // forced into maintenance (`set server ... state maint`, `disabled` in the config)
const SRV_ADMF_IMAINT = 0x02; // inherited from a tracked server
const SRV_ADMF_FDRAIN = 0x08; // forced into drain
const SRV_ADMF_IDRAIN = 0x10; // inherited drain
const SRV_ADMF_RMAINT = 0x20; // address resolution failure
// CMAINT (0x04, "disabled" in the config) is NOT maintenance by itself: HAProxy's own mask
// (SRV_ADMF_MAINT = 0x23) leaves it out, and it stays set after `state ready` (a server declared
// `disabled` and then made ready reads 4; made drain, 12).
const MAINT_MASK = SRV_ADMF_FMAINT | SRV_ADMF_IMAINT | SRV_ADMF_RMAINT;
const DRAIN_MASK = SRV_ADMF_FDRAIN | SRV_ADMF_IDRAIN;
const SRV_ST_RUNNING = 2;

/** Names HAProxy accepts for proxies and servers; anything else could change the command (`;` separates commands). */
const NAME = /^[A-Za-z0-9_.:-]+$/;

function fail(address: string, what: string): Error {
  return new Error(`haproxy ${address}: ${what}`);
}

function target(address: string): net.NetConnectOpts {
  if (address.startsWith('/')) return { path: address };
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(address) ?? /^([^:]+):(\d+)$/.exec(address);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535) throw fail(address, 'not an address: expected host:port or the path of a unix socket');
  return { host: m[1]!, port };
}

/**
 * Sends one command and returns HAProxy's whole answer. Rejects when the connection fails, when
 * HAProxy does not close within `timeoutMs` of the call, or when the command would not be one line.
 */
export function runtimeCommand(address: string, command: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    if (/[\r\n]/.test(command)) return reject(fail(address, `a command must be one line: ${JSON.stringify(command)}`));
    let opts: net.NetConnectOpts;
    try {
      opts = target(address);
    } catch (e) {
      return reject(e);
    }
    let connected = false;
    let settled = false;
    const chunks: Buffer[] = [];
    const socket = net.connect(opts);
    const finish = (err: Error | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const timer = setTimeout(() => {
      finish(fail(address, connected ? `no answer to \`${command}\` within ${timeoutMs} ms` : `could not connect within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('connect', () => {
      connected = true;
      socket.write(`${command}\n`);
    });
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('end', () => finish(undefined));
    socket.on('close', () => finish(connected ? undefined : fail(address, 'connection closed before it was established')));
    socket.on('error', (e: NodeJS.ErrnoException) => {
      const code = e.code ?? e.message;
      finish(fail(address, connected ? `\`${command}\` failed: ${code}` : `cannot connect: ${code}`));
    });
  });
}

/** HAProxy's answer without its final empty line; an error answer is one line of text. */
function answerText(answer: string): string {
  return answer.replace(/\s+$/, '');
}

/**
 * The servers of a `show servers state` answer (format version 1). Lines starting with `#` are
 * comments (the header); columns are found by the header's names, not by position.
 */
export function parseServersState(text: string): RouterServer[] {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const version = lines[0];
  if (version !== '1') throw new Error(`show servers state: expected format version 1 on the first line, got ${JSON.stringify(version?.slice(0, 80) ?? '')}`);
  const header = lines.find((l) => l.startsWith('#'));
  if (!header) throw new Error('show servers state: no "# be_id be_name ..." header line');
  const columns = header.slice(1).trim().split(/\s+/);
  const col = (name: string): number => {
    const i = columns.indexOf(name);
    if (i < 0) throw new Error(`show servers state: no ${name} column in the header`);
    return i;
  };
  const [iBackend, iServer, iOp, iAdmin] = [col('be_name'), col('srv_name'), col('srv_op_state'), col('srv_admin_state')];
  const out: RouterServer[] = [];
  for (const line of lines.slice(1)) {
    if (line.startsWith('#')) continue;
    const f = line.split(/\s+/);
    const [backend, server, op, admin] = [f[iBackend], f[iServer], Number(f[iOp]), Number(f[iAdmin])];
    if (backend === undefined || server === undefined || !Number.isInteger(op) || !Number.isInteger(admin)) {
      throw new Error(`show servers state: cannot read the line ${JSON.stringify(line.slice(0, 120))}`);
    }
    out.push({ backend, server, admin: admin & MAINT_MASK ? 'maint' : admin & DRAIN_MASK ? 'drain' : 'ready', up: op === SRV_ST_RUNNING });
  }
  return out;
}

function checkName(address: string, kind: 'backend' | 'server', name: string): void {
  if (!NAME.test(name)) throw fail(address, `${kind} name ${JSON.stringify(name)} is not an HAProxy name (letters, digits, '_', '.', ':', '-')`);
}

/** The servers of one backend; throws when the backend does not exist. */
export async function readBackend(address: string, backend: string, timeoutMs: number): Promise<RouterServer[]> {
  checkName(address, 'backend', backend);
  const answer = await runtimeCommand(address, `show servers state ${backend}`, timeoutMs);
  const text = answerText(answer);
  if (text === "Can't find backend.") throw fail(address, `backend ${backend} does not exist`);
  if (!text.startsWith('1')) throw fail(address, `show servers state ${backend}: ${text.split('\n')[0] || 'empty answer'}`);
  let servers: RouterServer[];
  try {
    servers = parseServersState(text);
  } catch (e) {
    throw fail(address, (e as Error).message);
  }
  // HAProxy also looks backends up by `#<id>`: keep only what is named so.
  return servers.filter((s) => s.backend === backend);
}

/** Runs a command whose success is an empty answer; throws with HAProxy's message otherwise. */
async function expectEmpty(address: string, command: string, timeoutMs: number): Promise<void> {
  const text = answerText(await runtimeCommand(address, command, timeoutMs));
  if (text !== '') throw fail(address, `${command}: ${text.split('\n').join(' ')}`);
}

/** HAProxy's version (`show info`'s Version line), for status and error messages. */
export async function haproxyVersion(address: string, timeoutMs: number): Promise<string> {
  const text = await runtimeCommand(address, 'show info', timeoutMs);
  const version = /^Version:\s*(\S+)/m.exec(text)?.[1];
  if (!version) throw fail(address, `show info: no Version line in ${JSON.stringify(answerText(text).slice(0, 120))}`);
  return version;
}

export const haproxyRouter: RouterPort = {
  async read(router: RouterSpec, backends: readonly string[], timeoutMs: number): Promise<RouterServer[]> {
    // One connection per backend, side by side: the whole read takes one timeout at most.
    const each = await Promise.all([...new Set(backends)].map((b) => readBackend(router.address, b, timeoutMs)));
    return each.flat();
  },

  async apply(router: RouterSpec, change: RouterChange, timeoutMs: number): Promise<void> {
    checkName(router.address, 'backend', change.backend);
    checkName(router.address, 'server', change.server);
    const server = `${change.backend}/${change.server}`;
    await expectEmpty(router.address, `set server ${server} state ${change.to}`, timeoutMs);
    if (change.shutdownSessions) await expectEmpty(router.address, `shutdown sessions server ${server}`, timeoutMs);
  },
};
