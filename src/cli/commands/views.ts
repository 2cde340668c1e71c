/** How each API shape reads in a terminal: one table or key/value block per DTO of src/resource-groups/control.ts. */
import type {
  AccessInfo,
  AliasIp,
  EventRecord,
  JobInfo,
  MirrorInfo,
  NodeInfo,
  PairInfo,
  ResourceGroupInfo,
  SessionInfo,
  VolumeInfo,
} from '../../resource-groups';
import { bytes, keyValues, orDash, percent, printable, table, timestamp, yesNo } from '../output';

export function aliasText(a: AliasIp): string {
  return `${a.address}/${a.prefix}@${a.interface}`;
}

export function mirrorText(m: MirrorInfo): string {
  const progress = m.state === 'resyncing' && m.resyncProgress !== null ? ` ${percent(m.resyncProgress)}` : '';
  const behind = m.state !== 'in-sync' && m.outOfSyncBytes > 0 ? ` (${bytes(m.outOfSyncBytes)} to sync)` : '';
  return `${m.state}${progress}${behind}`;
}

function protocolText(p: NodeInfo['protocol']): string {
  if (!p) return '-';
  const range = p.min === p.max ? `v${p.min}` : `v${p.min}-${p.max}`;
  return p.negotiated === null ? range : `${range} (using v${p.negotiated})`;
}

export function nodesTable(nodes: readonly NodeInfo[]): string {
  return table(nodes, [
    { header: 'NODE', value: (n) => `${n.id}${n.local ? ' *' : ''}` },
    { header: 'STATE', value: (n) => n.state },
    { header: 'MAINTENANCE', value: (n) => yesNo(n.maintenance) },
    { header: 'OWNS', value: (n) => (n.owns.length ? n.owns.join(',') : '-') },
    { header: 'RELEASE', value: (n) => orDash(n.release) },
    { header: 'PROTOCOL', value: (n) => protocolText(n.protocol) },
    { header: 'API', value: (n) => orDash(n.api) },
  ]);
}

export function nodeBlock(n: NodeInfo): string {
  return keyValues([
    ['Node', `${n.id}${n.local ? ' (answering)' : ''}`],
    ['State', n.state],
    ['Maintenance', yesNo(n.maintenance)],
    ['Owns', n.owns.length ? n.owns.join(', ') : '-'],
    ['Release', orDash(n.release)],
    ['Protocol', protocolText(n.protocol)],
    ['API', orDash(n.api)],
  ]);
}

export function pairBlock(p: PairInfo): string {
  const version = `${p.configVersion}${p.peerConfigVersion === null ? ' (peer: unknown)' : p.peerConfigVersion === p.configVersion ? ' (peer: same)' : ` (peer: ${p.peerConfigVersion})`}`;
  const links = p.links.length ? p.links.map((l) => `${l.local} <-> ${l.peer} ${l.up ? 'up' : 'DOWN'}`) : ['-'];
  return keyValues([
    ['Pair', p.state],
    ['Cluster', orDash(p.clusterId)],
    ['Local node', `${p.local.id} (${p.local.state})`],
    ['Peer node', p.peer ? `${p.peer.id} (${p.peer.state})` : '-'],
    ['Config version', version],
    ...links.map((l, i): [string, string] => [i === 0 ? 'Links' : '', l]),
  ]);
}

export function volumesTable(volumes: readonly VolumeInfo[]): string {
  return table(volumes, [
    { header: 'NAME', value: (v) => v.name },
    { header: 'SIZE', value: (v) => bytes(v.sizeBytes), align: 'right' },
    { header: 'THIN', value: (v) => yesNo(v.thin) },
    { header: 'RG', value: (v) => orDash(v.resourceGroup) },
    { header: 'OWNER', value: (v) => orDash(v.owner) },
    { header: 'MIRROR', value: (v) => mirrorText(v.mirror) },
    { header: 'SESSIONS', value: (v) => String(v.sessions), align: 'right' },
    { header: 'IQN', value: (v) => v.iqn },
  ]);
}

export function volumeBlock(v: VolumeInfo): string {
  const urls = v.urls.length ? v.urls : ['-'];
  return keyValues([
    ['Name', v.name],
    ['ID', v.id],
    ['IQN', v.iqn],
    ['Size', `${bytes(v.sizeBytes)} (${v.sizeBytes} bytes)`],
    ['Thin', yesNo(v.thin)],
    ['Block size', String(v.blockSize)],
    ['Resource group', orDash(v.resourceGroup)],
    ['Owner', orDash(v.owner)],
    ['Mirror', mirrorText(v.mirror)],
    ['Sync source', orDash(v.mirror.syncSource)],
    ['Sessions', String(v.sessions)],
    ...urls.map((u, i): [string, string] => [i === 0 ? 'URLs' : '', u]),
  ]);
}

