/**
 * What every benchmark prints first: the machine and its load when the run started, since other
 * work on a shared 2-core machine moves every figure.
 */
import os from 'node:os';

const fmt = (xs: readonly number[]): string => xs.map((x) => x.toFixed(2)).join(' ');

/** One line: cores, CPU model, Node, and the 1/5/15-minute load averages now. */
export function machineLine(): string {
  const cpus = os.cpus();
  return `machine: ${cpus.length} cores (${cpus[0]?.model.trim() ?? 'unknown CPU'}), node ${process.version}, load average at start ${fmt(os.loadavg())}`;
}

/** Prints machineLine() once; call at the top of a benchmark, before any load is made. */
export function printMachine(print: (line: string) => void = console.log): void {
  print(machineLine());
}

/** The load averages now, for a closing line. */
export function loadNow(): string {
  return `load average now ${fmt(os.loadavg())}`;
}
