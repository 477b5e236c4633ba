// The tablet's screens. Everything it does goes through the app's commands
// (src-tauri/src/app.rs); what the app notices arrives as events.
'use strict';

const T = {
  ja: {
    brand: 'ワクチン接種記録', nav_scan: '記録', nav_outbox: '送信状況', nav_settings: '設定',
    enrol_title: '端末の登録', enrol_help: '市区町村から届いた登録コードを入力するか、QRコードを読み取ってください。',
    server: 'サーバー', enrol_code: '登録コード', enrol_go: '登録する', enrol_qr: 'QRコードを読む',
    signin_title: 'サインイン', signin_help: 'この端末に登録されたメールアドレスへパスコードを送ります。',
    signin_send: 'パスコードを送る', passcode: 'パスコード (6桁)', signin_go: 'サインイン',
    signin_sent: 'パスコードを送りました。メールを確認して入力してください (10分間有効)。',
    setup_title: '接種の準備', date: '接種日', vaccine: 'ワクチン', lot: 'ロット番号', expiry: '有効期限',
    setup_label: 'ラベルのバーコードを読む', setup_lots: 'ロット一覧 (この端末で使ったものが先)', mode: '読み取り方',
    mode_single: '1人ずつ確認 (接種会場)', mode_batch: 'まとめて読み取り (回収した接種券)', setup_go: '読み取りを始める',
    torch: 'ライト', no_torch: 'このカメラにはライトがありません', replay_again: 'もう一度再生', change_setup: '準備に戻る',
    manual: '手入力 (券の18桁)', enter: '入力', batch_count: '読み取り済み', batch_end: 'まとめ読みを終える',
    confirm_title: '接種内容の確認', voucher: '券番号', municipality: '市区町村コード', dose: '接種回数',
    confirm_yes: '記録する', confirm_no: '取り消す', dose_n: '{n}回目',
    name_asking: '氏名を確認しています…', name_unknown: 'この券の対象者が見つかりません',
    name_unknown_note: '券と本人を確認してください。記録すると市区町村の確認待ち (保留) になります。',
    name_offline: '(通信できないため氏名を表示できません)',
    name_offline_note: 'オフラインです。記録は端末に保存され、通信が戻ると送信されます。',
    outbox_title: '送信状況', st_queued: '未送信', st_sent: '送信中', st_confirmed: '受付済み', st_held: '保留',
    st_superseded: '訂正済み', sync_now: '今すぐ送信', held_title: '保留中の記録 (確認と訂正)',
    held_none: '保留中の記録はありません。', refused_title: '受け付けられなかった記録 (この端末からは登録できません)', voucher18: '券の18桁', correct: '訂正して送る',
    last_sync_ok: '最終送信 {at}: 受付 {accepted} 件、保留 {held} 件', last_sync_fail: '最終送信 {at}: 送信できませんでした ({error})',
    last_sync_nothing: '最終確認 {at}: 送信するものはありません', pending: '未送信 {n}',
    settings_title: '設定', language: '表示言語', site: '接種場所', device: '端末ID', camera: 'カメラ', version: 'バージョン',
    signout: 'サインアウト',
    src_camera: 'カメラ', src_replay: 'リプレイ (画像をカメラの代わりに再生): {detail}', src_none: 'カメラなし: {detail}',
    src_ended: 'リプレイが終わりました',
    cue_saved: '記録しました', cue_already_in_batch: 'この券は読み取り済みです (二重登録しません)',
    cue_invalid: '券番号が正しくありません', cue_unknown_voucher: '対象者が見つからない券です',
    cue_signin_needed: 'サインインし直してください', cue_error: 'エラー', cue_label_read: 'ラベルを読み取りました',
    cue_code_read: '登録コードを読み取りました',
    looking_voucher: '接種券をカメラに向けてください', looking_label: 'ワクチンのラベルをカメラに向けてください',
    looking_code: '登録コードのQRコードをカメラに向けてください',
  },
  en: {
    brand: 'Vaccination record', nav_scan: 'Record', nav_outbox: 'Outbox', nav_settings: 'Settings',
    enrol_title: 'Enrol this tablet', enrol_help: 'Type the enrolment code your municipality sent, or scan its QR code.',
    server: 'Server', enrol_code: 'Enrolment code', enrol_go: 'Enrol', enrol_qr: 'Scan the QR code',
    signin_title: 'Sign in', signin_help: 'A passcode goes to the e-mail address registered for this tablet.',
    signin_send: 'Send a passcode', passcode: 'Passcode (6 digits)', signin_go: 'Sign in',
    signin_sent: 'Passcode sent: check the mail and type it here (valid 10 minutes).',
    setup_title: 'Session set-up', date: 'Date', vaccine: 'Vaccine', lot: 'Lot', expiry: 'Expiry',
    setup_label: 'Scan the label barcode', setup_lots: 'Lots (those used here first)', mode: 'Mode',
    mode_single: 'One person at a time (vaccination site)', mode_batch: 'Batch (collected vouchers)', setup_go: 'Start scanning',
    torch: 'Torch', no_torch: 'This camera has no torch', replay_again: 'Replay again', change_setup: 'Back to set-up',
    manual: 'Type the voucher’s 18 digits', enter: 'Enter', batch_count: 'Scanned', batch_end: 'End the batch',
    confirm_title: 'Confirm the dose', voucher: 'Voucher', municipality: 'Municipality', dose: 'Dose',
    confirm_yes: 'Record', confirm_no: 'Reject', dose_n: 'dose {n}',
    name_asking: 'Looking up the name…', name_unknown: 'No one is registered with this voucher',
    name_unknown_note: 'Check the voucher and the person. If recorded, it is held for the municipality to review.',
    name_offline: '(offline: the name cannot be shown)',
    name_offline_note: 'Offline: the record is kept on the tablet and sent when the network is back.',
    outbox_title: 'Outbox', st_queued: 'Queued', st_sent: 'Sending', st_confirmed: 'Accepted', st_held: 'Held',
    st_superseded: 'Corrected', sync_now: 'Sync now', held_title: 'Held records (review and correct)',
    held_none: 'No held records.', refused_title: 'Records not accepted (this tablet cannot record them)', voucher18: 'Voucher’s 18 digits', correct: 'Correct and send',
    last_sync_ok: 'Last sync {at}: {accepted} accepted, {held} held', last_sync_fail: 'Last sync {at}: not sent ({error})',
    last_sync_nothing: 'Last checked {at}: nothing to send', pending: '{n} queued',
    settings_title: 'Settings', language: 'Language', site: 'Site', device: 'Device', camera: 'Camera', version: 'Version',
    signout: 'Sign out',
    src_camera: 'Camera', src_replay: 'Replay (images played as the camera): {detail}', src_none: 'No camera: {detail}',
    src_ended: 'The replay has ended',
    cue_saved: 'Recorded', cue_already_in_batch: 'Already in this batch (not saved twice)',
    cue_invalid: 'Not a valid voucher number', cue_unknown_voucher: 'No one registered with this voucher',
    cue_signin_needed: 'Sign in again', cue_error: 'Error', cue_label_read: 'Label read', cue_code_read: 'Enrolment code read',
    looking_voucher: 'Hold the voucher to the camera', looking_label: 'Hold the vaccine label to the camera',
    looking_code: 'Hold the enrolment QR code to the camera',
  },
};