export function groupsTable(groups: readonly ResourceGroupInfo[]): string {
  return table(groups, [
    { header: 'NAME', value: (g) => g.name },
    { header: 'STATE', value: (g) => g.state },
    { header: 'OWNER', value: (g) => orDash(g.owner) },
    { header: 'PREFERRED', value: (g) => g.preferredNode },
    { header: 'FAILBACK', value: (g) => g.failback },
    { header: 'ALIAS IPS', value: (g) => (g.aliasIps.length ? g.aliasIps.map(aliasText).join(',') : '-') },
    { header: 'VOLUMES', value: (g) => (g.volumes.length ? g.volumes.join(',') : '-') },
  ]);
}

export function groupBlock(g: ResourceGroupInfo): string {
  const aliases = g.aliasIps.length ? g.aliasIps.map(aliasText) : ['-'];
  return keyValues([
    ['Name', g.name],
    ['State', g.state],
    ['Owner', orDash(g.owner)],
    ['Preferred node', g.preferredNode],
    ['Failback', g.failback],
    ...aliases.map((a, i): [string, string] => [i === 0 ? 'Alias IPs' : '', a]),
    ['Volumes', g.volumes.length ? g.volumes.join(', ') : '-'],
  ]);
}

export function accessBlock(a: AccessInfo): string {
  const initiators = a.allowedInitiators === null ? ['any'] : a.allowedInitiators.length ? a.allowedInitiators : ['none'];
  return keyValues([
    ['Volume', a.volume],
    ...initiators.map((iqn, i): [string, string] => [i === 0 ? 'Initiators' : '', iqn]),
    ['CHAP', a.chap ? `user ${a.chap.user} (secret set)` : 'off'],
    ['Mutual CHAP', a.mutualChap ? `user ${a.mutualChap.user} (secret set)` : 'off'],
  ]);
}

export function sessionsTable(sessions: readonly SessionInfo[]): string {
  return table(sessions, [
    { header: 'NODE', value: (s) => s.node },
    { header: 'VOLUME', value: (s) => s.volume },
    { header: 'INITIATOR', value: (s) => s.initiator },
    { header: 'PORTAL', value: (s) => s.portal },
    { header: 'REMOTE', value: (s) => s.remote },
    { header: 'CONNS', value: (s) => String(s.connections), align: 'right' },
    { header: 'SINCE', value: (s) => timestamp(s.since) },
  ]);
}

export function jobsTable(jobs: readonly JobInfo[]): string {
  return table(jobs, [
    { header: 'ID', value: (j) => j.id },
    { header: 'KIND', value: (j) => j.kind },
    { header: 'SUBJECT', value: (j) => j.subject },
    { header: 'STATE', value: (j) => j.state },
    { header: 'PROGRESS', value: (j) => percent(j.progress), align: 'right' },
    { header: 'STARTED', value: (j) => timestamp(j.startedAt) },
    { header: 'FINISHED', value: (j) => timestamp(j.finishedAt) },
    { header: 'ERROR', value: (j) => orDash(j.error) },
  ]);
}

export function jobBlock(j: JobInfo): string {
  const result = j.result === null ? [] : Object.entries(j.result).map(([k, v]): [string, string] => [`  ${k}`, JSON.stringify(v) ?? String(v)]);
  return keyValues([
    ['Job', j.id],
    ['Kind', j.kind],
    ['Subject', j.subject],
    ['State', j.state],
    ['Progress', percent(j.progress)],
    ['Started', timestamp(j.startedAt)],
    ['Finished', timestamp(j.finishedAt)],
    ['Error', orDash(j.error)],
    ...(result.length ? ([['Result', ''], ...result] as [string, string][]) : []),
  ]);
}

export function eventsTable(events: readonly EventRecord[]): string {
  return table(events, [
    { header: 'SEQ', value: (e) => String(e.seq), align: 'right' },
    { header: 'TIME', value: (e) => timestamp(e.at) },
    { header: 'NODE', value: (e) => e.node },
    { header: 'KIND', value: (e) => e.kind },
    { header: 'SUBJECT', value: (e) => orDash(e.subject) },
    { header: 'MESSAGE', value: (e) => e.message },
  ]);
}

/** One event as one line, for --follow (a table cannot be aligned before the rows exist). */
export function eventLine(e: EventRecord): string {
  return printable(`${timestamp(e.at)}  #${e.seq}  ${e.node}  ${e.kind}${e.subject ? ` ${e.subject}` : ''}: ${e.message}`);
}
