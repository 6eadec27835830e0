// A small TCP forwarder for drills: a replica pointed at it (CHANGE MASTER TO MASTER_HOST=<its
// address>) replicates through it, so one replica's link to its source can be cut, refused or
// slowed while every other connection to the same source is left alone. Loopback only.
import net from 'node:net';

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

export class TcpForwarder {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  /** Connections accepted since start (a replica's IO thread reconnecting shows up here). */
  accepted = 0;

  /**
   * `delayMs`: what the target sends is held this long before it is passed on (a replica further
   * away). When the target's side closes, what is still held is dropped: the replica never got it.
   */
  constructor(
    readonly listen: Endpoint,
    readonly target: Endpoint,
    readonly o: { readonly delayMs?: number } = {},
  ) {}

  get listening(): boolean {
    return this.server?.listening === true;
  }

  /** Listens (again, after `refuse`). */
  async start(): Promise<void> {
    if (this.listening) return;
    const server = net.createServer((down) => this.accept(down));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.listen.port, this.listen.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  }

  /** Cuts every forwarded connection at once and refuses new ones (connection refused) until `start`. */
  async refuse(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    const closed = server ? new Promise<void>((r) => server.close(() => r())) : Promise.resolve();
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await closed;
  }

  async stop(): Promise<void> {
    await this.refuse();
  }

  private accept(down: net.Socket): void {
    this.accepted++;
    const up = net.connect(this.target.port, this.target.host);
    this.sockets.add(down);
    this.sockets.add(up);
    const close = () => {
      down.destroy();
      up.destroy();
      this.sockets.delete(down);
      this.sockets.delete(up);
    };
    down.on('error', close);
    up.on('error', close);
    down.on('close', close);
    up.on('close', close);
    down.on('data', (chunk: Buffer) => {
      if (!up.destroyed) up.write(chunk);
    });
    const delay = this.o.delayMs ?? 0;
    up.on('data', (chunk: Buffer) => {
      if (delay === 0) {
        if (!down.destroyed) down.write(chunk);
        return;
      }
      // Timers of one duration fire in the order they were set: the byte stream keeps its order.
      setTimeout(() => {
        if (!down.destroyed) down.write(chunk);
      }, delay); // the forwarder's latency: the data arrives `delayMs` late, which is the fault it models
    });
  }
}
