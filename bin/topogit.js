#!/usr/bin/env node
// The CLI is compiled to dist/ by `npm ci` (the prepare script). Fail with a hint, not a stack trace.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('topogit: not built yet; run `npm ci` (or `npm run build`) in the topogit checkout\n');
  process.exit(1);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