const tauri = window.__TAURI__;
const invoke = (cmd, args) => tauri.core.invoke(cmd, args);
const $ = (id) => document.getElementById(id);
let app = null;          // the AppView from the last command
let lang = 'ja';
let screen = null;
let activeView = null;   // the element showing the live view

function t(key, vars) {
  let s = (T[lang] && T[lang][key]) || T.ja[key] || key;
  for (const [k, v] of Object.entries(vars || {})) s = s.replace('{' + k + '}', v);
  return s;
}

function translate() {
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll('[data-t]')) el.textContent = t(el.dataset.t);
}

let cueAt = 0;
function show(name) {
  // A cue from the screen before goes with it, unless it was just raised.
  if (name !== screen && Date.now() - cueAt > 1000) $('cue').hidden = true;
  screen = name;
  for (const s of document.querySelectorAll('.screen')) s.hidden = s.id !== 'screen-' + name;
  for (const b of document.querySelectorAll('#nav button')) b.classList.toggle('on', b.id === 'nav-' + name);
  document.body.dataset.screen = name;
}

// --- cues: a banner and a tone ---------------------------------------------
let audio = null;
function tone(kind) {
  try {
    audio = audio || new AudioContext();
    const o = audio.createOscillator();
    const g = audio.createGain();
    o.frequency.value = kind === 'ok' ? 1320 : kind === 'warn' ? 660 : 220;
    o.type = kind === 'ok' ? 'sine' : 'square';
    g.gain.value = 0.15;
    o.connect(g).connect(audio.destination);
    o.start();
    o.stop(audio.currentTime + (kind === 'ok' ? 0.12 : 0.4));
  } catch (e) { /* no audio device: the banner still shows */ }
}

