// `topogit routes CLUSTER`: the HAProxy backends that agree with the file (the primary enabled for
// writes, the others disabled), to paste into haproxy.cfg so that a reload starts where topogit
// would put it. Wiring and rendering only; the text comes from src/core/routing.ts.
import type { Command } from 'commander';
import { TopogitError } from '../core/errors.js';
import { haproxyBackends } from '../core/routing.js';
import { loadValid, type Io } from './shared.js';

export function registerRoutesCommand(program: Command, d: { readonly io: Io }): void {
  const { io } = d;
  program
    .command('routes')
    .description("print HAProxy backends consistent with the file's routing section (primary enabled for writes, the others disabled)")
    .argument('<cluster>', 'cluster name')
    .option('-f, --files <path...>', 'topology files or directories', ['topologies'])
    .action(async (cluster: string, o: { files: string[] }) => {
      const [spec] = await loadValid(o.files, io, cluster, { checkCredentials: false });
      if (!spec) return;
      const routers = spec.routing ?? [];
      if (routers.length === 0) throw new TopogitError('TOPOGIT_USAGE', `${cluster} has no routing section in ${spec.file}`, 'add e.g.\n  routing:\n    - haproxy: 127.0.0.1:9999\n      writer: mysql_rw\n      reader: mysql_ro');
      io.out(routers.map((r) => haproxyBackends(spec, r)).join('\n'));
    });
}
