/**
 * PERSISTENT RESERVE OUT (SPC-4 6.16), one table row per service action.
 * This file reads the CDB and the parameter list; the service actions
 * themselves are reservations/persistent-out.ts.
 *
 * CDB: SCOPE and TYPE (byte 2) are checked for RESERVE, RELEASE, PREEMPT
 * and PREEMPT AND ABORT (only LU_SCOPE, the six types) and ignored by the
 * others; PARAMETER LIST LENGTH (bytes 5..8).
 *
 * Parameter list: 24 bytes (RESERVATION KEY, SERVICE ACTION RESERVATION
 * KEY, SPEC_I_PT / ALL_TG_PT / APTPL in byte 20), or with SPEC_I_PT=1
 * (REGISTER only) 28 + a TRANSPORTID PARAMETER DATA LENGTH of
 * TransportIDs; REGISTER AND MOVE has its own layout (UNREG / APTPL in
 * byte 17, RELATIVE TARGET PORT IDENTIFIER, one TransportID). A length that
 * does not fit the layout is PARAMETER LIST LENGTH ERROR.
 *
 * PREEMPT AND ABORT: once the registrations are gone, the tasks of the
 * preempted I_T nexuses are aborted through ScsiTargetDevice.abortTasks()
 * (the transport's onAbortTasks hook) before the command completes.
 */
import { CommandRow, DataDirection, luCommand, ReservationClass } from './command-table';
import { flatten } from './data';
import { invalidCdbField, invalidParameterField, ScsiFailure } from './failures';
import { Opcode } from './opcodes';
import {
  ListedInitiator,
  parseTransportId,
  PR_SCOPE_LU,
  PR_TYPES,
  ProutAction,
  ProutField,
  ProutRequest,
  PrType,
  ReservationKey,
  sameProtocol,
} from './reservations';
import { ScsiStatus } from './types';

/** The basic parameter list. */
export const PROUT_PARAMETER_LIST_LENGTH = 24;
/** Where SPEC_I_PT's TRANSPORTID PARAMETER DATA LENGTH and REGISTER AND MOVE's TransportID data start. */
const SPEC_I_PT_HEADER_LENGTH = 28;
const MOVE_HEADER_LENGTH = 24;
/** The longest parameter list accepted (about a thousand TransportIDs). */
export const MAX_PROUT_PARAMETER_LIST_LENGTH = 64 * 1024;

const Flag = { SPEC_I_PT: 0x08, ALL_TG_PT: 0x04, APTPL: 0x01, UNREG: 0x02 } as const;

interface ProutCdb {
  readonly action: ProutAction;
  readonly type: number;
  readonly scope: number;
  readonly parameterListLength: number;
}

/** Service actions whose SCOPE and TYPE fields are used. */
const TYPED_ACTIONS: ReadonlySet<number> = new Set([ProutAction.RESERVE, ProutAction.RELEASE, ProutAction.PREEMPT, ProutAction.PREEMPT_AND_ABORT]);

export function parseProutCdb(cdb: Buffer, action: ProutAction): ProutCdb {
  const scope = cdb[2]! >> 4;
  const type = cdb[2]! & 0x0f;
  if (TYPED_ACTIONS.has(action)) {
    if (scope !== PR_SCOPE_LU) throw invalidCdbField(2, 7);
    if (!PR_TYPES.has(type)) throw invalidCdbField(2, 3);
  }
  const parameterListLength = cdb.readUInt32BE(5);
  if (parameterListLength > MAX_PROUT_PARAMETER_LIST_LENGTH) throw invalidCdbField(5, 7);
  if (parameterListLength < PROUT_PARAMETER_LIST_LENGTH) throw new ScsiFailure('parameter-list-length-error');
  return { action, type, scope, parameterListLength };
}

function lengthError(): ScsiFailure {
  return new ScsiFailure('parameter-list-length-error');
}

const keyAt = (data: Buffer, at: number): ReservationKey => data.toString('hex', at, at + 8);

/** TransportIDs from `at` to `end`; each must be of the requester's protocol. */
function listedInitiators(data: Buffer, at: number, end: number, requester: string): ListedInitiator[] {
  const out: ListedInitiator[] = [];
  while (at < end) {
    const parsed = parseTransportId(data, at, end);
    if (!sameProtocol(parsed.initiator, requester)) throw invalidParameterField(at, 3);
    out.push({ initiator: parsed.initiator, offset: at });
    at += parsed.length;
  }
  return out;
}