let cueTimer = null;
function showCue(kind, message) {
  const c = $('cue');
  c.className = 'cue-' + kind;
  c.textContent = message;
  c.hidden = false;
  cueAt = Date.now();
  tone(kind);
  clearTimeout(cueTimer);
  cueTimer = setTimeout(() => { c.hidden = true; }, kind === 'ok' ? 1800 : 5000);
}

function fail(where, e) {
  $(where).textContent = String(e);
  showCue('fail', String(e));
}

// --- the live view -----------------------------------------------------------
function attachView(container) {
  container.replaceChildren($('view-template').content.cloneNode(true));
  container.hidden = false;
  activeView = container;
}

function onFrame(p) {
  if (!activeView) return;
  const img = activeView.querySelector('img');
  const svg = activeView.querySelector('svg');
  const poly = activeView.querySelector('polygon');
  img.src = p.src;
  svg.setAttribute('viewBox', `0 0 ${p.width} ${p.height}`);
  poly.setAttribute('points', p.outline ? p.outline.map(([x, y]) => `${x},${y}`).join(' ') : '');
  activeView.classList.toggle('reading', p.read);
}

async function look(what, container) {
  if (container) attachView(container); else activeView = null;
  const src = await invoke('camera', { look: what });
  showSource(src);
}

function showSource(src) {
  if (!src) return;
  const line = src.kind === 'camera' ? t('src_camera')
    : src.kind === 'replay' ? t('src_replay', { detail: src.detail })
    : t('src_none', { detail: src.detail });
  $('scan-source').textContent = src.ended ? t('src_ended') : line;
  $('set-camera').textContent = line;
  $('scan-replay').hidden = src.kind !== 'replay';
  const torch = $('scan-torch');
  torch.disabled = !src.torch;
  torch.title = src.torch ? '' : t('no_torch');
}

// --- screens -----------------------------------------------------------------
function render(view) {
  app = view;
  lang = view.lang;
  translate();
  $('site').textContent = view.site_name || '';
  $('nav').hidden = !(view.enrolled && view.signed_in);
  $('set-site').textContent = view.site_name || '';
  $('setup-site').textContent = view.site_name || '';
  $('set-municipality').textContent = view.municipality || '';
  $('set-device').textContent = view.device || '';
  $('set-server').textContent = view.server || '';
  $('set-version').textContent = view.version;
  showSource(view.source);
  const sel = $('setup-vaccine');
  if (!sel.options.length) {
    for (const [code, name] of view.vaccines) sel.add(new Option(name, code));
  }
  renderLots(view.lots);
}

function route() {
  if (!app.enrolled) {
    $('enrol-server').value = $('enrol-server').value || app.server || '';
    $('enrol-code').value = $('enrol-code').value || app.code || '';
    return show('enrol');
  }
  if (!app.signed_in) return show('signin');
  if (app.session) {
    renderSession(app.session);
    return app.session.confirming ? show('confirm') : goScan();
  }
  goSetup();
}

function goSetup() {
  look('off');
  const s = app.setup;
  $('setup-date').value = app.today;
  if (s) {
    $('setup-vaccine').value = s.vaccine;
    $('setup-lot').value = s.lot;
    $('setup-expiry').value = s.expiry || '';
    document.querySelector(`input[name=mode][value=${s.batch ? 'batch' : 'single'}]`).checked = true;
  }
  $('setup-view').hidden = true;
  show('setup');
}

function goScan() {
  show('scan');
  look('voucher', $('scan-view'));
}

// A lot typed that the list knows gets the list's expiry (the lot master's).
function fillExpiry() {
  const l = (app.lots || []).find(
    (l) => l.lot === $('setup-lot').value.trim().toUpperCase() && l.vaccine === $('setup-vaccine').value);
  if (l && l.expiry) $('setup-expiry').value = l.expiry;
}

function renderLots(lots) {
  const box = $('setup-lots');
  box.replaceChildren();
  $('setup-lots-box').hidden = !lots.length;
  for (const l of lots) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = `${l.lot} (${vaccineName(l.vaccine)}${l.expiry ? ', ' + l.expiry.replaceAll('-', '/') : ''})`;
    b.addEventListener('click', () => {
      $('setup-vaccine').value = l.vaccine;
      $('setup-lot').value = l.lot;
      $('setup-expiry').value = l.expiry || '';
    });
    box.append(b);
  }
}

function vaccineName(code) {
  const v = app.vaccines.find(([c]) => c === code);
  return v ? (lang === 'ja' ? v[1] : code) : code;
}

