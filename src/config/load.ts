// Topology files: YAML text -> validated, frozen ClusterSpec, with every problem reported as
// file:line:col. Parsing is pure (parseTopologyText); loadTopologies does the file system and
// environment checks; resolveCredentials reads secrets only when they are needed.

import { readdir, readFile, stat } from 'node:fs/promises';
import * as nodePath from 'node:path';
import { LineCounter, isMap, isScalar, isSeq, parseDocument, visit } from 'yaml';
import type { Document, YAMLError } from 'yaml';
import type { ClusterSpec, FailoverSpec, FlavorSetting, InstanceSpec, Promotion, SecretRef, WriteBackSpec } from '../core/model.js';
import { TopogitError } from '../core/errors.js';
import { DEFAULT_CREDENTIALS, secretSourceProblems } from './credentials.js';
import { DEFAULT_FAILOVER, DEFAULT_WRITE_BACK } from './defaults.js';
import { FILE_START, displayPath, dottedPath, keyString, makeLocator } from './positions.js';
import type { Locator, PathSegment, Position } from './positions.js';
import { checkAcrossFiles, checkClusterRules, checkRoutingRules } from './rules.js';
import { checkSchema, quote } from './schema.js';
import type { Problem } from './schema.js';

export { DEFAULT_CREDENTIALS, resolveCredentials, usesDefaultCredentials } from './credentials.js';
export type { ResolvedAccount, ResolvedCredentials } from './credentials.js';
export { DEFAULT_FAILOVER, DEFAULT_WRITE_BACK } from './defaults.js';

export interface ConfigIssue {
  /** As given, or relative to cwd when under it: `topologies/shop.yaml`. */
  readonly file: string;
  readonly line: number;
  readonly col: number;
  /** Dotted data path (`instances.db003.source`); empty for whole-file problems. */
  readonly path: string;
  readonly message: string;
}

/** `topologies/shop.yaml:12:5: instances.db003.source: "db009" is not an instance of cluster shop` */
export function formatIssue(i: ConfigIssue): string {
  return `${i.file}:${i.line}:${i.col}: ${i.path === '' ? '' : `${i.path}: `}${i.message}`;
}

interface Parsed {
  spec?: ClusterSpec;
  issues: ConfigIssue[];
  locator?: Locator;
}

function issue(file: string, pos: Position, path: readonly PathSegment[], message: string): ConfigIssue {
  return { file, line: pos.line, col: pos.col, path: dottedPath(path), message };
}

function locate(file: string, locator: Locator | undefined, p: Problem): ConfigIssue {
  const pos = p.at === 'file' || !locator ? FILE_START : p.at === 'key' ? locator.key(p.path) : locator.value(p.path);
  return issue(file, pos, p.path, p.message);
}

function byPosition(a: ConfigIssue, b: ConfigIssue): number {
  return a.line - b.line || a.col - b.col;
}

/** What the schema guarantees about the data once it passed. */
interface RawSecret {
  user: string;
  passwordEnv?: string;
  passwordFile?: string;
}
interface RawInstance {
  host: string;
  port?: number;
  source?: string;
  promotion?: Promotion;
}
interface RawTopology {
  cluster: string;
  flavor?: FlavorSetting;
  credentials?: { admin: RawSecret; replication: RawSecret };
  instances: Record<string, RawInstance>;
  failover?: RawFailover;
  writeBack?: RawWriteBack;
  routing?: { haproxy: string; writer: string; reader?: string }[];
}
interface RawFailover {
  auto?: boolean;
  maxLagSeconds?: number;
  blockSeconds?: number;
  detection?: { intervalMs?: number };
  formerPrimary?: FailoverSpec['formerPrimary'];
  reconcile?: FailoverSpec['reconcile'];
  hooks?: { preFailover?: string[]; postFailover?: string[] };
  quorum?: FailoverSpec['quorum'];
  fence?: { command?: string[]; timeoutSeconds?: number };
}
interface RawWriteBack {
  author?: { name: string; email: string };
  push?: boolean;
}

