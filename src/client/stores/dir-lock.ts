/**
 * An exclusive, pid-based lock on a directory, so only one process writes its files. A lock left by
 * a process that no longer runs is taken over. Without kernel file locks in Node, two processes
 * taking over the same stale lock in the same instant could both succeed; the window is a few
 * system calls at start-up, and the caller is one service started by one supervisor.
 */
import { closeSync, linkSync, openSync, readFileSync, realpathSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export class DirLockedError extends Error {
  override readonly name = 'DirLockedError';
}

const LOCK = 'lock';
/** Directories this process holds: a second open in the same process is refused too. */
const held = new Set<string>();

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readPid(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Takes the lock on `dir` (which must exist) and returns the function that releases it. */
export function lockDir(dir: string): () => void {
  const real = realpathSync(dir);
  if (held.has(real)) throw new DirLockedError(`${dir} is already open in this process (${process.pid})`);
  const lock = join(real, LOCK);
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(lock, 'wx', 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 3) throw e;
    }
    const pid = readPid(lock);
    // Our own pid in a lock we do not hold was left by an earlier process that had the same pid.
    if (pid !== undefined && pid !== process.pid && pidAlive(pid)) {
      throw new DirLockedError(`${dir} is in use by process ${pid}; stop it first`);
    }
    // Move the stale lock aside, then check that what we moved is the stale one and not a lock
    // another process created meanwhile (put that one back and give up).
    const aside = join(real, `${LOCK}.stale.${process.pid}`);
    try {
      renameSync(lock, aside);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw e;
    }
    const moved = readPid(aside);
    if (moved !== pid && moved !== undefined && moved !== process.pid && pidAlive(moved)) {
      try {
        linkSync(aside, lock);
      } catch {
        // someone else holds the path now; either way it is not ours
      }
      rmSync(aside, { force: true });
      throw new DirLockedError(`${dir} is in use by process ${moved}; stop it first`);
    }
    rmSync(aside, { force: true });
  }
  held.add(real);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    held.delete(real);
    if (readPid(lock) === process.pid) rmSync(lock, { force: true });
  };
}
