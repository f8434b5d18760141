// netshare web UI. Plain JavaScript, no dependencies and no build step: the
// daemon embeds this file. Every screen reads the daemon's API (/v1/...),
// the same one the CLI and the Go client use, and reads it again when the
// daemon's event stream says that something changed.

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const toastEl = document.getElementById('toast');
const logoutBtn = document.getElementById('logout');

const ui = {
  csrf: '',
  events: null,
  renderSeq: 0,
  servicesConn: '', // the connection the Services screen shows
  filter: '',       // the Services screen's filter
};

// MAX_ROWS bounds the rows a list draws; the filter finds the others.
const MAX_ROWS = 500;

// ---- small helpers ---------------------------------------------------------

// h builds an element: h('button', {class: 'primary', onclick: f}, 'OK').
// Text is always set as text, never parsed as HTML.
function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'checked' || k === 'value' || k === 'selected') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

let toastTimer = 0;
function toast(text, bad = false) {
  toastEl.textContent = text;
  toastEl.classList.toggle('bad', bad);
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { toastEl.textContent = ''; }, bad ? 8000 : 4000);
}

// ApiError is an error answer of the API: {code, reason, field, message}.
class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
    this.field = (body && body.field) || fieldOf(this.message);
  }
}

// fieldOf reads the field from a message of the form "field: why".
function fieldOf(message) {
  const m = /^([A-Za-z]+): /.exec(message || '');
  return m ? m[1] : '';
}

async function api(method, path, body) {
  return (await apiAnswer(method, path, body)).data;
}

// apiAnswer is api with the answer's Link header: a list read a page at
// a time names the next page there.
async function apiAnswer(method, path, body) {
  const opts = { method, headers: {}, credentials: 'same-origin' };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  if (method !== 'GET') opts.headers['X-Netshare-CSRF'] = ui.csrf;
  const r = await fetch(path, opts);
  if (r.status === 204) return { data: null, link: '' };
  const data = await r.json().catch(() => null);
  if (r.status === 401) {
    showLogin('Your session has ended: log in again.');
    throw new ApiError(r.status, data);
  }
  if (!r.ok) throw new ApiError(r.status, data);
  return { data, link: r.headers.get('Link') || '' };
}

const enc = encodeURIComponent;

const STATUS = {
  'connected': 'Connected',
  'disconnected': 'Disconnected',
  'media-disconnected': 'Cable unplugged',
  'hardware-disabled': 'Disabled',
  'hardware-not-present': 'Device missing',
  'invalid-address': 'No valid address',
};
const MEDIA = { lan: 'LAN', none: 'None', tunnel: 'Tunnel', pppoe: 'PPPoE', bridge: 'Bridge' };

function statusEl(c) {
  return h('span', { class: `status ${c.status}` }, STATUS[c.status] || c.status);
}

function badges(c) {
  return h('div', { class: 'badges' },
    c.sharing.enabled && c.sharing.type === 'public' && h('span', { class: 'badge public' }, 'Shared (public)'),
    c.sharing.enabled && c.sharing.type === 'private' && h('span', { class: 'badge private' }, `Private network ${c.sharing.address || ''}`),
    c.firewallEnabled && h('span', { class: 'badge firewall' }, c.allowPing ? 'Firewall (ping allowed)' : 'Firewall'),
    !c.sharing.enabled && !c.firewallEnabled && h('span', { class: 'badge' }, 'Not shared'));
}

// ---- dialogs ---------------------------------------------------------------

// dialog shows a modal dialog built by build(close), and resolves with what
// close is given (undefined for Escape or Cancel). Focus goes back to where
// it was.
function dialog(title, build) {
  return new Promise((resolve) => {
    const back = document.activeElement;
    const id = 'dialog-title-' + Math.random().toString(36).slice(2);
    const d = h('dialog', { 'aria-labelledby': id });
    let result;
    const close = (v) => { result = v; d.close(); };
    d.append(h('h2', { id }, title), build(close));
    d.addEventListener('close', () => {
      d.remove();
      if (back && back.isConnected) back.focus();
      resolve(result);
    });
    document.body.append(d);
    d.showModal();
  });
}

function confirmDialog(title, text, okLabel, danger = false) {
  return dialog(title, (close) => h('form', {
    onsubmit: (e) => { e.preventDefault(); close(true); },
  },
  h('p', {}, text),
  h('div', { class: 'actions' },
    h('button', { type: 'submit', class: danger ? 'danger' : 'primary', autofocus: true }, okLabel),
    h('button', { type: 'button', onclick: () => close(false) }, 'Cancel'))));
}