/** The failover block with defaults filled in; DEFAULT_FAILOVER itself when the file has none. */
function failoverSpec(f: RawFailover | undefined): FailoverSpec {
  if (f === undefined) return DEFAULT_FAILOVER;
  const d = DEFAULT_FAILOVER;
  const hooks = (list: string[] | undefined, fallback: readonly string[]): readonly string[] =>
    list === undefined ? fallback : Object.freeze([...list]);
  return Object.freeze({
    auto: f.auto ?? d.auto,
    maxLagSeconds: f.maxLagSeconds ?? d.maxLagSeconds,
    blockSeconds: f.blockSeconds ?? d.blockSeconds,
    detection: f.detection === undefined ? d.detection : Object.freeze({ intervalMs: f.detection.intervalMs ?? d.detection.intervalMs }),
    formerPrimary: f.formerPrimary ?? d.formerPrimary,
    reconcile: f.reconcile ?? d.reconcile,
    hooks:
      f.hooks === undefined
        ? d.hooks
        : Object.freeze({
            preFailover: hooks(f.hooks.preFailover, d.hooks.preFailover),
            postFailover: hooks(f.hooks.postFailover, d.hooks.postFailover),
          }),
    quorum: f.quorum ?? d.quorum,
    fence:
      f.fence === undefined
        ? d.fence
        : Object.freeze({ command: hooks(f.fence.command, d.fence.command), timeoutSeconds: f.fence.timeoutSeconds ?? d.fence.timeoutSeconds }),
  });
}

/** The writeBack block with defaults filled in; DEFAULT_WRITE_BACK itself when the file has none. */
function writeBackSpec(w: RawWriteBack | undefined): WriteBackSpec {
  if (w === undefined) return DEFAULT_WRITE_BACK;
  return Object.freeze({
    author: w.author === undefined ? DEFAULT_WRITE_BACK.author : Object.freeze({ name: w.author.name, email: w.author.email }),
    push: w.push ?? DEFAULT_WRITE_BACK.push,
  });
}

function describe(node: unknown): string {
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) return node.value === null ? 'null' : `a ${typeof node.value === 'string' ? 'string' : typeof node.value}`;
  return 'something else';
}

/** One line for a YAML syntax error or warning. */
function yamlMessage(doc: Document, e: YAMLError): string {
  if (e.code === 'DUPLICATE_KEY') {
    let key: string | undefined;
    visit(doc, {
      Pair(_, pair) {
        if (isScalar(pair.key) && pair.key.range?.[0] === e.pos[0]) key = keyString(pair.key);
      },
    });
    return key === undefined ? 'invalid YAML: duplicate key' : `invalid YAML: duplicate key ${quote(key)}`;
  }
  if (e.code === 'MULTIPLE_DOCS') return 'invalid YAML: a second document starts here; a topology file holds exactly one';
  return `invalid YAML: ${e.message}`;
}

