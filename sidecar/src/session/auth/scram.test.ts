import { describe, expect, it } from 'vitest';
import { md5PasswordResponse, ScramClient, ScramError } from './scram.js';

// RFC 7677 section 3 test vector (SCRAM-SHA-256, user "user", password "pencil").
const NONCE = 'rOprNGfwEbeRWgbNEkqO';
const SERVER_FIRST = 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096';
const CLIENT_FINAL = 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=';
const SERVER_FINAL = 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=';

describe('ScramClient', () => {
  it('reproduces the RFC 7677 exchange', () => {
    const client = new ScramClient('pencil', NONCE, 'user');
    expect(client.clientFirst().toString()).toBe(`n,,n=user,r=${NONCE}`);
    expect(client.clientFinal(Buffer.from(SERVER_FIRST)).toString()).toBe(CLIENT_FINAL);
    expect(() => client.verifyServerFinal(Buffer.from(SERVER_FINAL))).not.toThrow();
  });

  it('sends an empty user name, as PostgreSQL expects', () => {
    expect(new ScramClient('pw', 'abc').clientFirst().toString()).toBe('n,,n=,r=abc');
  });

  it('rejects a server signature that does not verify', () => {
    const client = new ScramClient('wrong', NONCE, 'user');
    client.clientFinal(Buffer.from(SERVER_FIRST));
    expect(() => client.verifyServerFinal(Buffer.from(SERVER_FINAL))).toThrow(ScramError);
  });

  it.each([
    ['missing salt', `r=${NONCE}xyz,i=4096`],
    ['nonce not extended', `r=${NONCE},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096`],
    ['foreign nonce', 'r=somebodyElse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096'],
    ['zero iterations', `r=${NONCE}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0`],
  ])('rejects a malformed server-first-message: %s', (_name, serverFirst) => {
    const client = new ScramClient('pencil', NONCE, 'user');
    expect(() => client.clientFinal(Buffer.from(serverFirst))).toThrow(ScramError);
  });

  it('reports a server error attribute', () => {
    const client = new ScramClient('pencil', NONCE, 'user');
    client.clientFinal(Buffer.from(SERVER_FIRST));
    expect(() => client.verifyServerFinal(Buffer.from('e=invalid-proof'))).toThrow(/invalid-proof/);
  });

  it('picks SCRAM-SHA-256 and never the -PLUS variant', () => {
    expect(ScramClient.pick(['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'])).toBe('SCRAM-SHA-256');
    expect(ScramClient.pick(['SCRAM-SHA-256-PLUS'])).toBeNull();
  });
});

describe('md5PasswordResponse', () => {
  it('matches libpq: md5(md5(password + user) + salt)', () => {
    // Computed independently: md5('md5' hex of 'secretalice' + salt bytes 01 02 03 04).
    const salt = Buffer.from([1, 2, 3, 4]);
    const response = md5PasswordResponse('alice', 'secret', salt);
    expect(response).toMatch(/^md5[0-9a-f]{32}$/);
    expect(response).toBe('md5' + md5Hex(Buffer.concat([Buffer.from(md5Hex(Buffer.from('secretalice'))), salt])));
    expect(md5PasswordResponse('alice', 'secret', Buffer.from([1, 2, 3, 5]))).not.toBe(response);
  });
});

import { createHash } from 'node:crypto';
function md5Hex(data: Buffer): string {
  return createHash('md5').update(data).digest('hex');
}
