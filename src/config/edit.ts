// Edits a topology file in place with minimal text changes at the positions the YAML parser
// reports, so that comments, key order, alignment and blank lines survive untouched. (Stringifying
// a parsed Document keeps comments but re-flows the layout; an operator's diff should show only
// the lines that changed.)
import { isMap, isScalar, parseDocument, type Pair, type YAMLMap } from 'yaml';
import { TopogitError } from '../core/errors.js';

interface Edit {
  readonly start: number;
  readonly end: number;
  readonly text: string;
}

/** Sets (a name) or removes (null) the `source` of each named instance. */
export function editSources(text: string, changes: ReadonlyMap<string, string | null>): string {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) throw new TopogitError('TOPOGIT_CONFIG_INVALID', `cannot edit a file that does not parse: ${doc.errors[0]?.message ?? ''}`);
  const edits: Edit[] = [];
  for (const [name, source] of changes) {
    const node = doc.getIn(['instances', name], true);
    if (!isMap(node)) throw new TopogitError('TOPOGIT_CONFIG_INVALID', `instances.${name} is not a mapping in the file; cannot edit it`);
    const e = editOne(text, node as YAMLMap, source);
    if (e) edits.push(e);
  }
  // From the end backwards, so earlier offsets stay valid.
  let out = text;
  for (const e of [...edits].sort((a, b) => b.start - a.start)) out = out.slice(0, e.start) + e.text + out.slice(e.end);
  return out;
}

function keyOf(p: Pair): string {
  return isScalar(p.key) ? String(p.key.value) : String(p.key);
}

function range(n: unknown): [number, number, number] {
  const r = (n as { range?: [number, number, number] } | null)?.range;
  if (!r) throw new TopogitError('TOPOGIT_CONFIG_INVALID', 'the file has a node without a source position; cannot edit it in place');
  return r;
}

function editOne(text: string, map: YAMLMap, source: string | null): Edit | undefined {
  const pairs = map.items as Pair[];
  const idx = pairs.findIndex((p) => keyOf(p) === 'source');
  const existing = idx >= 0 ? pairs[idx] : undefined;
  if (existing && source !== null) {
    const [s, e] = range(existing.value);
    return text.slice(s, e) === source ? undefined : { start: s, end: e, text: source };
  }
  if (!existing && source === null) return undefined;
  if (map.flow) {
    if (existing) {
      // `{ host: a, source: b, port: 1 }`: drop ", source: b" (or "source: b, " when it comes first).
      const prev = pairs[idx - 1];
      const next = pairs[idx + 1];
      if (prev) return { start: range(prev.value ?? prev.key)[1], end: range(existing.value)[1], text: '' };
      if (next) return { start: range(existing.key)[0], end: range(next.key)[0], text: '' };
      return { start: range(existing.key)[0], end: range(existing.value)[1], text: '' };
    }
    const last = pairs[pairs.length - 1];
    if (!last) {
      const [s, e] = range(map);
      return { start: s, end: e, text: `{ source: ${source} }` };
    }
    return { start: range(last.value ?? last.key)[1], end: range(last.value ?? last.key)[1], text: `, source: ${source}` };
  }
  // Block style: one key per line.
  if (existing) {
    const lineStart = text.lastIndexOf('\n', range(existing.key)[0] - 1) + 1;
    const nl = text.indexOf('\n', range(existing.value)[1]);
    return { start: lineStart, end: nl === -1 ? text.length : nl + 1, text: '' };
  }
  const first = pairs[0];
  const last = pairs[pairs.length - 1];
  if (!first || !last) throw new TopogitError('TOPOGIT_CONFIG_INVALID', 'an empty block mapping cannot be edited in place');
  const keyStart = range(first.key)[0];
  const indent = keyStart - (text.lastIndexOf('\n', keyStart - 1) + 1);
  const nl = text.indexOf('\n', range(last.value ?? last.key)[1]);
  const at = nl === -1 ? text.length : nl + 1;
  const prefix = nl === -1 ? '\n' : '';
  return { start: at, end: at, text: `${prefix}${' '.repeat(indent)}source: ${source}\n` };
}

// The promotion's edit is pure data about the tree; it lives in the core, where the daemon's
// view of a file that has not caught up (core/write-back.ts effectiveSpec) needs it too.
export { promotionEdits } from '../core/write-back.js';
