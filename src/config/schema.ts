// Validates parsed topology data against schemas/topology.schema.json and turns ajv's errors into
// one human line each, addressed by data path (positions are looked up by the caller).

import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import type { ErrorObject } from 'ajv';
import type { PathSegment } from './positions.js';

/**
 * A problem addressed by data path; `at` says whether to point at the key, at the value, or at the
 * start of the file (for things the file leaves out).
 */
export interface Problem {
  readonly path: readonly PathSegment[];
  readonly at: 'key' | 'value' | 'file';
  readonly message: string;
}

/** Works from src/config/ (tests) and from dist/config/ (the built CLI): both sit two levels down. */
export const SCHEMA_URL = new URL('../../schemas/topology.schema.json', import.meta.url);

interface SchemaNode {
  readonly type?: string;
  readonly pattern?: string;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly properties?: Record<string, unknown>;
  readonly items?: { readonly $ref?: string };
  readonly oneOf?: readonly { readonly required?: readonly string[] }[];
}

const schema = JSON.parse(readFileSync(SCHEMA_URL, 'utf8')) as {
  definitions: Record<string, SchemaNode>;
};
const validate = new Ajv({ allErrors: true, verbose: true }).compile(schema);

/** What each pattern-carrying definition means, in words. Keyed by definition name. */
const PATTERN_RULES: Record<string, { noun: string; rule: string }> = {
  name: { noun: 'name', rule: "use 1-64 letters, digits, '_', '.', '-', starting with a letter or digit" },
  host: { noun: 'host', rule: "use a hostname or an IPv4/IPv6 address (letters, digits, '.', '-', ':')" },
  user: { noun: 'user name', rule: "use 1-80 letters, digits, '_', '.', '-'" },
  envName: { noun: 'environment variable name', rule: "use letters, digits and '_', not starting with a digit" },
  path: { noun: 'file path', rule: 'write it on one line, without control characters' },
  command: { noun: 'command', rule: 'write it on one line, without newline, carriage return or NUL characters' },
  authorName: { noun: 'author name', rule: "write it on one line, without '<' or '>'" },
  email: { noun: 'email address', rule: "use local@domain, without spaces, '<' or '>'" },
};

function patternRule(pattern: unknown): { noun: string; rule: string } | undefined {
  for (const [name, def] of Object.entries(schema.definitions)) {
    if (def.pattern !== undefined && def.pattern === pattern) return PATTERN_RULES[name];
  }
  return undefined;
}

const TYPE_NOUNS: Record<string, string> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
  null: 'empty',
};

/** A value quoted for a one-line message: JSON escapes keep newlines and quotes harmless. */
export function quote(value: unknown): string {
  const s = JSON.stringify(typeof value === 'string' ? value : String(value));
  return s.length > 48 ? `${s.slice(0, 44)}..."` : s;
}

/** A JSON pointer into `root` as path segments; indexes into lists come back as numbers. */
function splitPointer(pointer: string, root: unknown): PathSegment[] {
  if (pointer === '') return [];
  let current = root;
  return pointer
    .slice(1)
    .split('/')
    .map((raw) => {
      const s = raw.replace(/~1/g, '/').replace(/~0/g, '~');
      const segment: PathSegment = Array.isArray(current) && /^\d+$/.test(s) ? Number(s) : s;
      current = current !== null && typeof current === 'object' ? (current as Record<string, unknown>)[s] : undefined;
      return segment;
    });
}

function integerRange(ps: SchemaNode | undefined): string | undefined {
  if (ps?.type === 'integer' && ps.minimum !== undefined && ps.maximum !== undefined) {
    return `must be an integer between ${ps.minimum} and ${ps.maximum}`;
  }
  return undefined;
}

/** `must be a list of commands` for a list whose items are a pattern-carrying definition. */
function listOf(ps: SchemaNode | undefined): string | undefined {
  const ref = ps?.type === 'array' ? ps.items?.$ref : undefined;
  const noun = ref?.startsWith('#/definitions/') ? PATTERN_RULES[ref.slice('#/definitions/'.length)]?.noun : undefined;
  return noun === undefined ? undefined : `must be a list of ${noun}s`;
}

