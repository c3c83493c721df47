import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './dbward.js';

const POLICY = `apiVersion: dbward.io/v1alpha1
kind: DataAccessPolicy
metadata: { name: shop, namespace: shop }
spec:
  guardrails:
    - name: agents-read-only
      when: '"dbward.io/kind" in identity.labels && identity.labels["dbward.io/kind"] == "ai-agent" && query.kind != "read"'
      action: deny
      message: AI agents may only read
    - name: hold-deletes
      when: 'query.command == "DELETE"'
      action: requireApproval
      message: deletes need a second pair of eyes
`;

let policyFile: string;
let badPolicy: string;

beforeAll(() => {
  const dir = mkdtempSync(join(tmpdir(), 'dbward-check-'));
  policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, POLICY);
  badPolicy = join(dir, 'bad.yaml');
  writeFileSync(badPolicy, POLICY.replace('query.kind != "read"', 'query.kind != 3'));
});

async function check(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(['check', '--policy', policyFile, ...args], {}, { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('dbward check', () => {
  it('allows, and shows the facts it decided on', async () => {
    const result = await check('--sql', 'select email from customers where id = 1', '--environment', 'production');
    expect(result.code).toBe(0);
    expect(result.out).toContain('command    SELECT   kind read');
    expect(result.out).toContain('reads      public.customers');
    expect(result.out).toMatch(/ALLOWED$/);
  });

  it('refuses with the built-in guardrail in production, exit 3', async () => {
    const result = await check('--sql', 'select 1; truncate orders', '--environment', 'production');
    expect(result.code).toBe(3);
    expect(result.out).toContain('REFUSED  42501  dbward: denied by builtin.no-destructive-ddl-in-production');
  });

  it('lets the same statement through outside production', async () => {
    expect((await check('--sql', 'truncate orders', '--environment', 'staging')).code).toBe(0);
  });

  it('takes the identity into account', async () => {
    const agent = await check('--sql', 'update orders set x = 1 where id = 2', '--identity', 'labels.dbward.io/kind=ai-agent');
    expect(agent.code).toBe(3);
    expect(agent.out).toContain('dbward: denied by agents-read-only: AI agents may only read');
    const human = await check('--sql', 'update orders set x = 1 where id = 2', '--identity', 'labels.dbward.io/kind=human');
    expect(human.code).toBe(0);
  });

  it('reports holds for approval', async () => {
    const result = await check('--sql', 'delete from orders where id = 7');
    expect(result.code).toBe(3);
    expect(result.out).toContain('HELD FOR APPROVAL by hold-deletes: deletes need a second pair of eyes');
  });

  it('reports unparseable statements as the sidecar would', async () => {
    const result = await check('--sql', 'selec 1');
    expect(result.code).toBe(3);
    expect(result.out).toContain('REFUSED  42601  dbward: statement not understood');
  });

  it('prints JSON with -o json', async () => {
    const result = await check('--sql', 'drop table t', '--environment', 'production', '-o', 'json');
    const parsed = JSON.parse(result.out) as { outcome: string; verdict: { sqlstate: string }; statements: Array<{ facts: { command: string } }> };
    expect(parsed.outcome).toBe('refuse');
    expect(parsed.verdict.sqlstate).toBe('42501');
    expect(parsed.statements[0]!.facts.command).toBe('DROP TABLE');
  });

  it('exits 2 with the rule and position of a CEL type error', async () => {
    const out: string[] = [];
    const code = await runCli(['check', '--policy', badPolicy, '--sql', 'select 1'], {}, { out: (t) => out.push(t), err: (t) => out.push(t) });
    expect(code).toBe(2);
    expect(out.join('\n')).toMatch(/agents-read-only/);
    expect(out.join('\n')).toMatch(/bad\.yaml:\d+/);
  });

  it('exits 2 on missing arguments', async () => {
    expect((await runCli(['check', '--sql', 'select 1'], {}, { out: () => undefined, err: () => undefined }))).toBe(2);
    expect((await check()).code).toBe(2);
    expect((await check('--sql', 'select 1', '--identity', 'nonsense')).code).toBe(2);
  });
});
