// Fixture rows captured from real servers (test/fixtures/rows/*.json), and a small builder that
// varies a copy of them for table tests: load, vary, then turn into a probe result.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Row } from '../../src/core/ports.js';
import { parseInstanceState } from '../../src/adapters/mysql/rows.js';
import type { ClusterSpec, ProbeResult } from '../../src/core/model.js';

export interface RowsFixture {
  readonly captured: string | null;
  readonly source: string;
  readonly variables: readonly Row[];
  readonly replicaStatus: readonly Row[];
  readonly replicas: readonly Row[];
}

const FIXTURE_DIR = fileURLToPath(new URL('../fixtures/rows/', import.meta.url));

export class FixtureRows {
  constructor(protected readonly f: RowsFixture) {}

  static of<T extends FixtureRows>(this: new (f: RowsFixture) => T, name: string): T {
    return new this(JSON.parse(readFileSync(`${FIXTURE_DIR}${name}.json`, 'utf8')) as RowsFixture);
  }

  /** A varied copy, of the same (sub)class. */
  protected with(f: RowsFixture): this {
    return new (this.constructor as new (f: RowsFixture) => this)(f);
  }

  /** Sets (or adds) SHOW GLOBAL VARIABLES values; null removes the variable. */
  vars(values: Record<string, string | null>): this {
    const variables = this.f.variables.filter((r) => !(String(r['Variable_name']) in values)).map((r) => ({ ...r }));
    for (const [name, value] of Object.entries(values)) if (value !== null) variables.push({ Variable_name: name, Value: value });
    return this.with({ ...this.f, variables });
  }

  /** Overwrites columns of the first replication status row. */
  status(cols: Row): this {
    const [first, ...rest] = this.f.replicaStatus;
    if (!first) throw new Error('fixture has no replication status row');
    return this.with({ ...this.f, replicaStatus: [{ ...first, ...cols }, ...rest.map((r) => ({ ...r }))] });
  }

  /** Replaces the status rows entirely ([] = RESET SLAVE ALL). */
  statusRows(rows: readonly Row[]): this {
    return this.with({ ...this.f, replicaStatus: rows });
  }

  /** Appends rows to SHOW REPLICA HOSTS. */
  seen(...rows: Row[]): this {
    return this.with({ ...this.f, replicas: [...this.f.replicas, ...rows] });
  }

  /** Empties SHOW REPLICA HOSTS. */
  unseen(): this {
    return this.with({ ...this.f, replicas: [] });
  }

  /** The same rows as another server of the sandbox would print them. */
  as(serverId: number): this {
    return this.vars({ server_id: String(serverId), report_host: `127.0.0.1${serverId}` });
  }

  /** Replicates from another sandbox member (by address and server id). */
  from(serverId: number): this {
    return this.status({ Master_Host: `127.0.0.1${serverId}`, Master_Port: 3306, Master_Server_Id: serverId });
  }

  get rows(): RowsFixture {
    return this.f;
  }
}

/** A probe result named for `name` of `spec`: answered with the given rows. */
export function probeUp(spec: ClusterSpec, name: string, rows: FixtureRows): [string, ProbeResult] {
  const f = rows.rows;
  return [name, { ok: true, endpoint: endpointOf(spec, name), state: parseInstanceState(f.variables, f.replicaStatus, f.replicas), ms: 4 }];
}

/** A probe result named for `name` of `spec`: refused. */
export function probeDown(spec: ClusterSpec, name: string, error = 'connection refused'): [string, ProbeResult] {
  return [name, { ok: false, endpoint: endpointOf(spec, name), code: 'ECONNREFUSED', error, ms: 1 }];
}

function endpointOf(spec: ClusterSpec, name: string): { host: string; port: number } {
  const i = spec.instances.find((x) => x.name === name);
  if (!i) throw new Error(`no instance ${name} in ${spec.cluster}`);
  return { host: i.host, port: i.port };
}
