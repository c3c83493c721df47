/**
 * Last-chance cleanup for resources that outlive a crashed or interrupted test run: clusters
 * and child processes register a synchronous function here and unregister it once they are
 * released normally. The functions run on process exit and on SIGINT/SIGTERM/SIGHUP; only
 * synchronous work is possible at that point (spawnSync, rmSync, process.kill).
 */
export type SyncCleanup = () => void;

const pending = new Set<SyncCleanup>();
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
let installed = false;

function runAll(): void {
  // Newest first: a cluster registered after a process it depends on is released before it.
  const fns = [...pending].reverse();
  pending.clear();
  for (const fn of fns) {
    try {
      fn();
    } catch {
      // Best effort: one failing cleanup must not keep the others from running.
    }
  }
}

function onSignal(signal: NodeJS.Signals): void {
  runAll();
  // If nobody else handles the signal, restore the default action and re-raise it so the
  // process still dies with the conventional status.
  if (process.listenerCount(signal) === 1) {
    for (const s of SIGNALS) process.removeListener(s, onSignal);
    process.kill(process.pid, signal);
  }
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', runAll);
  for (const s of SIGNALS) process.on(s, onSignal);
}

/** Registers `fn` to run at exit or on a terminating signal; returns the function that unregisters it. */
export function onExit(fn: SyncCleanup): () => void {
  install();
  pending.add(fn);
  return () => {
    pending.delete(fn);
  };
}