function parseInternal(text: string, file: string, baseDir: string): Parsed {
  const lineCounter = new LineCounter();
  let doc: Document;
  try {
    doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  } catch (e) {
    return { issues: [issue(file, FILE_START, [], `cannot parse YAML: ${(e as Error).message}`)] };
  }
  const posOf = (offset: number | undefined): Position => {
    if (offset === undefined) return FILE_START;
    const { line, col } = lineCounter.linePos(offset);
    return { line, col };
  };
  if (doc.errors.length > 0) {
    // After the first syntax error the parser's further complaints are mostly echoes of it: report
    // that one (the user fixes it and reruns), but every duplicate key, which are independent.
    const errors = [...doc.errors].sort((a, b) => a.pos[0] - b.pos[0]);
    const syntax = errors.find((e) => e.code !== 'DUPLICATE_KEY');
    const kept = errors.filter((e) => e.code === 'DUPLICATE_KEY' || e === syntax);
    return { issues: kept.map((e) => issue(file, posOf(e.pos[0]), [], yamlMessage(doc, e))).sort(byPosition) };
  }
  const yamlIssues = doc.warnings.map((e) => issue(file, posOf(e.pos[0]), [], yamlMessage(doc, e)));

  if (doc.contents === null) return { issues: [issue(file, FILE_START, [], 'file is empty')] };
  visit(doc, {
    Alias(_, alias) {
      if (alias.resolve(doc) === undefined) {
        yamlIssues.push(issue(file, posOf(alias.range?.[0]), [], `unknown alias *${alias.source}`));
      }
    },
  });
  if (yamlIssues.length > 0) return { issues: yamlIssues.sort(byPosition) };
  if (!isMap(doc.contents)) {
    return {
      issues: [issue(file, FILE_START, [], `the top level must be a mapping (cluster:, instances:, ...), found ${describe(doc.contents)}`)],
    };
  }

  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    return { issues: [issue(file, FILE_START, [], `cannot read YAML: ${(e as Error).message}`)] };
  }

  const locator = makeLocator(doc, lineCounter);
  const located = (problems: readonly Problem[]): ConfigIssue[] =>
    problems.map((p) => locate(file, locator, p)).sort(byPosition);

  const schemaProblems = checkSchema(data);
  if (schemaProblems.length > 0) return { issues: located(schemaProblems), locator };
  const raw = data as RawTopology;

  // File order comes from the YAML mapping, not the JS object (which puts "1", "2" keys first).
  const names: string[] = [];
  const seen = new Set<string>();
  const orderProblems: Problem[] = [];
  const instancesNode = locator.node(['instances']);
  for (const pair of isMap(instancesNode) ? instancesNode.items : []) {
    const name = keyString(pair.key);
    if (seen.has(name)) {
      orderProblems.push({ path: ['instances', name], at: 'key', message: `duplicate instance name "${name}"` });
    } else {
      names.push(name);
      seen.add(name);
    }
  }
  for (const name of Object.keys(raw.instances)) if (!seen.has(name)) names.push(name);
  if (orderProblems.length > 0) return { issues: located(orderProblems), locator };

  const instances: InstanceSpec[] = names.map((name) => {
    const i = raw.instances[name] as RawInstance;
    return Object.freeze({
      name,
      host: i.host,
      port: i.port ?? 3306,
      ...(i.source === undefined ? {} : { source: i.source }),
      promotion: i.promotion ?? 'neutral',
    });
  });
  const ruleProblems = [...checkClusterRules(raw.cluster, instances), ...checkRoutingRules(raw.routing ?? [])];
  if (ruleProblems.length > 0) return { issues: located(ruleProblems), locator };

  const secret = (s: RawSecret): SecretRef =>
    Object.freeze({
      user: s.user,
      ...(s.passwordEnv === undefined ? {} : { passwordEnv: s.passwordEnv }),
      ...(s.passwordFile === undefined
        ? {}
        : { passwordFile: nodePath.isAbsolute(s.passwordFile) ? s.passwordFile : nodePath.join(baseDir, s.passwordFile) }),
    });
  const spec: ClusterSpec = Object.freeze({
    cluster: raw.cluster,
    flavor: raw.flavor ?? 'auto',
    credentials: raw.credentials
      ? Object.freeze({ admin: secret(raw.credentials.admin), replication: secret(raw.credentials.replication) })
      : DEFAULT_CREDENTIALS,
    instances: Object.freeze(instances),
    failover: failoverSpec(raw.failover),
    writeBack: writeBackSpec(raw.writeBack),
    ...(raw.routing && raw.routing.length > 0
      ? { routing: Object.freeze(raw.routing.map((r) => Object.freeze({ kind: 'haproxy' as const, address: r.haproxy, writer: r.writer, ...(r.reader === undefined ? {} : { reader: r.reader }) }))) }
      : {}),
    file,
  });
  return { spec, issues: [], locator };
}

/**
 * Parses and validates one topology file's text. Pure and never throws: every problem (YAML
 * syntax, schema, tree rules) comes back as an issue, and `spec` is set only when there are none.
 * A relative passwordFile is joined to `opts.baseDir` (default: the directory of `file`).
 */
export function parseTopologyText(
  text: string,
  file: string,
  opts: { baseDir?: string } = {},
): { spec?: ClusterSpec; issues: ConfigIssue[] } {
  const { spec, issues } = parseInternal(text, file, opts.baseDir ?? nodePath.dirname(file));
  return spec ? { spec, issues } : { issues };
}

const TOPOLOGY_FILE = /\.ya?ml$/i;

