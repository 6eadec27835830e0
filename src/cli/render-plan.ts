// Renders a PlanDocument three ways: a Terraform-like text plan for the terminal, a markdown plan for
// a pull-request comment (size-capped), and the versioned JSON (schemas/plan.schema.json).
import type { Notice, Symbol as PlanSymbol } from '../core/plan.js';
import { countChanges, type ClusterPlanView, type PlanDocument, type PlanStepView } from '../core/plan-document.js';

export const PLAN_LEGEND = 'topogit will perform these actions (symbols: ~ change, + start, - remove, ! needs a human):';
export const NO_CHANGES_TEXT = 'No changes. Live topology matches the files.';
export const NOTICES_HEADING = 'Noticed outside the plan (no action):';
/** GitHub refuses comments above 65536 characters; stay well below with the markup around it. */
export const DEFAULT_MARKDOWN_MAX_BYTES = 60_000;

export interface TextOptions {
  /** ANSI colors for the symbols. Off unless asked for (the caller decides from the TTY / NO_COLOR). */
  readonly color?: boolean;
}

export interface MarkdownOptions {
  /** Upper bound for the whole comment, in UTF-8 bytes (default 60 000). */
  readonly maxBytes?: number;
}

// ---------------------------------------------------------------------------------------------
// Shared helpers

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** `Plan: 3 changes in 1 cluster.` or null when there is nothing to do. */
function planLine(doc: PlanDocument): string | null {
  const { changes, clusters } = countChanges(doc.clusters);
  if (changes === 0) return null;
  return `Plan: ${plural(changes, 'change', 'changes')} in ${plural(clusters, 'cluster', 'clusters')}.`;
}

/** Clusters worth showing: something to do or something noticed. */
function shownClusters(doc: PlanDocument): ClusterPlanView[] {
  return doc.clusters.filter((c) => c.steps.length > 0 || c.notices.length > 0);
}

/**
 * One line of text that is safe to print: control characters (newlines, ESC for terminal escape
 * sequences, C1 controls) and bidi overrides from server error text are shown as escapes instead
 * of acting on the terminal or the layout.
 */
function printable(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, (c) => {
    if (c === '\t') return ' ';
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

// ---------------------------------------------------------------------------------------------
// Text

const ANSI: Record<PlanSymbol, string> = { '~': '\u001b[33m', '+': '\u001b[32m', '-': '\u001b[31m', '!': '\u001b[35m' };
const RESET = '\u001b[0m';

/** A step's lines as the text plan shows them; `withSql: false` gives the outline used by the markdown diff. */
function stepLines(s: PlanStepView, depth: number, withSql: boolean, paint: (sym: PlanSymbol) => string): string[] {
  const pad = ' '.repeat(2 + 4 * depth);
  const body = ' '.repeat(6 + 4 * depth);
  const lines = [`${pad}${paint(s.symbol)} ${printable(s.summary)}`];
  if (s.reason !== '') lines.push(`${body}# ${printable(s.reason)}`);
  if (withSql) for (const q of s.sql) lines.push(`${body}${printable(q)}`);
  for (const sub of s.substeps ?? []) lines.push(...stepLines(sub, depth + 1, withSql, paint));
  return lines;
}

function noticeLines(notices: readonly Notice[], paint: (sym: PlanSymbol) => string): string[] {
  if (notices.length === 0) return [];
  return [`  ${NOTICES_HEADING}`, ...notices.map((n) => `  ${paint('!')} ${printable(n.message)}`)];
}

export function renderPlanText(doc: PlanDocument, opts: TextOptions = {}): string {
  const paint = opts.color ? (sym: PlanSymbol) => `${ANSI[sym]}${sym}${RESET}` : (sym: PlanSymbol) => sym;
  const closing = planLine(doc);
  const blocks: string[] = [];
  // The legend only when something will be done: with no steps it would promise actions.
  if (closing !== null) blocks.push(PLAN_LEGEND);
  for (const c of shownClusters(doc)) {
    const lines = [`cluster ${printable(c.cluster)} (${printable(c.file)})`];
    for (const s of c.steps) lines.push(...stepLines(s, 0, true, paint));
    if (c.steps.length > 0 && c.notices.length > 0) lines.push('');
    lines.push(...noticeLines(c.notices, paint));
    blocks.push(lines.join('\n'));
  }
  blocks.push(closing ?? NO_CHANGES_TEXT);
  return blocks.join('\n\n') + '\n';
}

// ---------------------------------------------------------------------------------------------
// Markdown

/**
 * The first column of a ```diff block decides GitHub's highlighting. Mapping:
 *   `~` change        -> `!`  (GitHub colors `!` lines as "changed": orange)
 *   `+` start         -> `+`  (green)
 *   `-` remove        -> `-`  (red)
 *   `!` needs a human -> `!`  (orange as well; the plan's own symbol stays visible after it)
 * Reason lines start with a space: diff context, not highlighted.
 */
const DIFF_MARKER: Record<PlanSymbol, string> = { '~': '!', '+': '+', '-': '-', '!': '!' };

/** For HTML contexts (`<summary>`): no tags, no entities, no code spans. */
function escapeHtml(s: string): string {
  return printable(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/`/g, '&#96;');
}

/** For markdown text (bullets): HTML escaped, and no emphasis, links or strike-through from the content. */
function escapeMarkdown(s: string): string {
  return escapeHtml(s).replace(/[\\*_[\]~|]/g, (c) => `\\${c}`);
}

/** A fenced code block that its content cannot close: the fence is longer than any backtick run inside. */
function fenced(lang: string, lines: readonly string[]): string {
  const body = lines.join('\n');
  const longest = Math.max(0, ...(body.match(/`+/g) ?? []).map((r) => r.length));
  const fence = '`'.repeat(Math.max(3, longest + 1));
  return `${fence}${lang}\n${body}\n${fence}`;
}

