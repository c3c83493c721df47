import type { Server } from 'node:net';

/** Starts a TCP listener (net or http server) and resolves with the address it bound. */
export function listenTcp(server: Server, host: string, port: number, what: string): Promise<{ host: string; port: number }> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      const address = server.address();
      if (address === null || typeof address === 'string') return reject(new Error(`${what} has no TCP address`));
      resolve({ host: address.address, port: address.port });
    });
  });
}
