// The dashboard: asks for the token (kept in sessionStorage, this tab
// only), then shows the pair and keeps it fresh: a poll every few seconds
// and a refresh soon after each live event. Actions ask for confirmation.
import { Api, ApiError } from './api.js';
import { addEvent, renderGroups, renderJobs, renderNodes, renderPair, renderSessions, renderVolumes } from './views.js';

const TOKEN_KEY = 'twinsan.token';
const POLL_MS = 5000;
const RECONNECT_MS = 2000;

const $ = (id) => document.getElementById(id);

let api = null;
let pollTimer = null;
let refreshSoon = null;
let streamAbort = null;
let lastSeq = null;

function showLogin(message = '') {
  stop();
  sessionStorage.removeItem(TOKEN_KEY);
  $('dashboard').hidden = true;
  $('logout').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message;
  $('token').value = '';
  $('token').focus();
}

function stop() {
  api = null;
  clearInterval(pollTimer);
  clearTimeout(refreshSoon);
  streamAbort?.abort();
  streamAbort = null;
}

function setStatus(text, isError = false) {
  $('status').textContent = text;
  $('status').className = isError ? 'error' : 'muted';
}

function failed(err) {
  if (err instanceof ApiError && err.status === 401) {
    showLogin('The token was refused (it may have been rotated).');
    return;
  }
  setStatus(err.message, true);
}

async function refresh() {
  if (api === null) return;
  const current = api;
  try {
    const [pair, nodes, groups, volumes, sessions, jobs] = await Promise.all([
      current.get('/api/v1/pair'),
      current.get('/api/v1/nodes'),
      current.get('/api/v1/resource-groups'),
      current.get('/api/v1/volumes'),
      current.get('/api/v1/sessions'),
      current.get('/api/v1/jobs'),
    ]);
    if (api !== current) return;
    renderPair($('pair'), $('pair-summary'), pair);
    renderNodes($('nodes'), nodes, actions);
    renderGroups($('resource-groups'), groups, actions);
    renderVolumes($('volumes'), volumes);
    renderSessions($('sessions'), sessions);
    renderJobs($('jobs'), jobs);
    document.body.dataset.loaded = 'true';
  } catch (err) {
    failed(err);
  }
}

function scheduleRefresh() {
  clearTimeout(refreshSoon);
  refreshSoon = setTimeout(refresh, 300);
}

function confirmAction(text) {
  const dialog = $('confirm');
  $('confirm-text').textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'yes'), { once: true });
    dialog.returnValue = '';
    dialog.showModal();
  });
}

async function act(question, doing, run) {
  if (!(await confirmAction(question))) return;
  setStatus(`${doing}…`);
  try {
    const result = await run();
    // Maintenance answers a job that keeps running; moves answer when done.
    const job = result !== null && typeof result === 'object' && 'kind' in result && 'progress' in result ? result : null;
    setStatus(job === null ? `${doing}: done` : `${doing}: job ${job.id} started (see Jobs)`);
  } catch (err) {
    failed(err);
  }
  await refresh();
}

const actions = {
  move: (rg) => act(`Move resource group ${rg} to the other node? Its initiators pause briefly.`, `Moving ${rg}`, () => api.post(`/api/v1/resource-groups/${encodeURIComponent(rg)}/move`)),
  failback: (rg) => act(`Move resource group ${rg} back to its preferred node?`, `Failing back ${rg}`, () => api.post(`/api/v1/resource-groups/${encodeURIComponent(rg)}/failback`)),
  enterMaintenance: (node) => act(`Put node ${node} in maintenance? Every resource group it owns moves to the peer.`, `Evacuating ${node}`, () => api.post(`/api/v1/nodes/${encodeURIComponent(node)}/maintenance`)),
  exitMaintenance: (node) => act(`End maintenance on node ${node}? Its resource groups fail back once resynced.`, `Ending maintenance on ${node}`, () => api.delete(`/api/v1/nodes/${encodeURIComponent(node)}/maintenance`)),
};

async function followEvents() {
  const current = api;
  while (api === current && current !== null) {
    streamAbort = new AbortController();
    try {
      $('events-state').textContent = '(live)';
      await current.streamEvents(lastSeq, (event) => {
        lastSeq = event.seq;
        addEvent($('events'), event);
        scheduleRefresh();
      }, streamAbort.signal);
    } catch (err) {
      if (err.name === 'AbortError') return;
      if (err instanceof ApiError && err.status === 401) return failed(err);
    }
    $('events-state').textContent = '(reconnecting)';
    await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
  }
}

async function start(token) {
  stop();
  const candidate = new Api(token);
  try {
    await candidate.get('/api/v1/pair');
  } catch (err) {
    showLogin(err instanceof ApiError && err.status === 401 ? 'That token was refused.' : err.message);
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  api = candidate;
  $('login').hidden = true;
  $('dashboard').hidden = false;
  $('logout').hidden = false;
  setStatus('');
  try {
    // Pages run oldest first: read forward to the newest (the list keeps the last 200).
    $('events').replaceChildren();
    lastSeq = 0;
    for (let page = 0; page < 20; page++) {
      const batch = await api.get(`/api/v1/events?after=${lastSeq}&limit=1000`);
      for (const event of batch) {
        addEvent($('events'), event);
        lastSeq = event.seq;
      }
      if (batch.length < 1000) break;
    }
  } catch (err) {
    failed(err);
  }
  await refresh();
  pollTimer = setInterval(refresh, POLL_MS);
  followEvents();
}

$('login-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const token = $('token').value.trim();
  if (token !== '') start(token);
});
$('logout').addEventListener('click', () => showLogin());

const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) start(saved);
else showLogin();