// field makes a labelled input with a place for its error.
function field(id, label, props = {}, hint = '') {
  const errId = id + '-error';
  const hintId = hint ? id + '-hint' : null;
  return [
    h('label', { for: id }, label),
    h('input', { id, name: id, type: 'text', autocomplete: 'off', 'aria-describedby': [hintId, errId].filter(Boolean).join(' '), ...props }),
    hint && h('p', { class: 'hint', id: hintId }, hint),
    h('p', { class: 'error', id: errId }),
  ];
}

// showErrors puts err's message next to the input its field names (map:
// API field -> input id), or in the form's general error place.
function showErrors(form, err, map, generalId) {
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  for (const el of form.querySelectorAll('.error')) el.textContent = '';
  if (!err) return;
  const id = map[err.field];
  const input = id && form.querySelector('#' + id);
  if (input) {
    input.setAttribute('aria-invalid', 'true');
    form.querySelector('#' + id + '-error').textContent = err.message;
    input.focus();
  } else {
    form.querySelector('#' + generalId).textContent = err.message;
  }
}

// ---- login -----------------------------------------------------------------

function showLogin(message = '') {
  closeEvents();
  nav.hidden = true;
  logoutBtn.hidden = true;
  const form = h('form', { class: 'login', onsubmit: async (e) => {
    e.preventDefault();
    const ok = await login(form.querySelector('#token').value, form);
    if (ok) start();
  } },
  h('h1', {}, 'Log in to netshare'),
  h('p', {}, 'Open the link that ', h('code', {}, 'netshare ui url'), ' prints, or paste its token here.'),
  field('token', 'Token', { type: 'password', autocomplete: 'current-password', required: true }),
  h('p', { class: 'error', id: 'login-error' }, message),
  h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Log in')));
  main.replaceChildren(form);
  document.title = 'Log in · netshare';
  form.querySelector('#token').focus();
}

async function login(token, form) {
  const r = await fetch('/ui/login', {
    method: 'POST', credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ token }),
  });
  const data = await r.json().catch(() => null);
  if (!r.ok) {
    const err = new ApiError(r.status, data);
    if (form) showErrors(form, err, { token: 'token' }, 'login-error');
    else showLogin(err.message);
    return false;
  }
  ui.csrf = data.csrf;
  return true;
}

logoutBtn.addEventListener('click', async () => {
  await api('POST', '/ui/logout').catch(() => {});
  ui.csrf = '';
  showLogin('Logged out.');
});

// ---- the app ---------------------------------------------------------------

async function start() {
  if (location.pathname === '/login') {
    // The login link: /login#token=... The token stays in the fragment,
    // which no browser sends to a server; drop it from the address bar.
    const m = /token=([^&]+)/.exec(location.hash);
    history.replaceState(null, '', '/#/connections');
    if (m && !(await login(decodeURIComponent(m[1])))) return;
  }
  if (!ui.csrf) {
    const r = await fetch('/ui/session', { credentials: 'same-origin' });
    if (!r.ok) { showLogin(); return; }
    ui.csrf = (await r.json()).csrf;
  }
  nav.hidden = false;
  logoutBtn.hidden = false;
  openEvents();
  render(true);
}

function openEvents() {
  closeEvents();
  const es = new EventSource('/ui/events');
  es.addEventListener('change', () => render(false));
  es.addEventListener('error', async () => {
    if (es.readyState !== EventSource.CLOSED) return; // it reconnects by itself
    const r = await fetch('/ui/session', { credentials: 'same-origin' }).catch(() => null);
    if (r && r.status === 401) showLogin('Your session has ended: log in again.');
    else setTimeout(() => { if (ui.events === es) openEvents(); }, 2000);
  });
  ui.events = es;
}

function closeEvents() {
  if (ui.events) ui.events.close();
  ui.events = null;
}

window.addEventListener('hashchange', () => render(true));

function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  const view = VIEWS[parts[0]] ? parts[0] : 'connections';
  return { view, arg: parts[1] || '' };
}

