/** The bridged LAN of src/cli/lab/lan.ts with test namespace names: tsan-<run id>-sw, tsan-<run id>-<station>. */
import { Lan, StationSpec, createLan as createLabLan } from '../../../src/cli/lab/lan';
import { LAB_PREFIX } from './netns';

export { STATION_IFNAME, Station } from '../../../src/cli/lab/lan';
export type { Lan, Neighbour, StationSpec } from '../../../src/cli/lab/lan';

/** Builds the LAN for run `runId` (newRunId()); its namespaces are deleted at exit if not destroyed before. */
export function createLan(runId: string, specs: readonly StationSpec[]): Promise<Lan> {
  return createLabLan(`${LAB_PREFIX}${runId}`, specs);
}
