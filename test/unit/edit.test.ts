import { describe, expect, it } from 'vitest';
import { editSources, promotionEdits } from '../../src/config/edit.js';
import { parseTopologyText } from '../../src/config/load.js';

const flow = `# yaml-language-server: $schema=../schemas/topology.schema.json
cluster: shop   # the shop
flavor: auto
instances:
  db001: { host: 127.0.0.11, port: 3306 }                 # no source: the primary

  db002: { host: 127.0.0.12, port: 3306, source: db001 }
  db003: { host: 127.0.0.13, source: db001, promotion: never }   # never promote
failover:
  auto: false
`;

const block = `cluster: shop
instances:
  db001:
    host: 127.0.0.11   # primary
  db002:
    host: 127.0.0.12
    source: db001      # first replica
    port: 3306
  db003:
    host: 127.0.0.13
    source: db001
`;

describe('editSources', () => {
  it('moves the primary in a flow-style file, touching only the changed lines', () => {
    const out = editSources(flow, promotionEdits([{ name: 'db001' }, { name: 'db002', source: 'db001' }, { name: 'db003', source: 'db001' }], 'db002'));
    expect(out).toBe(`# yaml-language-server: $schema=../schemas/topology.schema.json
cluster: shop   # the shop
flavor: auto
instances:
  db001: { host: 127.0.0.11, port: 3306, source: db002 }                 # no source: the primary

  db002: { host: 127.0.0.12, port: 3306 }
  db003: { host: 127.0.0.13, source: db002, promotion: never }   # never promote
failover:
  auto: false
`);
    const parsed = parseTopologyText(out, 'shop.yaml');
    expect(parsed.issues).toEqual([]);
    expect(parsed.spec?.instances.map((i) => [i.name, i.source ?? null])).toEqual([
      ['db001', 'db002'],
      ['db002', null],
      ['db003', 'db002'],
    ]);
  });

  it('edits block-style mappings line by line, keeping comments', () => {
    const out = editSources(block, new Map([['db002', null], ['db001', 'db002'], ['db003', 'db002']]));
    expect(out).toBe(`cluster: shop
instances:
  db001:
    host: 127.0.0.11   # primary
    source: db002
  db002:
    host: 127.0.0.12
    port: 3306
  db003:
    host: 127.0.0.13
    source: db002
`);
  });

  it('removes a source that comes first in a flow mapping', () => {
    expect(editSources('instances:\n  a: { source: b, host: h }\n', new Map([['a', null]]))).toBe('instances:\n  a: { host: h }\n');
  });

  it('leaves the text unchanged when nothing changes', () => {
    expect(editSources(flow, new Map([['db002', 'db001'], ['db001', null]]))).toBe(flow);
  });

  it('keeps deeper subtrees under their intermediate source', () => {
    const edits = promotionEdits([{ name: 'a' }, { name: 'b', source: 'a' }, { name: 'c', source: 'b' }, { name: 'd', source: 'a' }], 'b');
    expect([...edits]).toEqual([
      ['b', null],
      ['a', 'b'],
      ['d', 'b'],
    ]);
  });

  it('refuses an instance that is not a mapping', () => {
    expect(() => editSources('instances:\n  a: 1\n', new Map([['a', null]]))).toThrow(/not a mapping/);
  });
});
