// The daemon's reload decision (src/daemon/reload.ts), table-driven: from what it knew of each file,
// what the load found, the texts, our own write-backs and HEAD's texts, to the actions daemon.ts
// applies and the per-file state it keeps.
import { describe, expect, it } from 'vitest';
import type { ClusterSpec } from '../../src/core/model.js';
import { DEFAULT_FAILOVER, DEFAULT_WRITE_BACK } from '../../src/config/defaults.js';
import { committedTextWanted, issuesByFile, loadedFiles, planReload, type FileState, type ReloadAction, type ReloadFacts } from '../../src/daemon/reload.js';

function spec(cluster: string, file: string): ClusterSpec {
  return {
    cluster,
    flavor: 'auto',
    credentials: { admin: { user: 'topogit', passwordEnv: 'P' }, replication: { user: 'repl', passwordEnv: 'R' } },
    instances: [{ name: 'db001', host: '127.0.0.11', port: 3306, promotion: 'prefer' }],
    failover: DEFAULT_FAILOVER,
    writeBack: DEFAULT_WRITE_BACK,
    file,
  };
}

const A = 'topologies/a.yaml';
const B = 'topologies/b.yaml';
const shopA = spec('shop', A);
const shopB = spec('shop', B);
const storeA = spec('store', A);
const blogB = spec('blog', B);

interface Row {
  readonly name: string;
  readonly prev?: Record<string, FileState>;
  readonly running?: string[];
  readonly specs?: ClusterSpec[];
  readonly issues?: Record<string, string[]>;
  readonly texts?: Record<string, string | undefined>;
  readonly selfWritten?: Record<string, string>;
  /** HEAD's texts; a file missing here is not in HEAD. */
  readonly head?: Record<string, string>;
  readonly actions: ReloadAction[];
  readonly files: Record<string, FileState>;
  /** The files whose HEAD text the decision needs. */
  readonly asks?: string[];
  /** Files whose own write-back record is used up. */
  readonly consumed?: string[];
}

function facts(r: Row): ReloadFacts {
  return {
    files: new Map(Object.entries(r.prev ?? {})),
    running: new Set(r.running ?? []),
    specs: r.specs ?? [],
    issues: new Map(Object.entries(r.issues ?? {})),
    texts: new Map(Object.entries(r.texts ?? {})),
    selfWritten: new Map(Object.entries(r.selfWritten ?? {})),
  };
}