// render draws the current screen. A navigation (fresh) moves focus to the
// screen; a refresh (an action, or the event stream) keeps focus where it
// was and keeps what the user typed in a form not yet applied.
async function render(fresh) {
  const { view, arg } = route();
  const seq = ++ui.renderSeq;
  for (const a of nav.querySelectorAll('a')) {
    if (a.dataset.view === view) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  let content;
  try {
    content = await VIEWS[view](arg);
  } catch (err) {
    if (err.status === 401) return;
    content = h('p', { class: 'error', role: 'alert' }, `Could not read the daemon's state: ${err.message}`);
  }
  if (seq !== ui.renderSeq) return; // a newer render is under way
  const focusId = document.activeElement && main.contains(document.activeElement) ? document.activeElement.id : '';
  const kept = fresh ? [] : [...main.querySelectorAll('form[data-dirty] input, form[data-dirty] select')]
    .filter((el) => el.id)
    .map((el) => [el.id, el.type === 'checkbox' || el.type === 'radio' ? el.checked : el.value, el.getAttribute('aria-invalid')]);
  // The errors said about a form not yet applied stay with it too.
  const errors = fresh ? [] : [...main.querySelectorAll('form[data-dirty] .error')]
    .filter((el) => el.id && el.textContent)
    .map((el) => [el.id, el.textContent]);
  main.replaceChildren(content);
  for (const [id, v, invalid] of kept) {
    const el = document.getElementById(id);
    if (!el) continue;
    if (typeof v === 'boolean') el.checked = v; else el.value = v;
    if (invalid) el.setAttribute('aria-invalid', invalid);
    if (el.form) el.form.dataset.dirty = '1';
  }
  for (const [id, text] of errors) {
    const el = document.getElementById(id);
    if (el) el.textContent = text;
  }
  document.title = `${TITLES[view]} · netshare`;
  if (fresh) main.focus();
  else if (focusId) document.getElementById(focusId)?.focus();
}

const TITLES = { connections: 'Network connections', sharing: 'Sharing', services: 'Services', clients: 'Clients' };

// act runs an API call from a control, reports failure in the toast, and
// redraws.
async function act(what, fn) {
  try {
    await fn();
    toast(what);
  } catch (err) {
    if (err.status !== 401) toast(err.message, true);
  }
  render(false);
}

// ---- Network connections ---------------------------------------------------

async function connectionsView() {
  const conns = await api('GET', '/v1/connections');
  return h('section', { 'aria-labelledby': 'title' },
    h('h1', { id: 'title' }, 'Network connections'),
    h('p', { class: 'lead' }, 'The network connections of this gateway, live.'),
    conns.length === 0 ? h('p', { class: 'empty' }, 'No network connections.') :
      h('ul', { class: 'cards' }, conns.map(connectionCard)));
}

function connectionCard(c) {
  // Disconnect takes the link down; Connect brings it up. A missing
  // device can do neither.
  const up = c.status !== 'disconnected' && c.status !== 'hardware-not-present';
  return h('li', { class: 'card', 'data-connection': c.id, 'aria-labelledby': `name-${c.id}` },
    h('h3', { id: `name-${c.id}` }, c.name),
    h('p', { class: 'meta' }, `${c.deviceName || 'Unknown device'} · ${c.interface}`),
    h('p', {}, 'Status: ', statusEl(c)),
    h('p', {}, `Media: ${MEDIA[c.mediaType] || c.mediaType}`),
    badges(c),
    h('div', { class: 'actions' },
      c.status === 'hardware-not-present' ? null : up ?
        h('button', { id: `disconnect-${c.id}`, 'aria-label': `Disconnect ${c.name}`, onclick: () => act(`${c.name} disconnected`, () => api('POST', `/v1/connections/${enc(c.id)}/disconnect`)) }, 'Disconnect') :
        h('button', { id: `connect-${c.id}`, 'aria-label': `Connect ${c.name}`, onclick: () => act(`${c.name} connected`, () => api('POST', `/v1/connections/${enc(c.id)}/connect`)) }, 'Connect'),
      h('button', { id: `rename-${c.id}`, 'aria-label': `Rename ${c.name}`, onclick: () => renameDialog(c) }, 'Rename…'),
      h('a', { class: 'button', href: `#/services/${enc(c.id)}`, 'aria-label': `Services of ${c.name}` }, 'Services')));
}

function renameDialog(c) {
  return dialog(`Rename ${c.name}`, (close) => {
    const form = h('form', { novalidate: true, onsubmit: async (e) => {
      e.preventDefault();
      try {
        await api('POST', `/v1/connections/${enc(c.id)}/rename`, { name: form.querySelector('#rename-name').value });
        close(true);
        toast('Renamed');
        render(false);
      } catch (err) {
        showErrors(form, err, { name: 'rename-name' }, 'rename-form-error');
      }
    } },
    field('rename-name', 'New name', { value: c.name, autofocus: true }),
    h('p', { class: 'error', id: 'rename-form-error' }),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'primary' }, 'Rename'),
      h('button', { type: 'button', onclick: () => close() }, 'Cancel')));
    return form;
  });
}

// ---- Sharing ---------------------------------------------------------------

