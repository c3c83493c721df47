/**
 * The downward-API labels file (`fieldRef: metadata.labels`): one `key="value"` line per label, the
 * value quoted and escaped as Go's %q does (kubelet's fieldpath.FormatMap). Pure.
 */
export class LabelsFileError extends Error {
  override readonly name = 'LabelsFileError';
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(`line ${line}: ${message}`);
  }
}

export function parseLabelsFile(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '');
    if (line.trim() === '') continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new LabelsFileError(i + 1, `expected key="value", got ${JSON.stringify(line.slice(0, 80))}`);
    const key = line.slice(0, eq);
    const raw = line.slice(eq + 1);
    if (!/^[\w./-]+$/.test(key)) throw new LabelsFileError(i + 1, `invalid label key ${JSON.stringify(key)}`);
    labels[key] = unquoteGo(raw, i + 1);
  }
  return labels;
}

const SIMPLE: Readonly<Record<string, string>> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\', '"': '"', "'": "'" };

/** A Go double-quoted string literal → its value. */
function unquoteGo(raw: string, line: number): string {
  if (raw.length < 2 || !raw.startsWith('"') || !raw.endsWith('"')) throw new LabelsFileError(line, `expected a double-quoted value, got ${JSON.stringify(raw.slice(0, 80))}`);
  const body = raw.slice(1, -1);
  const bytes: number[] = [];
  const pushText = (s: string) => bytes.push(...Buffer.from(s, 'utf8'));
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c === '"') throw new LabelsFileError(line, 'unescaped " inside the value');
    if (c !== '\\') {
      pushText(c);
      continue;
    }
    const e = body[++i];
    if (e === undefined) throw new LabelsFileError(line, 'dangling backslash');
    const simple = SIMPLE[e];
    if (simple !== undefined) {
      pushText(simple);
    } else if (e === 'x') {
      bytes.push(hex(body.slice(i + 1, i + 3), 2, line));
      i += 2;
    } else if (e === 'u' || e === 'U') {
      const n = e === 'u' ? 4 : 8;
      pushText(String.fromCodePoint(hex(body.slice(i + 1, i + 1 + n), n, line)));
      i += n;
    } else if (/[0-7]/.test(e)) {
      const digits = body.slice(i, i + 3);
      if (!/^[0-7]{3}$/.test(digits)) throw new LabelsFileError(line, `bad octal escape \\${digits}`);
      bytes.push(parseInt(digits, 8));
      i += 2;
    } else {
      throw new LabelsFileError(line, `unknown escape \\${e}`);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

function hex(digits: string, n: number, line: number): number {
  if (digits.length !== n || !/^[0-9a-fA-F]+$/.test(digits)) throw new LabelsFileError(line, `bad escape: expected ${n} hex digits, got "${digits}"`);
  return parseInt(digits, 16);
}
