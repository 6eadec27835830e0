// Renders a new topology file (sandbox up, discover). Editing an existing file is done on its
// parsed Document instead, so that comments and layout survive.
import { stringify } from 'yaml';
import type { Flavor, FlavorSetting, Promotion } from '../core/model.js';

export interface NewTopology {
  readonly cluster: string;
  readonly flavor: FlavorSetting | Flavor;
  readonly header: readonly string[];
  /** Flow-style credential lines, e.g. `{ user: topogit, passwordEnv: TOPOGIT_PASSWORD }`. */
  readonly credentials?: { readonly admin: Record<string, string>; readonly replication: Record<string, string> };
  readonly instances: readonly { name: string; host: string; port: number; source?: string; promotion?: Promotion }[];
  readonly failoverAuto: boolean;
}

/** A YAML scalar, quoted only when it must be. */
function scalar(v: string | number): string {
  return stringify(v, { lineWidth: 0 }).trim();
}

function flow(fields: Record<string, string | number | undefined>): string {
  const parts = Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}: ${scalar(v as string | number)}`);
  return `{ ${parts.join(', ')} }`;
}

export function renderTopology(t: NewTopology): string {
  const width = Math.max(...t.instances.map((i) => i.name.length));
  const lines = [
    '# yaml-language-server: $schema=../schemas/topology.schema.json',
    ...t.header.map((h) => `# ${h}`),
    `cluster: ${scalar(t.cluster)}`,
    `flavor: ${t.flavor}`,
    ...(t.credentials
      ? ['credentials:', `  admin:       ${flow(t.credentials.admin)}`, `  replication: ${flow(t.credentials.replication)}`]
      : []),
    'instances:',
    ...t.instances.map(
      (i) =>
        `  ${(scalar(i.name) + ':').padEnd(width + 1)} ${flow({
          host: i.host,
          port: i.port,
          source: i.source,
          promotion: i.promotion && i.promotion !== 'neutral' ? i.promotion : undefined,
        })}`,
    ),
    'failover:',
    `  auto: ${t.failoverAuto}`,
    '',
  ];
  return lines.join('\n');
}
