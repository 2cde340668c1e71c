// Rendering: plain DOM built with textContent (never innerHTML), so names
// and messages from the API cannot inject markup.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function formatBytes(bytes) {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(value >= 10 ? 0 : 1)} ${UNITS[unit]}`;
}

function stateCell(state) {
  return el('td', {}, el('span', { class: `state-${state}` }, state));
}

function fillBody(table, rows, columns) {
  const body = table.tBodies[0];
  body.replaceChildren(...(rows.length > 0 ? rows : [el('tr', {}, el('td', { class: 'empty', colspan: columns }, 'none'))]));
}

export function renderPair(target, summary, pair) {
  const peer = pair.peer === null ? 'none' : `${pair.peer.id} (${pair.peer.state})`;
  const links = pair.links.map((l) => `${l.local} ↔ ${l.peer} ${l.up ? 'up' : 'down'}`).join(', ') || 'none';
  const version = pair.peerConfigVersion === null ? `${pair.configVersion}` : `${pair.configVersion} here, ${pair.peerConfigVersion} on the peer`;
  const rows = [
    ['State', el('span', { class: `state-${pair.state}` }, pair.state)],
    ['Cluster', pair.clusterId],
    ['This node', pair.local.id],
    ['Peer', peer],
    ['Configuration version', version],
    ['Replication links', links],
  ];
  target.replaceChildren(...rows.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
  summary.textContent = `${pair.local.id}${pair.peer ? ` + ${pair.peer.id}` : ''} · ${pair.state}`;
}

export function renderNodes(table, nodes, actions) {
  const rows = nodes.map((n) => {
    const button = n.maintenance
      ? el('button', { type: 'button', dataset: { action: 'maintenance-exit', node: n.id }, onclick: () => actions.exitMaintenance(n.id) }, 'End maintenance')
      : el('button', { type: 'button', dataset: { action: 'maintenance-enter', node: n.id }, onclick: () => actions.enterMaintenance(n.id) }, 'Maintenance');
    const protocol = n.protocol === null ? '' : `v${n.protocol.min}-${n.protocol.max}${n.protocol.negotiated === null ? '' : ` (using v${n.protocol.negotiated})`}`;
    return el('tr', { dataset: { node: n.id } },
      el('td', {}, n.id, n.local ? el('span', { class: 'muted' }, ' (this node)') : null),
      stateCell(n.state),
      el('td', {}, n.api ?? ''),
      el('td', {}, n.release ?? ''),
      el('td', {}, protocol),
      el('td', {}, n.owns.join(', ')),
      el('td', {}, button));
  });
  fillBody(table, rows, 7);
}

export function renderGroups(table, groups, actions) {
  const rows = groups.map((g) => el('tr', { dataset: { rg: g.name } },
    el('td', {}, g.name),
    el('td', { class: 'owner' }, g.owner ?? '—'),
    el('td', {}, g.preferredNode),
    el('td', {}, g.aliasIps.map((ip) => `${ip.address}/${ip.prefix} on ${ip.interface}`).join(', ')),
    el('td', {}, g.volumes.join(', ')),
    stateCell(g.state),
    el('td', {}, g.failback),
    el('td', {},
      el('button', { type: 'button', dataset: { action: 'move', rg: g.name }, onclick: () => actions.move(g.name) }, 'Move'),
      el('button', { type: 'button', dataset: { action: 'failback', rg: g.name }, disabled: g.owner === g.preferredNode, onclick: () => actions.failback(g.name) }, 'Failback'))));
  fillBody(table, rows, 8);
}

export function renderVolumes(table, volumes) {
  const rows = volumes.map((v) => {
    const progress = v.mirror.resyncProgress;
    const resync = progress === null
      ? el('span', { class: 'muted' }, v.mirror.outOfSyncBytes > 0 ? `${formatBytes(v.mirror.outOfSyncBytes)} behind` : '')
      : el('span', {}, el('progress', { max: 1, value: progress, title: `${Math.round(progress * 100)}%` }), ` ${Math.round(progress * 100)}%`);
    return el('tr', { dataset: { volume: v.name } },
      el('td', {}, v.name),
      el('td', {}, formatBytes(v.sizeBytes), v.thin ? el('span', { class: 'muted' }, ' thin') : null),
      el('td', {}, v.resourceGroup ?? el('span', { class: 'muted' }, 'none')),
      el('td', {}, v.owner ?? '—'),
      stateCell(v.mirror.state),
      el('td', {}, resync),
      el('td', {}, String(v.sessions)),
      el('td', { class: 'muted' }, v.iqn));
  });
  fillBody(table, rows, 8);
}

export function renderSessions(table, sessions) {
  const rows = sessions.map((s) => el('tr', {},
    el('td', {}, s.initiator),
    el('td', {}, s.volume),
    el('td', {}, s.node),
    el('td', {}, s.portal),
    el('td', {}, s.remote),
    el('td', {}, String(s.connections)),
    el('td', {}, new Date(s.since).toLocaleString())));
  fillBody(table, rows, 7);
}

const MAX_JOBS = 20;
const JOB_STATE_CLASS = { running: 'resyncing', done: 'in-sync', failed: 'failed' };

export function renderJobs(table, jobs) {
  const recent = [...jobs].sort((a, b) => b.startedAt.localeCompare(a.startedAt)).slice(0, MAX_JOBS);
  const rows = recent.map((j) => el('tr', { dataset: { job: j.id } },
    el('td', {}, j.id),
    el('td', {}, j.kind),
    el('td', {}, j.subject),
    el('td', {}, el('span', { class: `state-${JOB_STATE_CLASS[j.state] ?? j.state}` }, j.state)),
    el('td', {}, el('progress', { max: 1, value: j.progress }), ` ${Math.round(j.progress * 100)}%`),
    el('td', {}, new Date(j.startedAt).toLocaleString()),
    el('td', { class: 'error' }, j.error ?? '')));
  fillBody(table, rows, 7);
}

const MAX_EVENTS = 200;

export function addEvent(list, event) {
  const item = el('li', { value: event.seq, dataset: { seq: event.seq } },
    el('span', { class: 'muted' }, `${new Date(event.at).toLocaleTimeString()} ${event.node} `),
    el('strong', {}, event.kind),
    ` ${event.message}`);
  list.prepend(item);
  while (list.children.length > MAX_EVENTS) list.lastElementChild.remove();
}