async function sharingView() {
  const [conns, overview] = await Promise.all([api('GET', '/v1/connections'), api('GET', '/v1/sharing')]);
  const pub = conns.find((c) => c.sharing.enabled && c.sharing.type === 'public');
  const privs = conns.filter((c) => c.sharing.enabled && c.sharing.type === 'private');
  const priv = privs[0];
  const options = (selected) => [h('option', { value: '' }, 'None'),
    conns.map((c) => h('option', { value: c.id, selected: c.id === selected }, `${c.name} (${c.interface})`))];

  const form = h('form', { id: 'sharing-form', novalidate: true, onsubmit: (e) => { e.preventDefault(); applySharing(form, conns, pub, priv); } },
    h('fieldset', {},
      h('legend', {}, 'Internet Connection Sharing'),
      h('label', { for: 'public' }, 'Public connection (the one to share)'),
      h('select', { id: 'public', 'aria-describedby': 'public-error' }, options(pub?.id)),
      h('p', { class: 'error', id: 'public-error' }),
      h('label', { for: 'private' }, 'Home networking connection (the private network)'),
      h('select', { id: 'private', 'aria-describedby': 'private-error' }, options(priv?.id)),
      h('p', { class: 'error', id: 'private-error' }),
      field('address', 'Private address', { value: priv?.sharing.address || '192.168.137.1/24' },
        'The gateway\'s address on the private network, with its prefix length.'),
      privs.length > 1 && h('p', { class: 'hint' }, `Also private: ${privs.slice(1).map((c) => `${c.name} (${c.sharing.address})`).join(', ')}.`),
      h('p', { class: 'error', id: 'sharing-form-error' }),
      h('div', { class: 'actions' },
        h('button', { type: 'submit', class: 'primary', id: 'apply-sharing' }, 'Apply'),
        (pub || priv) && h('button', { type: 'button', id: 'stop-sharing', class: 'danger', onclick: () => stopSharing(conns) }, 'Stop sharing'))));
  form.addEventListener('input', () => { form.dataset.dirty = '1'; });

  const now = h('p', {}, pub ?
    ['Sharing ', h('strong', {}, pub.name), ' with ', priv ? h('strong', {}, `${priv.name} (${priv.sharing.address})`) : 'no private network yet', '.'] :
    'Sharing is off.');

  return h('section', { 'aria-labelledby': 'title' },
    h('h1', { id: 'title' }, 'Sharing'),
    h('p', { class: 'lead' }, 'Share one connection to the Internet with a private network, and guard connections with the firewall.'),
    now,
    overview.behindNAT && h('p', { class: 'hint', id: 'behind-nat' },
      `The public address, ${overview.publicAddress}, is a private or shared one: another NAT is upstream. ` +
      'Services published here reach the Internet only if that NAT forwards their ports too.'),
    form,
    h('h2', {}, 'Internet Connection Firewall'),
    firewallTable(conns),
    privs.length > 0 && [
      h('h2', {}, 'Devices that map their own ports'),
      h('p', { class: 'hint' }, 'Game consoles, torrent and call apps can ask the gateway for a port of their own (NAT-PMP, PCP). ' +
        'Their mappings are listed with the services, and end when the device stops renewing them.'),
      natTraversalTable(privs)]);
}

function natTraversalTable(privs) {
  return h('table', { class: 'stack' },
    h('caption', { class: 'sr-only' }, 'Whether the devices of each private network may map their own ports'),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Private network'), h('th', { scope: 'col' }, 'Devices may map ports'))),
    h('tbody', {}, privs.map((c) => h('tr', {},
      h('td', { 'data-label': 'Private network' }, c.name),
      h('td', { 'data-label': 'Devices may map ports' }, h('label', { class: 'inline' },
        h('input', { type: 'checkbox', id: `nat-traversal-${c.id}`, checked: c.natTraversal, 'aria-label': `Devices on ${c.name} may map their own ports`,
          onchange: (e) => act(`Devices on ${c.name} ${e.target.checked ? 'may' : 'may no longer'} map their own ports`,
            () => api('POST', `/v1/connections/${enc(c.id)}/nat-traversal/${e.target.checked ? 'enable' : 'disable'}`)) }),
        h('span', { 'aria-hidden': 'true' }, 'On')))))));
}

