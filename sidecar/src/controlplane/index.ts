/**
 * The control-plane contract, shared with the operator (`@dbward/sidecar/controlplane`): the
 * service definition, message types and the stream settings both ends agree on. The client itself
 * (`client.ts`) is the sidecar's and is not exported here.
 */
export * from './proto.js';