function renderSession(s) {
  if (!s) return;
  $('scan-setup').textContent = `${t('date')} ${s.date} · ${vaccineName(s.vaccine)} · ${t('lot')} ${s.lot}`;
  $('batch-box').hidden = s.mode !== 'batch';
  $('batch-count').textContent = s.saved;
  const list = $('batch-list');
  list.replaceChildren(...s.batch.map((b) => {
    const li = document.createElement('li');
    li.textContent = `${b.municipality} ${b.number} (${t('dose_n', { n: b.dose })})`;
    return li;
  }));
  const c = s.confirming;
  if (!c) {
    if (screen === 'confirm') goScan();
    return;
  }
  const names = { asking: 'name_asking', unknown: 'name_unknown', offline: 'name_offline' };
  $('confirm-name').textContent = c.name === 'found' ? `${c.family} ${c.given}` : t(names[c.name]);
  $('confirm-name').className = 'name name-' + c.name;
  $('confirm-kana').textContent = c.kana;
  const note = $('confirm-note');
  note.hidden = c.name !== 'unknown' && c.name !== 'offline';
  note.textContent = c.name === 'unknown' ? t('name_unknown_note') : t('name_offline_note');
  $('confirm-number').textContent = c.number;
  $('confirm-municipality').textContent = c.municipality;
  $('confirm-dose').textContent = t('dose_n', { n: c.dose });
  $('confirm-date').textContent = s.date;
  $('confirm-vaccine').textContent = vaccineName(s.vaccine);
  $('confirm-lot').textContent = s.lot;
  $('confirm-yes').disabled = c.name === 'asking';
  // From the scan screen only: a voucher read while the nurse looks elsewhere waits
  // for her to come back.
  if (screen === 'scan') {
    activeView = null;
    show('confirm');
  }
}

async function refreshStatus() {
  const v = await invoke('status');
  const st = v.status;
  for (const k of ['queued', 'sent', 'confirmed', 'held', 'superseded']) $('st-' + k).textContent = st[k];
  const waiting = st.queued + st.sent;
  $('pending').hidden = waiting === 0;
  $('pending').textContent = t('pending', { n: waiting });
  const last = v.last_sync;
  $('st-last').textContent = !last ? ''
    : !last.ok ? t('last_sync_fail', last)
    : last.records_sent === 0 ? t('last_sync_nothing', last) : t('last_sync_ok', last);
  $('st-error').textContent = st.last_error || '';
  $('held-none').hidden = v.held.length > 0;
  const list = $('held-list');
  list.replaceChildren(...v.held.map(heldItem));
  // Records the server would not store: what they were, and the server's words.
  $('refused-box').hidden = v.refused.length === 0;
  $('refused-list').replaceChildren(...v.refused.map((x) => {
    const p = document.createElement('p');
    const r = x.record;
    p.textContent = `${r.municipality} ${r.voucher} · ${t('dose_n', { n: r.dose_number })} · ${r.vaccinated_on.replaceAll('-', '/')}: ${x.detail}`;
    return p;
  }));
}

function heldItem(h) {
  const f = $('held-template').content.firstElementChild.cloneNode(true);
  const r = h.record;
  f.querySelector('.h-reason').textContent = lang === 'ja' ? h.reason_ja : h.reason.replaceAll('_', ' ');
  f.querySelector('.h-detail').textContent = h.detail !== h.reason_ja ? h.detail : '';
  f.querySelector('.h-what').textContent =
    `${r.municipality} ${r.voucher} · ${t('dose_n', { n: r.dose_number })} · ${r.vaccinated_on} · ${t('lot')} ${r.lot}`;
  f.elements.date.value = r.vaccinated_on;
  f.elements.lot.value = r.lot;
  for (const el of f.querySelectorAll('[data-t]')) el.textContent = t(el.dataset.t);
  f.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const form = {
      id: r.client_record_id,
      date: f.elements.date.value !== r.vaccinated_on ? f.elements.date.value : null,
      lot: f.elements.lot.value !== r.lot ? f.elements.lot.value : null,
      voucher: f.elements.voucher.value || null,
    };
    try {
      await invoke('correct', { form });
      showCue('ok', t('correct'));
      refreshStatus();
    } catch (e) { f.querySelector('.h-error').textContent = String(e); showCue('fail', String(e)); }
  });
  return f;
}

// --- wiring ------------------------------------------------------------------
function on(id, fn) { $(id).addEventListener('click', fn); }