async function applySharing(form, conns, pub, priv) {
  const newPub = form.querySelector('#public').value;
  const newPriv = form.querySelector('#private').value;
  const address = form.querySelector('#address').value.trim();
  const name = (id) => conns.find((c) => c.id === id)?.name || id;
  showErrors(form, null);
  if (newPub && newPub === newPriv) {
    showErrors(form, new ApiError(400, { field: 'private', message: 'private: the private connection must differ from the public one' }), { private: 'private' }, 'sharing-form-error');
    return;
  }
  if (pub && newPub && newPub !== pub.id) {
    // Windows' rule: one public connection; a new one replaces it.
    const ok = await confirmDialog('Change the shared connection?',
      `${pub.name} is shared now. Sharing ${name(newPub)} instead stops sharing ${pub.name}; its services stay, switched off with it.`,
      `Share ${name(newPub)}`);
    if (!ok) return;
  }
  try {
    if (pub && !newPub) await api('POST', `/v1/connections/${enc(pub.id)}/sharing/disable`);
    if (priv && newPriv !== priv.id) await api('POST', `/v1/connections/${enc(priv.id)}/sharing/disable`);
    if (newPub && newPub !== pub?.id) await api('POST', `/v1/connections/${enc(newPub)}/sharing/enable`, { type: 'public' });
    if (newPriv && (newPriv !== priv?.id || address !== priv?.sharing.address)) {
      await api('POST', `/v1/connections/${enc(newPriv)}/sharing/enable`, { type: 'private', address });
    }
    delete form.dataset.dirty;
    toast('Sharing settings applied');
    render(false);
  } catch (err) {
    if (err.status === 401) return;
    // Steps before the failed one took effect: draw what is, keep what
    // the user typed, then say what failed.
    await render(false);
    const now = document.querySelector('#sharing-form') || form;
    showErrors(now, err, { address: 'address', type: 'public' }, 'sharing-form-error');
  }
}

async function stopSharing(conns) {
  const shared = conns.filter((c) => c.sharing.enabled);
  const ok = await confirmDialog('Stop sharing?', `Stop sharing on ${shared.map((c) => c.name).join(' and ')}? Private connections get their own addresses back.`, 'Stop sharing', true);
  if (!ok) return;
  const form = document.querySelector('#sharing-form');
  if (form) delete form.dataset.dirty;
  await act('Sharing stopped', async () => {
    for (const c of shared) await api('POST', `/v1/connections/${enc(c.id)}/sharing/disable`);
  });
}

function firewallTable(conns) {
  return h('table', { class: 'stack' },
    h('caption', { class: 'sr-only' }, 'Firewall of each connection'),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Connection'), h('th', { scope: 'col' }, 'Firewall'), h('th', { scope: 'col' }, 'Answer ping'))),
    h('tbody', {}, conns.map((c) => h('tr', {},
      h('td', { 'data-label': 'Connection' }, c.name),
      h('td', { 'data-label': 'Firewall' }, h('label', { class: 'inline' },
        h('input', { type: 'checkbox', id: `firewall-${c.id}`, checked: c.firewallEnabled,
          onchange: (e) => act(`Firewall ${e.target.checked ? 'on' : 'off'} on ${c.name}`,
            () => api('POST', `/v1/connections/${enc(c.id)}/firewall/${e.target.checked ? 'enable' : 'disable'}`)) }),
        h('span', {}, 'On', h('span', { class: 'sr-only' }, ` for ${c.name}`)))),
      h('td', { 'data-label': 'Answer ping' }, h('label', { class: 'inline' },
        h('input', { type: 'checkbox', id: `ping-${c.id}`, checked: c.allowPing, disabled: !c.firewallEnabled,
          onchange: (e) => act(`Ping ${e.target.checked ? 'answered' : 'dropped'} on ${c.name}`,
            () => api('POST', `/v1/connections/${enc(c.id)}/firewall/enable`, { allowPing: e.target.checked })) }),
        h('span', {}, 'Allowed', h('span', { class: 'sr-only' }, ` on ${c.name}`))))))));
}

// ---- Services (port mappings) ----------------------------------------------

async function servicesView(arg) {
  const conns = await api('GET', '/v1/connections');
  if (conns.length === 0) return h('p', { class: 'empty' }, 'No network connections.');
  const pub = conns.find((c) => c.sharing.enabled && c.sharing.type === 'public');
  const conn = conns.find((c) => c.id === arg || c.interface === arg) ||
    conns.find((c) => c.id === ui.servicesConn) || pub || conns[0];
  ui.servicesConn = conn.id;
  // One page, filtered by the daemon: the screen stays quick whatever the
  // number of mappings.
  const query = new URLSearchParams({ limit: String(MAX_ROWS) });
  if (ui.filter) query.set('q', ui.filter);
  const page = await apiAnswer('GET', `/v1/connections/${enc(conn.id)}/mappings?${query}`);
  const shown = page.data, more = page.link.includes('rel="next"');

  const picker = h('select', { id: 'services-connection', onchange: (e) => { location.hash = `#/services/${enc(e.target.value)}`; } },
    conns.map((c) => h('option', { value: c.id, selected: c.id === conn.id }, `${c.name} (${c.interface})`)));
  const filter = h('input', { type: 'search', id: 'services-filter', value: ui.filter, placeholder: 'name, port, computer',
    oninput: (e) => { ui.filter = e.target.value; render(false); } });

  return h('section', { 'aria-labelledby': 'title' },
    h('h1', { id: 'title' }, `Services of ${conn.name}`),
    h('p', { class: 'lead' }, 'Services on your network that people on the Internet can reach through this connection. A new service starts switched off.'),
    !(conn.sharing.enabled && conn.sharing.type === 'public') &&
      h('p', { class: 'hint' }, `${conn.name} is not the shared public connection: its services are kept and take effect when it is.`),
    h('div', { class: 'toolbar' },
      h('div', {}, h('label', { for: 'services-connection' }, 'Connection'), picker),
      h('div', {}, h('label', { for: 'services-filter' }, 'Filter'), filter),
      h('button', { type: 'button', class: 'primary', id: 'add-service', onclick: () => mappingDialog(conn) }, 'Add…')),
    shown.length === 0 && !ui.filter ? h('p', { class: 'empty' }, 'No services yet. Add one to publish a service of a computer on your network.') :
      mappingTable(conn, shown),
    more && h('p', { class: 'hint' }, `Showing the first ${MAX_ROWS}; filter to find the others.`));
}

