/** Summarizes a V8 .cpuprofile (node --cpu-prof): the functions with the most self time. */
import { readFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

/** Frames that are not JavaScript work of the process. */
const IDLE = new Set(['(idle)', '(root)']);

function location(frame: CallFrame): string {
  if (frame.url === '') return '';
  let url = frame.url.replace(/^file:\/\//, '');
  if (url.startsWith('/')) url = relative(process.cwd(), url);
  return `${url}:${frame.lineNumber + 1}`;
}

/**
 * Top `limit` functions by self time (samples whose leaf is the function), aggregated over nodes
 * of the same function and location; percentages are of the non-idle samples.
 */
export function summarizeProfile(path: string, limit = 15): string {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>(profile.nodes.map((n) => [n.id, n]));
  const selfMicros = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  if (samples.length > 0) {
    // timeDeltas[i] is the time since the previous sample; charge it to the sample after it.
    for (let i = 0; i < samples.length; i++) {
      const id = samples[i]!;
      const dt = deltas[i + 1] ?? 0;
      selfMicros.set(id, (selfMicros.get(id) ?? 0) + Math.max(0, dt));
    }
  } else {
    for (const n of profile.nodes) selfMicros.set(n.id, n.hitCount ?? 0);
  }
  const agg = new Map<string, number>();
  let busy = 0;
  let idle = 0;
  for (const [id, micros] of selfMicros) {
    const node = byId.get(id);
    if (node === undefined) continue;
    const name = node.callFrame.functionName || '(anonymous)';
    if (IDLE.has(name)) {
      idle += micros;
      continue;
    }
    busy += micros;
    const key = `${name}  ${location(node.callFrame)}`.trim();
    agg.set(key, (agg.get(key) ?? 0) + micros);
  }
  const rows = [...agg.entries()].sort((a, b) => b[1] - a[1]).slice(0, limit);
  const lines = [
    `profiled ${((profile.endTime - profile.startTime) / 1e6).toFixed(1)} s wall, ${(busy / 1e6).toFixed(2)} s busy, ${(idle / 1e6).toFixed(2)} s idle`,
    ' self ms   self %  function  location',
    ...rows.map(([key, micros]) => `${(micros / 1000).toFixed(0).padStart(8)}  ${((micros / busy) * 100).toFixed(1).padStart(6)}%  ${key}`),
  ];
  return lines.join('\n');
}

// Command line: node --import tsx e2e/bench/profile.ts FILE.cpuprofile [N]
if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url) && process.argv[2] !== undefined) {
  process.stdout.write(`${summarizeProfile(process.argv[2], Number(process.argv[3] ?? 15))}\n`);
}
