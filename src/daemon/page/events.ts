// /api/events: Server-Sent Events for the open pages. The daemon calls publish() after each
// observation; each cluster's section is rendered again and sent only when it changed, so pages at
// rest cost a render per pass and nothing on the wire (a comment every 20 s keeps proxies open).
// With no page open, publish() does nothing at all.
import type { ServerResponse } from 'node:http';
import type { ClustersJson } from '../http.js';
import { clusterId, renderCluster, renderMain, type PageOptions } from './render.js';

export interface EventHub {
  /** A page's stream: headers sent, the current state sent at once. False when too many are open. */
  attach(res: ServerResponse): boolean;
  /** After an observation of `cluster` (all of them when absent). Never throws. */
  publish(cluster?: string): void;
  readonly clients: number;
  close(): void;
}

const MAX_CLIENTS = 1000;
const KEEPALIVE_MS = 20_000;
/** Bytes queued for one page before it counts as gone. */
const MAX_BUFFERED = 1 << 20;

export function eventHub(state: () => ClustersJson, o: PageOptions, headers: Record<string, string>): EventHub {
  const clients = new Set<ServerResponse>();
  /** What every open page shows now, per cluster (rendered), and the page's outline. */
  const sent = new Map<string, string>();
  let shape = '';
  const frame = (event: string, data: unknown): string => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
  const send = (c: ServerResponse, text: string): void => {
    // A page that stopped reading (a laptop asleep, a stuck proxy) is dropped, not buffered
    // without end; its EventSource reconnects and gets the whole state again.
    if (c.writableLength > MAX_BUFFERED) {
      clients.delete(c);
      c.destroy();
      return;
    }
    c.write(text);
  };
  const broadcast = (text: string): void => {
    for (const c of clients) send(c, text);
  };
  const shapeOf = (s: ClustersJson): string => JSON.stringify([s.role, s.startedAt, s.clusters.map((c) => c.name)]);
  /** Brings every open page to `s`: the whole main when the outline changed, else the clusters that changed. */
  const update = (s: ClustersJson, only?: string): void => {
    if (shapeOf(s) !== shape) {
      shape = shapeOf(s);
      sent.clear();
      for (const c of s.clusters) sent.set(c.name, renderCluster(c, s.role, o));
      broadcast(frame('main', { html: renderMain(s, o) }));
      return;
    }
    for (const c of s.clusters) {
      if (only !== undefined && c.name !== only) continue;
      const html = renderCluster(c, s.role, o);
      if (sent.get(c.name) === html) continue;
      sent.set(c.name, html);
      broadcast(frame('cluster', { id: clusterId(c.name), name: c.name, html }));
    }
  };
  const keepalive = setInterval(() => broadcast(': keepalive\n\n'), KEEPALIVE_MS);
  keepalive.unref();

  return {
    get clients() {
      return clients.size;
    },
    attach(res) {
      if (clients.size >= MAX_CLIENTS) return false;
      const s = state();
      // The pages already open catch up to this same state first, so that what `sent` records is
      // what every page shows, the new one included.
      if (clients.size > 0) update(s);
      else {
        shape = shapeOf(s);
        sent.clear();
        for (const c of s.clusters) sent.set(c.name, renderCluster(c, s.role, o));
      }
      res.writeHead(200, { ...headers, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no', connection: 'keep-alive' });
      res.write('retry: 1000\n\n');
      res.write(frame('main', { html: renderMain(s, o) }));
      clients.add(res);
      res.on('close', () => clients.delete(res));
      return true;
    },
    publish(cluster) {
      if (clients.size === 0) return;
      try {
        update(state(), cluster);
      } catch {
        // A page that cannot be rendered must never stop the daemon's work; the next observation tries again.
      }
    },
    close() {
      clearInterval(keepalive);
      for (const c of clients) c.end();
      clients.clear();
    },
  };
}