const ROWS: Row[] = [
  {
    name: 'a new valid file starts a loop',
    specs: [shopA],
    texts: { [A]: 'v1' },
    actions: [{ kind: 'start', file: A, spec: shopA }],
    files: { [A]: { spec: shopA, text: 'v1', issues: [] } },
  },
  {
    name: 'an unchanged file: the loop goes on, no update',
    prev: { [A]: { spec: shopA, text: 'v1', issues: [] } },
    running: ['shop'],
    specs: [shopA],
    texts: { [A]: 'v1' },
    actions: [{ kind: 'valid', file: A, spec: shopA }],
    files: { [A]: { spec: shopA, text: 'v1', issues: [] } },
  },
  {
    name: "a human's committed change: update, byHuman, committed",
    prev: { [A]: { spec: shopA, text: 'v1', issues: [] } },
    running: ['shop'],
    specs: [shopA],
    texts: { [A]: 'v2' },
    head: { [A]: 'v2' },
    actions: [{ kind: 'update', file: A, spec: shopA, byHuman: true, committed: true }],
    files: { [A]: { spec: shopA, text: 'v2', issues: [] } },
    asks: [A],
  },
  {
    name: "a human's change HEAD does not have (edited in the daemon's clone): update, not committed",
    prev: { [A]: { spec: shopA, text: 'v1', issues: [] } },
    running: ['shop'],
    specs: [shopA],
    texts: { [A]: 'v2' },
    head: { [A]: 'v1' },
    actions: [{ kind: 'update', file: A, spec: shopA, byHuman: true, committed: false }],
    files: { [A]: { spec: shopA, text: 'v2', issues: [] } },
    asks: [A],
  },
  {
    name: 'our own write-back: update, not by a human, never committed, and HEAD is not asked',
    prev: { [A]: { spec: shopA, text: 'v1', issues: [] } },
    running: ['shop'],
    specs: [shopA],
    texts: { [A]: 'v2' },
    selfWritten: { [A]: 'v2' },
    head: { [A]: 'v2' },
    actions: [{ kind: 'update', file: A, spec: shopA, byHuman: false, committed: false }],
    files: { [A]: { spec: shopA, text: 'v2', issues: [] } },
    asks: [],
    consumed: [A],
  },
  {
    name: 'a human edit after our write-back is a human edit again',
    prev: { [A]: { spec: shopA, text: 'v2', issues: [] } },
    running: ['shop'],
    specs: [shopA],
    texts: { [A]: 'v3' },
    selfWritten: { [A]: 'v2' },
    head: { [A]: 'v3' },
    actions: [{ kind: 'update', file: A, spec: shopA, byHuman: true, committed: true }],
    files: { [A]: { spec: shopA, text: 'v3', issues: [] } },
    asks: [A],
  },
  {
    name: 'an invalid version keeps the last valid spec and text, and marks the cluster',
    prev: { [A]: { spec: shopA, text: 'v1', issues: [] } },
    running: ['shop'],
    specs: [],
    issues: { [A]: ['a.yaml:3:1: bad'] },
    texts: { [A]: 'broken' },
    actions: [{ kind: 'invalid', file: A, issues: ['a.yaml:3:1: bad'], cluster: 'shop' }],
    files: { [A]: { spec: shopA, text: 'v1', issues: ['a.yaml:3:1: bad'] } },
  },
  {
    name: 'a file with a spec but with issues (e.g. a missing secret) is invalid',
    prev: { [A]: { spec: shopA, text: 'v1', issues: [] } },
    running: ['shop'],
    specs: [shopA],
    issues: { [A]: ['a.yaml:1:1: P is not set'] },
    texts: { [A]: 'v2' },
    actions: [{ kind: 'invalid', file: A, issues: ['a.yaml:1:1: P is not set'], cluster: 'shop' }],
    files: { [A]: { spec: shopA, text: 'v1', issues: ['a.yaml:1:1: P is not set'] } },
  },
  {
    name: 'a file that never validated: invalid, no cluster',
    specs: [],
    issues: { [A]: ['a.yaml:1:1: invalid YAML'] },
    texts: { [A]: '{' },
    actions: [{ kind: 'invalid', file: A, issues: ['a.yaml:1:1: invalid YAML'] }],
    files: { [A]: { issues: ['a.yaml:1:1: invalid YAML'] } },
  },
  {
    name: 'fixed back to the text it had before it broke: valid again, no pass',
    prev: { [A]: { spec: shopA, text: 'v1', issues: ['a.yaml:3:1: bad'] } },
    running: ['shop'],
    specs: [shopA],
    texts: { [A]: 'v1' },
    actions: [{ kind: 'valid', file: A, spec: shopA }],
    files: { [A]: { spec: shopA, text: 'v1', issues: [] } },
  },
  {
    name: 'a file that renamed its cluster stops the old loop before the new one starts',
    prev: { [A]: { spec: shopA, text: 'v1', issues: [] } },
    running: ['shop'],
    specs: [storeA],
    texts: { [A]: 'v2' },
    actions: [
      { kind: 'stop', file: A, cluster: 'shop', why: 'renamed', to: 'store' },
      { kind: 'start', file: A, spec: storeA },
    ],
    files: { [A]: { spec: storeA, text: 'v2', issues: [] } },
  },
  {
    name: 'a removed file stops its loop; a removed never-valid file is just forgotten',
    prev: { [A]: { spec: shopA, text: 'v1', issues: [] }, [B]: { issues: ['b.yaml:1:1: x'] } },
    running: ['shop'],
    actions: [{ kind: 'stop', file: A, cluster: 'shop', why: 'removed' }],
    files: {},
  },
  {
    name: 'files with a spec come first, then files with issues only, then removals',
    prev: { 'topologies/c.yaml': { spec: spec('old', 'topologies/c.yaml'), text: 'c', issues: [] } },
    running: ['old'],
    specs: [blogB],
    issues: { [A]: ['a.yaml:1:1: x'] },
    texts: { [A]: 'x', [B]: 'b' },
    actions: [
      { kind: 'start', file: B, spec: blogB },
      { kind: 'invalid', file: A, issues: ['a.yaml:1:1: x'] },
      { kind: 'stop', file: 'topologies/c.yaml', cluster: 'old', why: 'removed' },
    ],
    files: { [B]: { spec: blogB, text: 'b', issues: [] }, [A]: { issues: ['a.yaml:1:1: x'] } },
  },
  {
    name: 'an unreadable file with a valid spec keeps no text',
    specs: [shopA],
    texts: { [A]: undefined },
    actions: [{ kind: 'start', file: A, spec: shopA }],
    files: { [A]: { spec: shopA, issues: [] } },
  },
  {
    // A `git mv` of a cluster's file in one reload: the running loop goes on from the new file.
    name: 'a file moved in one step (same cluster): the loop is updated from the new file and keeps running',
    prev: { [A]: { spec: shopA, text: 'v1', issues: [] } },
    running: ['shop'],
    specs: [shopB],
    texts: { [B]: 'v1' },
    head: { [B]: 'v1' },
    actions: [
      { kind: 'update', file: B, spec: shopB, byHuman: true, committed: true },
    ],
    files: { [B]: { spec: shopB, text: 'v1', issues: [] } },
    asks: [B],
  },
  {
    name: 'a valid file whose cluster has no loop starts one, whatever its text did',
    prev: { [B]: { spec: shopB, text: 'v1', issues: [] } },
    running: [],
    specs: [shopB],
    texts: { [B]: 'v1' },
    actions: [{ kind: 'start', file: B, spec: shopB }],
    files: { [B]: { spec: shopB, text: 'v1', issues: [] } },
  },
];