function render(e: ErrorObject, root: unknown): Problem | undefined {
  const path = splitPointer(e.instancePath, root);
  const ps = e.parentSchema as SchemaNode | undefined;
  const params = e.params as Record<string, unknown>;

  if (e.propertyName !== undefined) {
    // A mapping key itself is bad: ajv reports the inner failure with propertyName set, then a
    // generic "property name must be valid" (dropped below).
    const what = path.length === 1 && path[0] === 'instances' ? 'instance name' : 'key';
    const pr = e.keyword === 'pattern' ? patternRule(params['pattern']) : undefined;
    const message = pr ? `not a valid ${what}: ${pr.rule}` : `not a valid ${what}`;
    return { path: [...path, e.propertyName], at: 'key', message };
  }

  switch (e.keyword) {
    case 'required':
      return { path, at: 'value', message: `missing required key "${String(params['missingProperty'])}"` };
    case 'additionalProperties': {
      const allowed = Object.keys(ps?.properties ?? {});
      return {
        path: [...path, String(params['additionalProperty'])],
        at: 'key',
        message: `unknown key (allowed: ${allowed.join(', ')})`,
      };
    }
    case 'type': {
      const isInstances = path.length === 1 && path[0] === 'instances';
      const noun = TYPE_NOUNS[String(params['type'])] ?? String(params['type']);
      return {
        path,
        at: 'value',
        message: integerRange(ps) ?? listOf(ps) ?? (isInstances ? 'must be a mapping of instance names to { host, port, source }' : `must be ${noun}`),
      };
    }
    case 'propertyNames':
      return undefined; // its inner error (carrying propertyName) was already rendered
    case 'minimum':
    case 'maximum':
      return { path, at: 'value', message: integerRange(ps) ?? `must be ${String(params['comparison'])} ${String(params['limit'])}` };
    case 'enum':
      return { path, at: 'value', message: `must be one of ${(params['allowedValues'] as unknown[]).map(String).join(', ')}` };
    case 'const':
      return { path, at: 'value', message: `must be ${JSON.stringify(params['allowedValue'])}` };
    case 'pattern': {
      const pr = patternRule(params['pattern']);
      const message = pr ? `${quote(e.data)} is not a valid ${pr.noun}: ${pr.rule}` : `${quote(e.data)} ${e.message ?? 'is invalid'}`;
      return { path, at: 'value', message };
    }
    case 'maxLength':
      return { path, at: 'value', message: `must be at most ${String(params['limit'])} characters` };
    case 'minLength':
      return { path, at: 'value', message: params['limit'] === 1 ? 'must not be empty' : `must be at least ${String(params['limit'])} characters` };
    case 'minProperties':
      return {
        path,
        at: 'value',
        message: path.length === 1 && path[0] === 'instances' ? 'must define at least one instance' : 'must not be empty',
      };
    case 'oneOf': {
      // Every oneOf in the schema is "exactly one of these keys" (secretRef: passwordEnv | passwordFile).
      const keys = (ps?.oneOf ?? []).flatMap((b) => b.required ?? []);
      const alternatives = keys.join(' or ');
      const message =
        params['passingSchemas'] === null
          ? `missing ${alternatives} (give exactly one)`
          : `give exactly one of ${alternatives}, not both`;
      return { path, at: 'value', message };
    }
    default:
      return { path, at: 'value', message: e.message ?? `fails the ${e.keyword} check` };
  }
}

/** Schema problems of `data`, one line each, noise removed; empty when the data is valid. */
export function checkSchema(data: unknown): Problem[] {
  if (validate(data)) return [];
  const errors = validate.errors ?? [];
  // ajv reports each failed oneOf/anyOf branch too; the combinator's own error says it better.
  const combinators = errors.filter((e) => e.keyword === 'oneOf' || e.keyword === 'anyOf');
  const isBranchNoise = (e: ErrorObject): boolean =>
    combinators.some(
      (c) =>
        c !== e &&
        (e.instancePath === c.instancePath || e.instancePath.startsWith(`${c.instancePath}/`)) &&
        e.schemaPath.startsWith(`${c.schemaPath}/`),
    );
  const seen = new Set<string>();
  const out: Problem[] = [];
  for (const e of errors) {
    if (isBranchNoise(e)) continue;
    const p = render(e, data);
    if (!p) continue;
    const key = JSON.stringify([p.path, p.message]);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(p);
  }
  return out;
}
