// Processes by pid, for the portal record and the lab's namespaces alike.

import { readFileSync } from 'node:fs';

/**
 * Whether a process runs (signal 0). EPERM means it exists but belongs to someone else (a
 * non-root shell asking about the root portal): alive, not dead. A process that has exited but
 * that its parent has not reaped yet (a zombie) does not run: a portal or link emulator started
 * detached is init's child, and an init that reaps late (a container's, a CI VM's: seconds
 * here) kept `mpctl down` and `lab down` waiting out their grace periods for processes that had
 * long exited.
 */
export const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  return !exited(pid);
};

/** Has the process exited, unreaped (state Z or X in /proc/<pid>/stat)? */
function exited(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false; // no /proc view of it (another pid namespace): signal 0 said it is there
  }
  const state = stat.charAt(stat.lastIndexOf(')') + 2); // after "pid (comm) "
  return state === 'Z' || state === 'X';
}