describe('planReload', () => {
  it('a human who commits the text of our last write-back later (a switchover back) is a human: the record is used up', () => {
    const first = planReload({ ...facts({ name: 'ours', prev: { [A]: { spec: shopA, text: 'v1', issues: [] } }, running: ['shop'], specs: [shopA], texts: { [A]: 'v2' }, selfWritten: { [A]: 'v2' }, actions: [], files: {} }), committed: () => 'v2' });
    expect(first.consumed).toEqual([A]);
    const selfWritten = new Map([[A, 'v2']]);
    for (const f of first.consumed) selfWritten.delete(f);
    // A human moves the primary away (v3), then back: the text is v2 again, and it is theirs.
    const back = planReload({ files: new Map([[A, { spec: shopA, text: 'v3', issues: [] }]]), running: new Set(['shop']), specs: [shopA], issues: new Map(), texts: new Map([[A, 'v2']]), selfWritten, committed: () => 'v2' });
    expect(back.actions).toEqual([{ kind: 'update', file: A, spec: shopA, byHuman: true, committed: true }]);
  });

  it.each(ROWS.map((r) => [r.name, r] as const))('%s', (_name, r) => {
    const f = facts(r);
    const asked: string[] = [];
    const plan = planReload({
      ...f,
      committed: (file) => {
        asked.push(file);
        return r.head?.[file];
      },
    });
    expect(plan.actions).toEqual(r.actions);
    expect(Object.fromEntries(plan.files)).toEqual(r.files);
    expect(asked).toEqual(r.asks ?? []);
    expect(plan.consumed).toEqual(r.consumed ?? []);
    expect(committedTextWanted(f)).toEqual(r.asks ?? []);
  });

  it('does not modify its inputs', () => {
    const r = ROWS.find((x) => x.name.startsWith('a file that renamed'))!;
    const f = facts(r);
    const before = { files: new Map(f.files), running: new Set(f.running) };
    planReload({ ...f, committed: () => undefined });
    expect(f.files).toEqual(before.files);
    expect(f.running).toEqual(before.running);
  });
});

describe('reload helpers', () => {
  it('issuesByFile groups issue lines by file in order; loadedFiles lists spec files, then issue-only files, once each', () => {
    const issues = issuesByFile([
      { file: A, line: 'a1' },
      { file: B, line: 'b1' },
      { file: A, line: 'a2' },
    ]);
    expect([...issues]).toEqual([
      [A, ['a1', 'a2']],
      [B, ['b1']],
    ]);
    expect(loadedFiles({ specs: [shopB, storeA], issues })).toEqual([B, A]);
  });
});
