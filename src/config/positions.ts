// Maps a path inside the parsed data (['instances', 'db002', 'port']) back to where it is written
// in the YAML source, so every issue can say file:line:col.

import * as nodePath from 'node:path';
import { isAlias, isMap, isScalar, isSeq } from 'yaml';
import type { Document, LineCounter, Node, Pair } from 'yaml';

export interface Position {
  readonly line: number;
  readonly col: number;
}

/** One step of a data path: a mapping key, or (a number) an index into a list. */
export type PathSegment = string | number;

export const FILE_START: Position = Object.freeze({ line: 1, col: 1 });

export interface Locator {
  /** Where the value at `path` is written; falls back to the closest ancestor that exists. */
  value(path: readonly PathSegment[]): Position;
  /** Where the key of the last segment of `path` is written (the value's position for list items). */
  key(path: readonly PathSegment[]): Position;
  /** The YAML node at `path`, if there is one. */
  node(path: readonly PathSegment[]): Node | undefined;
}

/** The string a mapping key turns into in the parsed data (`1:` and `"1":` both give "1"). */
export function keyString(key: unknown): string {
  if (isScalar(key)) return String(key.value);
  if (key === null || key === undefined) return '';
  return String(key);
}

export function makeLocator(doc: Document, lineCounter: LineCounter): Locator {
  const deref = (n: unknown): unknown => (isAlias(n) ? n.resolve(doc) : n);

  const posOf = (n: unknown): Position | undefined => {
    const range = (n as { range?: [number, number, number] | null } | null)?.range;
    if (!range) return undefined;
    const { line, col } = lineCounter.linePos(range[0]);
    return { line, col };
  };

  interface Step {
    node: unknown;
    pair?: Pair;
  }

  /** Walks as far down `path` as the document goes; one Step per segment resolved. */
  const walk = (path: readonly PathSegment[]): Step[] => {
    const steps: Step[] = [{ node: doc.contents }];
    let current: unknown = deref(doc.contents);
    for (const step of path) {
      const segment = String(step);
      let next: Step | undefined;
      if (isMap(current)) {
        const pair = current.items.find((p) => keyString(deref(p.key)) === segment);
        if (pair) next = { node: pair.value, pair };
      } else if (isSeq(current) && /^\d+$/.test(segment)) {
        const item = current.items[Number(segment)];
        if (item !== undefined) next = { node: item };
      }
      if (!next) break;
      steps.push(next);
      current = deref(next.node);
    }
    return steps;
  };

  const complete = (path: readonly PathSegment[], steps: Step[]): boolean => steps.length === path.length + 1;

  const lastPosition = (steps: Step[]): Position => {
    for (let i = steps.length - 1; i >= 0; i--) {
      const step = steps[i];
      if (!step) continue;
      const p = posOf(step.node) ?? posOf(step.pair?.key);
      if (p) return p;
    }
    return FILE_START;
  };

  return {
    value(path) {
      return lastPosition(walk(path));
    },
    key(path) {
      const steps = walk(path);
      const last = steps[steps.length - 1];
      if (complete(path, steps) && last?.pair) {
        const p = posOf(last.pair.key);
        if (p) return p;
      }
      return lastPosition(steps);
    },
    node(path) {
      const steps = walk(path);
      if (!complete(path, steps)) return undefined;
      const n = deref(steps[steps.length - 1]?.node);
      return n === null || n === undefined ? undefined : (n as Node);
    },
  };
}

const PLAIN_SEGMENT = /^[A-Za-z0-9_.-]+$/;

/**
 * `['instances', 'db002', 'port']` -> `instances.db002.port`; odd keys are quoted:
 * `instances["db 1"]`; list indexes are bracketed: `failover.hooks.preFailover[0]`.
 */
export function dottedPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (PLAIN_SEGMENT.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

/** A file path as issues show it: relative to `cwd` with '/' when under it, else absolute. */
export function displayPath(abs: string, cwd: string): string {
  const rel = nodePath.relative(cwd, abs);
  if (rel === '') return '.';
  if (rel === '..' || rel.startsWith(`..${nodePath.sep}`) || nodePath.isAbsolute(rel)) return abs;
  return rel.split(nodePath.sep).join('/');
}