function targetText(m) {
  if (m.targetIPAddress) return m.targetIPAddress;
  if (m.unresolved) return [m.targetName, ' ', h('span', { class: 'unresolved' }, '(unresolved)')];
  return `${m.targetName} (${m.resolvedIPAddress})`;
}

// byDevice reports whether a device leased m for itself (NAT-PMP, PCP):
// it can be deleted, not changed.
function byDevice(m) {
  return m.origin && m.origin !== 'user';
}

// ORIGINS name the protocols by which devices map their own ports.
const ORIGINS = { natpmp: 'NAT-PMP', pcp: 'PCP', upnp: 'UPnP' };

// leaseText says which device leased m, by which protocol, for how long
// still, and which remote peers alone may use it (PCP's FILTER).
function leaseText(m) {
  const left = Math.max(0, Math.floor((Date.parse(m.expires) - Date.now()) / 1000));
  const hours = Math.floor(left / 3600), mins = Math.floor((left % 3600) / 60), secs = left % 60;
  const time = hours > 0 ? `${hours} h ${mins} min` : mins > 0 ? `${mins} min ${secs} s` : `${secs} s`;
  const peers = m.remotePeers && m.remotePeers.length ? `, only from ${m.remotePeers.join(', ')}` : '';
  return `made by device ${m.client} (${ORIGINS[m.origin] || m.origin}), ${time} left${peers}`;
}

