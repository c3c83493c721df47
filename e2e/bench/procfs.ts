/** CPU accounting from /proc: per-process utime+stime and host-wide busy time. */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

let clockTicks: number | undefined;

/** Kernel clock ticks per second (USER_HZ), the unit of /proc/<pid>/stat times. */
export function clkTck(): number {
  if (clockTicks === undefined) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    const n = Number(r.stdout.trim());
    clockTicks = r.status === 0 && Number.isInteger(n) && n > 0 ? n : 100;
  }
  return clockTicks;
}

/**
 * CPU seconds (user + system, all threads) used so far by a process, or undefined if it is gone.
 * Fields 14 and 15 of /proc/<pid>/stat; the command name (field 2) may contain spaces, so the
 * fields are counted from the last ')'.
 */
export function processCpuSeconds(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state), so utime (14) is fields[11] and stime (15) fields[12].
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
  return (utime + stime) / clkTck();
}

/**
 * Involuntary context switches (preemptions) of all the process's threads so far, or undefined:
 * the sidecar relays pass-through sessions on a thread of its own (ADR 0024), so its main
 * thread alone would miss them.
 */
export function processInvoluntarySwitches(pid: number): number | undefined {
  try {
    let n = 0;
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const m = /^nonvoluntary_ctxt_switches:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/task/${task}/status`, 'utf8'));
      if (m !== null) n += Number(m[1]);
    }
    return n;
  } catch {
    return undefined;
  }
}

/** Host-wide CPU time counters from the first line of /proc/stat, in ticks. */
export interface HostCpu {
  busy: number;
  total: number;
  steal: number;
}

export function hostCpu(): HostCpu | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const [label, ...rest] = line.trim().split(/\s+/);
    if (label !== 'cpu') return undefined;
    // user nice system idle iowait irq softirq steal guest guest_nice (guest is included in user).
    const v = rest.slice(0, 8).map(Number);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    const total = v.reduce((a, b) => a + b, 0);
    return { busy: total - idle, total, steal: v[7] ?? 0 };
  } catch {
    return undefined;
  }
}

/** Busy fraction of all CPUs between two samples (0..1), and the steal fraction. */
export function hostBusy(before: HostCpu | undefined, after: HostCpu | undefined): { busy: number; steal: number } {
  if (before === undefined || after === undefined || after.total <= before.total) return { busy: Number.NaN, steal: Number.NaN };
  const total = after.total - before.total;
  return { busy: (after.busy - before.busy) / total, steal: (after.steal - before.steal) / total };
}

/** The three load averages from /proc/loadavg. */
export function loadAverage(): [number, number, number] {
  try {
    const [a, b, c] = readFileSync('/proc/loadavg', 'utf8').trim().split(/\s+/).map(Number);
    return [a ?? Number.NaN, b ?? Number.NaN, c ?? Number.NaN];
  } catch {
    return [Number.NaN, Number.NaN, Number.NaN];
  }
}

/**
 * Tracks the CPU of a process and of the host over an interval: call `start()` then `stop()`.
 */
export class CpuMeter {
  private proc0: number | undefined;
  private csw0: number | undefined;
  private host0: HostCpu | undefined;

  constructor(private readonly pid: number | undefined) {}

  start(): void {
    if (this.pid !== undefined) {
      this.proc0 = processCpuSeconds(this.pid);
      this.csw0 = processInvoluntarySwitches(this.pid);
    }
    this.host0 = hostCpu();
  }

  /**
   * Since start(): CPU seconds and involuntary context switches (preemptions) of the process (NaN without a process), and the host's busy and steal fractions.
   */
  stop(): { processCpuSeconds: number; processPreemptions: number; hostBusy: number; hostSteal: number } {
    const delta = (before: number | undefined, read: (pid: number) => number | undefined): number => {
      const after = this.pid === undefined ? undefined : read(this.pid);
      return before !== undefined && after !== undefined ? after - before : Number.NaN;
    };
    const host = hostBusy(this.host0, hostCpu());
    return {
      processCpuSeconds: delta(this.proc0, processCpuSeconds),
      processPreemptions: delta(this.csw0, processInvoluntarySwitches),
      hostBusy: host.busy,
      hostSteal: host.steal,
    };
  }
}
