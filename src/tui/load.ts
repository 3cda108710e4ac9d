// Loads the console with Ink drawing live frames even where CI or CONTINUOUS_INTEGRATION is set.
//
// Ink decides once, when it is first imported, whether it runs "in CI" (the is-in-ci package:
// either variable set and not "0"/"false"); if so it draws nothing until the app exits. That is
// right for a build log and wrong for an operator at a terminal on a machine whose environment
// sets CI — the CI VMs that script mpctl's set-up do, and so does our own CI, where the console
// showed a blank screen for its whole life. The console only ever runs on a terminal (stdin and
// stdout TTYs, checked by its callers), so Ink is imported with both variables hidden and they
// are put back straight after: nothing else in the process, and no child it starts, sees a change.
import type * as ConsoleModule from './console.js';

const CI_VARS = ['CI', 'CONTINUOUS_INTEGRATION'] as const;

export async function loadConsole(): Promise<typeof ConsoleModule> {
  const saved = CI_VARS.map((k) => [k, process.env[k]] as const);
  for (const k of CI_VARS) delete process.env[k];
  try {
    return await import('./console.js');
  } finally {
    for (const [k, v] of saved) if (v !== undefined) process.env[k] = v;
  }
}