/** The parameter list as a request for reservations/persistent-out.ts. */
export function parseProutParameters(cmd: ProutCdb, data: Buffer, requester: string): ProutRequest {
  const key = keyAt(data, ProutField.RESERVATION_KEY);
  const serviceActionKey = keyAt(data, ProutField.SERVICE_ACTION_RESERVATION_KEY);
  if (cmd.action === ProutAction.REGISTER_AND_MOVE) {
    const flags = data[ProutField.MOVE_FLAGS]!;
    const relativeTargetPortId = data.readUInt16BE(ProutField.MOVE_RELATIVE_TARGET_PORT_ID);
    const transportIdLength = data.readUInt32BE(20);
    if (MOVE_HEADER_LENGTH + transportIdLength !== data.length) throw lengthError();
    if (relativeTargetPortId === 0) throw invalidParameterField(ProutField.MOVE_RELATIVE_TARGET_PORT_ID, 7);
    const [destination, ...extra] = listedInitiators(data, MOVE_HEADER_LENGTH, data.length, requester);
    if (!destination) throw invalidParameterField(20, 7);
    if (extra.length > 0) throw invalidParameterField(extra[0]!.offset, 7);
    return {
      action: cmd.action,
      key,
      serviceActionKey,
      aptpl: (flags & Flag.APTPL) !== 0,
      unregister: (flags & Flag.UNREG) !== 0,
      relativeTargetPortId,
      destination,
    };
  }
  const flags = data[ProutField.FLAGS]!;
  const specIPt = (flags & Flag.SPEC_I_PT) !== 0;
  if (specIPt && cmd.action !== ProutAction.REGISTER) throw invalidParameterField(ProutField.FLAGS, 3);
  let specifiedInitiators: ListedInitiator[] | null = null;
  if (specIPt) {
    if (data.length < SPEC_I_PT_HEADER_LENGTH) throw lengthError();
    if (SPEC_I_PT_HEADER_LENGTH + data.readUInt32BE(24) !== data.length) throw lengthError();
    specifiedInitiators = listedInitiators(data, SPEC_I_PT_HEADER_LENGTH, data.length, requester);
  } else if (data.length !== PROUT_PARAMETER_LIST_LENGTH) {
    throw lengthError();
  }
  switch (cmd.action) {
    case ProutAction.REGISTER:
    case ProutAction.REGISTER_AND_IGNORE_EXISTING_KEY:
      return {
        action: cmd.action,
        key,
        serviceActionKey,
        aptpl: (flags & Flag.APTPL) !== 0,
        allTargetPorts: (flags & Flag.ALL_TG_PT) !== 0,
        specifiedInitiators,
      };
    case ProutAction.RESERVE:
    case ProutAction.RELEASE:
      return { action: cmd.action, key, type: cmd.type as PrType, scope: cmd.scope };
    case ProutAction.CLEAR:
      return { action: cmd.action, key };
    case ProutAction.PREEMPT:
    case ProutAction.PREEMPT_AND_ABORT:
      return { action: cmd.action, key, serviceActionKey, type: cmd.type as PrType, scope: cmd.scope };
  }
}

const NAMES: Readonly<Record<ProutAction, string>> = {
  [ProutAction.REGISTER]: 'REGISTER',
  [ProutAction.RESERVE]: 'RESERVE',
  [ProutAction.RELEASE]: 'RELEASE',
  [ProutAction.CLEAR]: 'CLEAR',
  [ProutAction.PREEMPT]: 'PREEMPT',
  [ProutAction.PREEMPT_AND_ABORT]: 'PREEMPT AND ABORT',
  [ProutAction.REGISTER_AND_IGNORE_EXISTING_KEY]: 'REGISTER AND IGNORE EXISTING KEY',
  [ProutAction.REGISTER_AND_MOVE]: 'REGISTER AND MOVE',
};

function proutRow(action: ProutAction): CommandRow {
  const op = Opcode.PERSISTENT_RESERVE_OUT;
  return luCommand<ProutCdb>({
    name: `PERSISTENT RESERVE OUT / ${NAMES[action]}`,
    opcode: op,
    serviceAction: action,
    cdbLength: 10,
    direction: DataDirection.OUT,
    reservation: ReservationClass.ALLOWED,
    usage: [op, action, TYPED_ACTIONS.has(action) ? 0x0f : 0x00, 0, 0, 0xff, 0xff, 0xff, 0xff, 0],
    parse: (cdb) => parseProutCdb(cdb, action),
    dataOutLength: (cmd) => cmd.parameterListLength,
    execute: async (cmd, ctx, dataOut) => {
      const requester = ctx.lu.reservations.observe(ctx.cmd.nexus).initiator;
      const req = parseProutParameters(cmd, flatten(dataOut), requester);
      const result = await ctx.lu.reservations.persistentReserveOut(ctx.cmd.nexus, req);
      if (result.conflict) return { status: ScsiStatus.RESERVATION_CONFLICT };
      if (result.abortNexusKeys.length > 0) await ctx.device.abortTasks(ctx.cmd.lun, result.abortNexusKeys);
      return {};
    },
  });
}

export const PERSISTENT_RESERVE_OUT_ROWS: readonly CommandRow[] = (Object.values(ProutAction) as ProutAction[]).map(proutRow);