/** The topology files `paths` name, absolute, in order, each once. Throws when a path yields none. */
async function expandPaths(paths: readonly string[], cwd: string): Promise<string[]> {
  if (paths.length === 0) {
    throw new TopogitError('TOPOGIT_CONFIG_NOT_FOUND', 'no topology files given', 'pass a topology file or a directory of them');
  }
  const files: string[] = [];
  for (const p of paths) {
    const abs = nodePath.resolve(cwd, p);
    const shown = displayPath(abs, cwd);
    let st;
    try {
      st = await stat(abs);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' || code === 'ENOTDIR' ? 'no such file or directory' : `cannot access (${code ?? 'error'})`;
      throw new TopogitError('TOPOGIT_CONFIG_NOT_FOUND', `${shown}: ${why}`, 'pass a topology file or a directory of *.yaml files');
    }
    if (st.isDirectory()) {
      const found: string[] = [];
      // Non-recursive; dot files are skipped (editor lock and backup files).
      for (const name of (await readdir(abs)).sort()) {
        if (name.startsWith('.') || !TOPOLOGY_FILE.test(name)) continue;
        const file = nodePath.join(abs, name);
        if ((await stat(file).catch(() => undefined))?.isFile()) found.push(file);
      }
      if (found.length === 0) {
        throw new TopogitError(
          'TOPOGIT_CONFIG_NOT_FOUND',
          `${shown}/: no topology files (*.yaml, *.yml)`,
          'add a topology file such as topologies/<cluster>.yaml',
        );
      }
      files.push(...found);
    } else if (st.isFile()) {
      files.push(abs);
    } else {
      throw new TopogitError('TOPOGIT_CONFIG_NOT_FOUND', `${shown}: not a file or directory`, 'pass a topology file or a directory of *.yaml files');
    }
  }
  return [...new Set(files)];
}

/**
 * Loads topology files: each path is a file or a directory (its *.yaml / *.yml files,
 * non-recursive, sorted). Throws TOPOGIT_CONFIG_NOT_FOUND when a path does not exist or a
 * directory holds no topology file; everything else is an issue. `specs` holds every file that
 * passed its own checks (minus later duplicates of a cluster name); callers must not act on
 * anything while `issues` is non-empty. Relative passwordFile paths come back absolute.
 * `checkCredentials: false` skips the environment / password file checks.
 */
export async function loadTopologies(
  paths: string[],
  opts: { env: NodeJS.ProcessEnv; cwd: string; checkCredentials?: boolean },
): Promise<{ specs: ClusterSpec[]; issues: ConfigIssue[] }> {
  const files = await expandPaths(paths, opts.cwd);
  const fileIssues: ConfigIssue[][] = [];
  const parsed: { spec: ClusterSpec; locator: Locator | undefined; fileIndex: number }[] = [];

  for (const [fileIndex, abs] of files.entries()) {
    const shown = displayPath(abs, opts.cwd);
    let text: string;
    try {
      text = await readFile(abs, 'utf8');
    } catch (e) {
      fileIssues.push([issue(shown, FILE_START, [], `cannot read file (${(e as NodeJS.ErrnoException).code ?? 'error'})`)]);
      continue;
    }
    const result = parseInternal(text, shown, nodePath.dirname(abs));
    fileIssues.push([...result.issues]);
    if (result.spec) parsed.push({ spec: result.spec, locator: result.locator, fileIndex });
  }

  const across = checkAcrossFiles(parsed.map((p) => p.spec));
  for (const problem of across.problems) {
    const entry = parsed[problem.index];
    if (entry) fileIssues[entry.fileIndex]?.push(locate(entry.spec.file, entry.locator, problem));
  }
  if (opts.checkCredentials !== false) {
    for (const entry of parsed) {
      const problems = await secretSourceProblems(entry.spec, opts.env, opts.cwd);
      fileIssues[entry.fileIndex]?.push(...problems.map((p) => locate(entry.spec.file, entry.locator, p)));
    }
  }

  return {
    specs: parsed.filter((_, n) => !across.shadowed.has(n)).map((p) => p.spec),
    issues: fileIssues.flatMap((list) => list.sort(byPosition)),
  };
}
