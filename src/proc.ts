// Processes by pid, for the portal record and the lab's namespaces alike.

/**
 * Whether a process exists (signal 0). EPERM means it exists but belongs to someone else (a
 * non-root shell asking about the root portal): alive, not dead.
 */
export const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};