function mappingTable(conn, mappings) {
  return h('table', { class: 'stack', id: 'services' },
    h('caption', { class: 'sr-only' }, `Services of ${conn.name}`),
    h('thead', {}, h('tr', {}, ['Enabled', 'Description', 'Protocol', 'External port', 'Internal port', 'Computer', 'Actions']
      .map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, mappings.slice(0, MAX_ROWS).map((m) => h('tr', { 'data-mapping': m.id },
      h('td', { 'data-label': 'Enabled' }, h('input', {
        type: 'checkbox', id: `enabled-${m.id}`, checked: m.enabled, 'aria-label': `Enabled: ${m.name}`, disabled: byDevice(m),
        onchange: (e) => act(`${m.name} ${e.target.checked ? 'enabled' : 'disabled'}`,
          () => api('POST', `/v1/connections/${enc(conn.id)}/mappings/${enc(m.id)}/${e.target.checked ? 'enable' : 'disable'}`)),
      })),
      h('td', { 'data-label': 'Description' }, m.name, byDevice(m) && h('span', { class: 'lease' }, ' — ' + leaseText(m))),
      h('td', { 'data-label': 'Protocol' }, m.protocol.toUpperCase()),
      h('td', { 'data-label': 'External port', class: 'num' }, m.externalPort),
      h('td', { 'data-label': 'Internal port', class: 'num' }, m.internalPort),
      h('td', { 'data-label': 'Computer' }, targetText(m)),
      h('td', { 'data-label': 'Actions' }, h('div', { class: 'actions' },
        !byDevice(m) && h('button', { type: 'button', id: `edit-${m.id}`, 'aria-label': `Edit ${m.name}`, onclick: () => mappingDialog(conn, m) }, 'Edit…'),
        h('button', { type: 'button', class: 'danger', id: `delete-${m.id}`, 'aria-label': `Delete ${m.name}`, onclick: () => deleteMapping(conn, m) }, 'Delete')))))));
}

const MAPPING_FIELDS = {
  name: 'm-name', target: 'm-target', targetName: 'm-target', targetIPAddress: 'm-target',
  externalPort: 'm-external', internalPort: 'm-internal', protocol: 'm-tcp',
};

// port reads a port field: a whole number, or an error naming the field.
function port(form, id, apiField) {
  const s = form.querySelector('#' + id).value.trim();
  if (!/^\d{1,9}$/.test(s)) {
    throw new ApiError(400, { field: apiField, message: `${apiField}: ${s === '' ? 'is missing' : `"${s}" is not a number`}; a port is 1 to 65535` });
  }
  return Number(s);
}

function isIPv4(s) {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(s);
}

// mappingDialog adds a service (m undefined) or edits m: the Windows
// "Service Settings" dialog.
function mappingDialog(conn, m) {
  return dialog(m ? `Edit service ${m.name}` : 'Add a service', (close) => {
    const form = h('form', { novalidate: true, onsubmit: async (e) => {
      e.preventDefault();
      showErrors(form, null);
      try {
        const target = form.querySelector('#m-target').value.trim();
        const spec = {
          name: form.querySelector('#m-name').value,
          protocol: form.querySelector('input[name=protocol]:checked').value,
          externalPort: port(form, 'm-external', 'externalPort'),
          internalPort: port(form, 'm-internal', 'internalPort'),
        };
        if (isIPv4(target)) spec.targetIPAddress = target; else spec.targetName = target;
        if (!target) throw new ApiError(400, { field: 'target', message: 'target: give the name or the IP address of the computer' });
        if (m) {
          const edit = {};
          for (const k of ['name', 'protocol', 'externalPort', 'internalPort']) if (spec[k] !== m[k]) edit[k] = spec[k];
          if (spec.targetIPAddress && spec.targetIPAddress !== m.targetIPAddress) edit.targetIPAddress = spec.targetIPAddress;
          if (spec.targetName && spec.targetName !== m.targetName) edit.targetName = spec.targetName;
          await api('PATCH', `/v1/connections/${enc(conn.id)}/mappings/${enc(m.id)}`, edit);
          toast(`${spec.name} saved`);
        } else {
          await api('POST', `/v1/connections/${enc(conn.id)}/mappings`, spec);
          toast(`${spec.name} added, switched off: tick Enabled to publish it`);
        }
        close(true);
        render(false);
      } catch (err) {
        if (err.status === 401) return;
        showErrors(form, err, MAPPING_FIELDS, 'm-form-error');
      }
    } },
    field('m-name', 'Description of the service', { value: m?.name || '', autofocus: true }),
    field('m-target', 'Name or IP address of the computer hosting this service on your network',
      { value: m ? (m.targetIPAddress || m.targetName) : '' }, 'For example 192.168.137.10, or a name such as lanhost.'),
    field('m-external', 'External port number for this service', { value: m ? String(m.externalPort) : '', inputmode: 'numeric' }),
    field('m-internal', 'Internal port number for this service', { value: m ? String(m.internalPort) : '', inputmode: 'numeric' }),
    h('fieldset', { 'aria-describedby': 'm-tcp-error' },
      h('legend', {}, 'Protocol'),
      h('label', { class: 'inline', for: 'm-tcp' }, h('input', { type: 'radio', name: 'protocol', id: 'm-tcp', value: 'tcp', checked: !m || m.protocol === 'tcp' }), 'TCP'),
      h('label', { class: 'inline', for: 'm-udp' }, h('input', { type: 'radio', name: 'protocol', id: 'm-udp', value: 'udp', checked: m?.protocol === 'udp' }), 'UDP'),
      h('p', { class: 'error', id: 'm-tcp-error' })),
    h('p', { class: 'error', id: 'm-form-error', role: 'alert' }),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'primary', id: 'm-ok' }, m ? 'Save' : 'Add'),
      h('button', { type: 'button', onclick: () => close() }, 'Cancel')));
    return form;
  });
}

async function deleteMapping(conn, m) {
  const what = byDevice(m)
    ? `Delete the mapping device ${m.client} made (${m.protocol.toUpperCase()} ${m.externalPort})? It stops at once; the device may ask for a mapping again.`
    : `Delete ${m.name} (${m.protocol.toUpperCase()} ${m.externalPort})? People on the Internet will no longer reach it.`;
  const ok = await confirmDialog('Delete the service?', what, 'Delete', true);
  if (!ok) return;
  await act(`${m.name} deleted`, () => api('DELETE', `/v1/connections/${enc(conn.id)}/mappings/${enc(m.id)}`));
}

// ---- Clients (DHCP) --------------------------------------------------------

