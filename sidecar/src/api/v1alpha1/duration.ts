/**
 * Kubernetes-style duration strings (`10m`, `1h30m`, `90s`, `500ms`): what `metav1.Duration`
 * accepts, restricted to the units that make sense for an approval timeout.
 */

/** One or more `<digits><unit>` groups, units h, m, s, ms; no sign, no fractions, no spaces. */
export const DURATION_PATTERN = '^([0-9]+(h|m|s|ms))+$';

const DURATION_RE = new RegExp(DURATION_PATTERN);
const GROUP_RE = /([0-9]+)(h|ms|m|s)/g;
const UNIT_MS: Readonly<Record<string, number>> = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1 };

/** Milliseconds of a duration string, or undefined when it does not match {@link DURATION_PATTERN}. */
export function parseDurationMs(text: string): number | undefined {
  if (!DURATION_RE.test(text)) return undefined;
  let total = 0;
  for (const match of text.matchAll(GROUP_RE)) {
    const unit = UNIT_MS[match[2] ?? ''];
    if (unit === undefined) return undefined;
    total += Number(match[1]) * unit;
  }
  return Number.isSafeInteger(total) ? total : undefined;
}

/** The shortest duration string for a whole number of milliseconds (`600000` → `10m`). */
export function formatDurationMs(ms: number): string {
  if (ms === 0) return '0s';
  let rest = ms;
  let text = '';
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1_000], ['ms', 1]] as const) {
    const count = Math.floor(rest / size);
    if (count > 0) text += `${count}${unit}`;
    rest -= count * size;
  }
  return text;
}