function diffLines(steps: readonly PlanStepView[]): string[] {
  const out: string[] = [];
  const walk = (s: PlanStepView, depth: number) => {
    const [head, ...rest] = stepLines({ ...s, substeps: [] }, depth, false, (sym) => sym);
    // `  ~ summary` -> `! ~ summary`: the marker takes the first column of the indentation.
    out.push(DIFF_MARKER[s.symbol] + (head as string).slice(1), ...rest);
    for (const sub of s.substeps ?? []) walk(sub, depth + 1);
  };
  for (const s of steps) walk(s, 0);
  return out;
}

function sqlLines(steps: readonly PlanStepView[]): string[] {
  const out: string[] = [];
  const walk = (s: PlanStepView) => {
    const hasSql = s.sql.length > 0 || (s.substeps ?? []).length > 0;
    if (!hasSql) return;
    out.push(`-- step ${printable(s.id)}: ${printable(s.summary)}`);
    for (const q of s.sql) {
      const line = printable(q);
      out.push(line.startsWith('--') || line.endsWith(';') ? line : `${line};`);
    }
    for (const sub of s.substeps ?? []) walk(sub);
  };
  for (const s of steps) walk(s);
  return out;
}

function clusterMarkdown(c: ClusterPlanView): string {
  const counts = [plural(c.steps.length, 'change', 'changes')];
  if (c.notices.length > 0) counts.push(plural(c.notices.length, 'notice', 'notices'));
  const parts = [`<details><summary>cluster ${escapeHtml(c.cluster)}: ${counts.join(', ')}</summary>`, `File: ${escapeMarkdown(c.file)}`];
  if (c.steps.length > 0) parts.push(fenced('diff', diffLines(c.steps)));
  const sql = sqlLines(c.steps);
  if (sql.length > 0) parts.push(fenced('sql', sql));
  if (c.notices.length > 0) {
    parts.push(`**${NOTICES_HEADING}**`);
    parts.push(c.notices.map((n) => `- **${escapeMarkdown(n.kind)}**: ${escapeMarkdown(n.message)}`).join('\n'));
  }
  parts.push('</details>');
  return parts.join('\n\n');
}

function utf8Bytes(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** The longest prefix of `s` that fits in `max` UTF-8 bytes, never splitting a character. */
function cutToBytes(s: string, max: number): string {
  if (max <= 0) return '';
  const buf = Buffer.from(s, 'utf8');
  if (buf.length <= max) return s;
  let end = max;
  while (end > 0 && ((buf[end] as number) & 0xc0) === 0x80) end--; // back off a continuation byte
  return buf.subarray(0, end).toString('utf8');
}

export function renderPlanMarkdown(doc: PlanDocument, opts: MarkdownOptions = {}): string {
  const maxBytes = opts.maxBytes ?? DEFAULT_MARKDOWN_MAX_BYTES;
  const closing = planLine(doc);
  const summary = closing !== null ? `**${closing}**` : `**No changes.** Live topology matches the files.`;
  const blocks = shownClusters(doc).map(clusterMarkdown);
  // Layout: summary, then each block after a blank line, then a final newline.
  const full = [summary, ...blocks].join('\n\n') + '\n';
  const fullBytes = utf8Bytes(full);
  if (fullBytes <= maxBytes) return full;

  // Too big: keep the most leading whole cluster blocks that leave room for the note.
  const note = (k: number) =>
    `_Plan truncated: ${k} of ${blocks.length} clusters shown (the full plan is ${fullBytes} bytes); run \`topogit plan\` locally or download the JSON artifact._`;
  const sizeWith = (prefixBytes: number, k: number) => prefixBytes + utf8Bytes(`\n\n${note(k)}\n`);
  let prefixBytes = utf8Bytes(summary);
  let k = 0;
  for (const b of blocks) {
    const next = prefixBytes + utf8Bytes(`\n\n${b}`);
    if (sizeWith(next, k + 1) > maxBytes) break;
    prefixBytes = next;
    k++;
  }
  const out = [summary, ...blocks.slice(0, k), note(k)].join('\n\n') + '\n';
  // A limit too small even for the summary and the note: the most of it that fits.
  return utf8Bytes(out) <= maxBytes ? out : cutToBytes(out, maxBytes);
}

// ---------------------------------------------------------------------------------------------
// JSON

/** The plan as saved and published; its shape is schemas/plan.schema.json. */
export function renderPlanJson(doc: PlanDocument): string {
  return JSON.stringify(doc, null, 2) + '\n';
}