async function clientsView() {
  const [conns, leases] = await Promise.all([api('GET', '/v1/connections'), api('GET', '/v1/leases')]);
  const privs = conns.filter((c) => c.sharing.enabled && c.sharing.type === 'private');
  const section = h('section', { 'aria-labelledby': 'title' },
    h('h1', { id: 'title' }, 'Clients'),
    h('p', { class: 'lead' }, 'The computers on your private networks: their DHCP leases, and the addresses reserved for them.'));
  if (privs.length === 0) {
    section.append(h('p', { class: 'empty' }, 'No private network yet: turn sharing on in ', h('a', { href: '#/sharing' }, 'Sharing'), ' and netshare hands out addresses on it.'));
    return section;
  }
  for (const c of privs) {
    const dhcp = await api('GET', `/v1/connections/${enc(c.id)}/dhcp`);
    const mine = leases.filter((l) => l.connection === c.id);
    section.append(
      h('h2', {}, `${c.name} · ${dhcp.subnet}`),
      h('p', { class: 'meta' }, `Addresses ${dhcp.poolStart} to ${dhcp.poolEnd}, leased for ${shortDuration(dhcp.leaseTime)}; domain ${dhcp.domain}.`),
      h('h3', {}, 'Leases'),
      mine.length === 0 ? h('p', { class: 'empty' }, 'No leases yet.') :
        h('table', { class: 'stack', id: `leases-${c.id}` },
          h('caption', { class: 'sr-only' }, `Leases on ${c.name}`),
          h('thead', {}, h('tr', {}, ['Name', 'IP address', 'MAC address', 'Lease ends', 'State'].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, mine.map((l) => h('tr', {},
            h('td', { 'data-label': 'Name' }, l.hostname || '—'),
            h('td', { 'data-label': 'IP address', class: 'num' }, l.ip),
            h('td', { 'data-label': 'MAC address', class: 'num' }, l.mac),
            h('td', { 'data-label': 'Lease ends' }, new Date(l.expiry).toLocaleString()),
            h('td', { 'data-label': 'State' }, l.active ? 'Active' : 'Ended'))))),
      h('h3', {}, 'Reservations'),
      dhcp.reservations.length === 0 ? h('p', { class: 'empty' }, 'No reservations.') :
        h('table', { class: 'stack', id: `reservations-${c.id}` },
          h('caption', { class: 'sr-only' }, `Reservations on ${c.name}`),
          h('thead', {}, h('tr', {}, ['Name', 'IP address', 'MAC address', 'Actions'].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, dhcp.reservations.map((r) => h('tr', {},
            h('td', { 'data-label': 'Name' }, r.name || '—'),
            h('td', { 'data-label': 'IP address', class: 'num' }, r.ip),
            h('td', { 'data-label': 'MAC address', class: 'num' }, r.mac),
            h('td', { 'data-label': 'Actions' }, h('button', {
              type: 'button', class: 'danger', id: `unreserve-${c.id}-${r.mac}`, 'aria-label': `Remove the reservation of ${r.ip}`,
              onclick: async () => {
                if (await confirmDialog('Remove the reservation?', `${r.ip} is then no longer kept for ${r.mac}.`, 'Remove', true)) {
                  act('Reservation removed', () => api('DELETE', `/v1/connections/${enc(c.id)}/dhcp/reservations/${enc(r.mac)}`));
                }
              },
            }, 'Remove')))))),
      h('div', { class: 'actions' }, h('button', { type: 'button', id: `reserve-${c.id}`, onclick: () => reserveDialog(c) }, 'Reserve an address…')));
  }
  return section;
}

// shortDuration drops the zero tail of a Go duration: 1h0m0s is 1h.
function shortDuration(d) {
  return d.replace(/([hm])0s$/, '$1').replace(/h0m$/, 'h');
}

function reserveDialog(c) {
  return dialog(`Reserve an address on ${c.name}`, (close) => {
    const form = h('form', { novalidate: true, onsubmit: async (e) => {
      e.preventDefault();
      showErrors(form, null);
      const r = { mac: form.querySelector('#r-mac').value.trim(), ip: form.querySelector('#r-ip').value.trim() };
      const name = form.querySelector('#r-name').value.trim();
      if (name) r.name = name;
      try {
        await api('POST', `/v1/connections/${enc(c.id)}/dhcp/reservations`, r);
        close(true);
        toast(`${r.ip} reserved`);
        render(false);
      } catch (err) {
        if (err.status !== 401) showErrors(form, err, { mac: 'r-mac', ip: 'r-ip', name: 'r-name' }, 'r-form-error');
      }
    } },
    field('r-mac', 'MAC address', { autofocus: true }, 'Such as 52:54:00:12:34:56.'),
    field('r-ip', 'IP address'),
    field('r-name', 'Host name (optional)'),
    h('p', { class: 'error', id: 'r-form-error', role: 'alert' }),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'primary' }, 'Reserve'),
      h('button', { type: 'button', onclick: () => close() }, 'Cancel')));
    return form;
  });
}

const VIEWS = { connections: connectionsView, sharing: sharingView, services: servicesView, clients: clientsView };

start();