async function start() {
  on('enrol-go', async () => {
    $('enrol-error').textContent = '';
    try {
      render(await invoke('enrol', { server: $('enrol-server').value, code: $('enrol-code').value }));
      look('off');
      route();
    } catch (e) { fail('enrol-error', e); }
  });
  on('enrol-qr', () => { look('enrol', $('enrol-view')); showCue('warn', t('looking_code')); });
  on('signin-send', async () => {
    $('signin-error').textContent = '';
    try { await invoke('sign_in_start'); $('signin-info').textContent = t('signin_sent'); } catch (e) { fail('signin-error', e); }
  });
  on('signin-go', async () => {
    $('signin-error').textContent = '';
    try { render(await invoke('sign_in', { passcode: $('signin-code').value })); $('signin-code').value = ''; route(); } catch (e) { fail('signin-error', e); }
  });
  $('setup-lot').addEventListener('input', fillExpiry);
  $('setup-vaccine').addEventListener('change', fillExpiry);
  on('setup-label', () => { look('label', $('setup-view')); showCue('warn', t('looking_label')); });
  on('setup-go', async () => {
    $('setup-error').textContent = '';
    const form = {
      date: $('setup-date').value,
      vaccine: $('setup-vaccine').value,
      lot: $('setup-lot').value,
      expiry: $('setup-expiry').value || null,
      batch: document.querySelector('input[name=mode]:checked').value === 'batch',
    };
    try { render(await invoke('set_up', { form })); goScan(); } catch (e) { fail('setup-error', e); }
  });
  const typed = async () => {
    try { await invoke('typed', { digits: $('scan-digits').value }); $('scan-digits').value = ''; } catch (e) { showCue('fail', String(e)); }
  };
  on('scan-typed', typed);
  $('scan-digits').addEventListener('keydown', (e) => { if (e.key === 'Enter') typed(); });
  on('scan-replay', () => invoke('replay_again'));
  on('scan-change', async () => { render(await invoke('end_batch')); goSetup(); });
  on('batch-end', async () => { render(await invoke('end_batch')); goSetup(); });
  on('confirm-yes', () => invoke('confirm').catch((e) => showCue('fail', String(e))));
  on('confirm-no', () => invoke('reject').catch((e) => showCue('fail', String(e))));
  on('st-sync', () => invoke('sync_now'));
  on('nav-scan', () => {
    if (!app.session) return goSetup();
    if (app.session.confirming) return show('confirm');
    goScan();
  });
  on('nav-outbox', () => { look('off'); show('outbox'); refreshStatus(); });
  on('nav-settings', () => { look('off'); show('settings'); });
  on('set-signout', async () => { render(await invoke('sign_out')); route(); });
  for (const l of ['ja', 'en']) {
    on('lang-' + l, async () => { render(await invoke('settings', { form: { lang: l } })); refreshStatus(); });
  }

  await tauri.event.listen('frame', (e) => onFrame(e.payload));
  await tauri.event.listen('camera', (e) => showSource(e.payload));
  await tauri.event.listen('session', (e) => {
    if (app) app.session = e.payload;
    renderSession(e.payload);
  });
  await tauri.event.listen('cue', (e) => {
    const c = e.payload;
    showCue(c.kind, t('cue_' + c.key) + (c.detail ? ': ' + c.detail : ''));
    if (c.key === 'signin_needed') invoke('state').then((v) => { render(v); app.signed_in = false; show('signin'); });
    if (c.kind === 'ok' && c.key === 'saved') refreshStatus();
  });
  await tauri.event.listen('sync', () => refreshStatus());
  await tauri.event.listen('label', (e) => {
    $('setup-lot').value = e.payload.lot;
    $('setup-expiry').value = e.payload.expiry;
    fillExpiry();
    $('setup-view').hidden = true;
    activeView = null;
  });
  await tauri.event.listen('enrol-code', (e) => {
    $('enrol-code').value = e.payload;
    $('enrol-view').hidden = true;
    activeView = null;
  });

  render(await invoke('state'));
  route();
  refreshStatus().catch(() => {});
  document.body.dataset.ready = '1';
}

// Under WebDriver (the end-to-end test) WebKit takes a screenshot at its next repaint,
// and an idle page under Xvfb may not repaint for a long time: a pixel in a corner
// changes five times a second so that it does.
if (navigator.webdriver) {
  const tick = document.createElement('div');
  tick.style.cssText = 'position:fixed;right:0;bottom:0;width:1px;height:1px;pointer-events:none';
  document.body.append(tick);
  let n = 0;
  setInterval(() => { n ^= 1; tick.style.background = n ? '#f4f6f8' : '#f4f6f7'; }, 200);
}

start().catch((e) => { document.body.dataset.ready = 'error'; showCue('fail', String(e)); });
