/* Palliative Care Navigator: browser chat widget.
 * Plain ES2017, no dependencies. Embed with ONE tag:
 *   <script src="/static/widget.js" defer></script>
 * Optional attributes: data-title="...", data-keep-transcript="session".
 * CSP-safe: no inline styles or scripts, no innerHTML, DOM built with
 * createElement/textContent only. All visual rules live in widget.css.
 * The emergency numbers come from the gateway (GET /api/config, from
 * knowledge/helplines.yml); until then, or if that fails, the line names none. */
(function () {
  'use strict';

  // document.currentScript is only set while this file first runs.
  var script = document.currentScript ||
    document.querySelector('script[src*="widget.js"]');
  if (!script || document.getElementById('pcn-root')) return;

  var BASE = new URL('.', script.src);                 // .../static/
  var CHAT_URL = new URL('/api/chat', BASE).href;
  var RESTART_URL = new URL('/api/restart', BASE).href;
  var CONFIG_URL = new URL('/api/config', BASE).href;
  var TITLE = script.getAttribute('data-title') || 'Palliative Care Navigator';
  var KEEP = script.getAttribute('data-keep-transcript') === 'session';
  var STORE_KEY = 'pcn-transcript';
  var MAX_LEN = 1000;
  var WARN_AT = 900;                                    // show counter from here
  var TIMEOUT_MS = 30000;

  var EMERGENCY_FALLBACK = 'In an emergency, call your local emergency number.';
  var OFFLINE = "Sorry, I can't reach the service right now. Please try again " +
    'in a moment. ';
  var TEL_RE = /^\+?[0-9]{2,15}$/;                   // what a served number may dial
  var TEL_LINK_RE = /^tel:\+?[0-9]{2,15}$/;          // a card's Call link
  var INTENT_RE = /^\/[a-z_]+(\{.*\})?$/;             // a card's "More about this one"
  var PRIVACY = "Don't share names, addresses or other personal details. " +
    (KEEP ? 'This chat is kept in this browser tab only and is deleted when you close the tab.'
          : 'This chat is not kept after you close the tab.');
  var GREETING = {
    who: 'bot',
    text: "Hello, I'm the Palliative Care Navigator, an automated helper. Ask me " +
      'about palliative care, hospice or pain clinics, or where to find them.',
    buttons: [
      { title: 'What is palliative care?', payload: 'What is palliative care?' },
      { title: 'Find a hospice near me', payload: 'Find a hospice near me' }
    ]
  };
  var WHO_LABEL = { bot: 'Navigator', user: 'You', notice: 'Notice' };
  var welcome = null;    // the served welcome (GET /api/config), else GREETING

  var transcript = [];   // [{who, text, buttons, parts}] - the only copy of the chat
  var uid = 0;           // for ids that tie a card's links to its name
  var busy = false;      // a request is in flight
  var generation = 0;    // bumped by "Start over" so late replies are dropped
  var lastWarn = '';     // last character-limit announcement
  var emergency = EMERGENCY_FALLBACK;  // the served sentence once /api/config answers
  var ui = {};

  /* ---------- small DOM helpers ---------- */

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text != null) node.textContent = text;
    return node;
  }

  function add(parent) {
    for (var i = 1; i < arguments.length; i++) parent.appendChild(arguments[i]);
    return parent;
  }

  /* ---------- storage (opt-in, sessionStorage only) ---------- */

  function save() {
    try {
      if (KEEP) sessionStorage.setItem(STORE_KEY, JSON.stringify(transcript));
    } catch (e) { /* storage full or blocked: keep working in memory */ }
  }

  function load() {
    try {
      if (!KEEP) { sessionStorage.removeItem(STORE_KEY); return []; }
      var data = JSON.parse(sessionStorage.getItem(STORE_KEY) || '[]');
      return Array.isArray(data) ? data.map(clean).filter(Boolean) : [];
    } catch (e) { return []; }
  }

  // Normalise a message from the server or from storage; never trust shapes.
  function clean(m) {
    if (!m || typeof m !== 'object') return null;
    var who = WHO_LABEL[m.who] ? m.who : 'bot';
    var text = typeof m.text === 'string' ? m.text : '';
    var buttons = (Array.isArray(m.buttons) ? m.buttons : []).filter(function (b) {
      return b && typeof b.title === 'string' && typeof b.payload === 'string' && b.title;
    }).map(function (b) { return { title: b.title, payload: b.payload }; });
    var parts = who === 'bot' ? cleanParts(m.parts || m) : null;
    return text || buttons.length || parts
      ? { who: who, text: text, buttons: buttons, parts: parts } : null;
  }

  function str(v) { return typeof v === 'string' ? v : ''; }
  function isWeb(url) { return /^https:\/\/[^\s<>"'`]+$/.test(url); }

  // A reply's parts (cards, text after them, sources, their labels), field by field:
  // only https links, only tel: links made of digits, only payloads shaped like an intent.
  function cleanParts(m) {
    var cards = (Array.isArray(m.cards) ? m.cards : []).filter(function (c) {
      return c && typeof c === 'object' && str(c.name);
    }).map(function (c) {
      return { n: typeof c.n === 'number' ? c.n : null, name: str(c.name),
        distance: str(c.distance), kind: str(c.kind), address: str(c.address),
        phone: str(c.phone), tel: TEL_LINK_RE.test(str(c.tel)) ? c.tel : '',
        map: isWeb(str(c.map)) ? c.map : '',
        detail: INTENT_RE.test(str(c.detail)) ? c.detail : '' };
    });
    var sources = (Array.isArray(m.sources) ? m.sources : []).filter(function (s) {
      return s && isWeb(str(s.url)) && str(s.title);
    }).map(function (s) {
      return { title: str(s.title), short: str(s.short) || str(s.title), url: s.url };
    });
    var labels = {};
    var given = m.labels && typeof m.labels === 'object' ? m.labels : {};
    Object.keys(given).forEach(function (k) { if (str(given[k])) labels[k] = given[k]; });
    var after = str(m.after);
    // A reply with parts (the server sends its labels): even one without cards or sources,
    // such as an appointment summary, can be printed.
    return cards.length || sources.length || after || Object.keys(labels).length
      ? { cards: cards, after: after, sources: sources, labels: labels } : null;
  }

  /* ---------- text rendering: text nodes, <br> and safe links only ---------- */

  var LINK_RE = /(https:\/\/[^\s<>"'`]+|tel:\+?[0-9][0-9-]*)/g;

  // Drop trailing punctuation, and a ")" that does not close a "(" in the URL.
  function count(s, ch) { return s.split(ch).length - 1; }
  function trimLink(s) {
    while (/[.,;:!?\]\-)]$/.test(s)) {
      if (s.slice(-1) === ')' && count(s, '(') >= count(s, ')')) break;
      s = s.slice(0, -1);
    }
    return s;
  }

  function appendLine(parent, line, linkify) {
    if (!linkify) { parent.appendChild(document.createTextNode(line)); return; }
    var last = 0;
    line.replace(LINK_RE, function (match, _g, offset) {
      var url = trimLink(match);
      var isWeb = url.indexOf('https://') === 0 && url.length > 8;
      var isTel = url.indexOf('tel:') === 0 && /[0-9]/.test(url);
      if (!isWeb && !isTel) return match;
      if (offset > last) parent.appendChild(document.createTextNode(line.slice(last, offset)));
      var a = el('a', { href: url, 'class': 'pcn-link' }, url);
      if (isWeb) {
        a.setAttribute('target', '_blank');
        a.setAttribute('rel', 'noopener noreferrer');
        a.setAttribute('aria-describedby', 'pcn-newtab');
      }
      parent.appendChild(a);
      last = offset + url.length;
      return match;
    });
    if (last < line.length) parent.appendChild(document.createTextNode(line.slice(last)));
  }

  function appendText(parent, text, linkify) {
    text.split(/\r?\n/).forEach(function (line, i) {
      if (i) parent.appendChild(el('br'));
      appendLine(parent, line, linkify);
    });
  }

  /* ---------- transcript ---------- */

  // One entry: a visible sender label, then the message bubble (.pcn-msg holds
  // only the message text, so its textContent is exactly what was said).
  function render(entry, active) {
    var wrap = el('div', { 'class': 'pcn-entry pcn-entry-' + entry.who });
    var msg = el('div', { 'class': 'pcn-msg pcn-' + entry.who });
    appendText(msg, entry.text, entry.who === 'bot');
    add(wrap, el('span', { 'class': 'pcn-who' }, WHO_LABEL[entry.who] + ':'), msg);
    if (entry.parts) renderParts(wrap, entry.parts, active);
    ui.log.appendChild(wrap);
    if (entry.who === 'bot' && entry.buttons.length) {
      var group = el('div', { 'class': 'pcn-quick-group', role: 'group',
        'aria-label': 'Suggested replies' });
      entry.buttons.forEach(function (b) {
        var btn = el('button', { type: 'button', 'class': 'pcn-quick' }, b.title);
        btn.disabled = !active;
        btn.addEventListener('click', function () { send(b.payload, b.title); });
        group.appendChild(btn);
      });
      ui.log.appendChild(group);
    }
    return wrap;
  }

  // Result cards (name, distance, address, a big Call link, a short Map link, "More about
  // this one"), the text after them, the sources as titled links, and a Print button.
  function renderParts(wrap, parts, active) {
    var labels = parts.labels;
    if (parts.cards.length) {
      var list = el('ul', { 'class': 'pcn-cards' });
      parts.cards.forEach(function (c) {
        var id = 'pcn-card-' + (++uid);
        var item = el('li', { 'class': 'pcn-card' });
        var name = el('p', { 'class': 'pcn-card-name', id: id },
          (c.n != null ? c.n + '. ' : '') + c.name);
        add(item, name);
        var meta = [c.distance, c.kind].filter(Boolean).join(' \u00b7 ');
        if (meta) item.appendChild(el('p', { 'class': 'pcn-card-meta' }, meta));
        if (c.address) item.appendChild(el('p', { 'class': 'pcn-card-address' }, c.address));
        var actions = el('div', { 'class': 'pcn-card-actions' });
        if (c.tel) {
          actions.appendChild(el('a', { href: c.tel, 'class': 'pcn-call',
            'aria-describedby': id }, (labels.call || 'Call') + ' ' + c.phone));
        }
        if (c.map) {
          actions.appendChild(el('a', { href: c.map, 'class': 'pcn-map', target: '_blank',
            rel: 'noopener noreferrer', 'aria-describedby': id + ' pcn-newtab' },
            labels.map || 'Map'));
        }
        if (c.detail && labels.more) {
          var more = el('button', { type: 'button', 'class': 'pcn-quick pcn-more',
            'aria-describedby': id }, labels.more);
          more.disabled = !active;
          more.addEventListener('click', function () {
            send(c.detail, labels.more + ': ' + c.name);
          });
          actions.appendChild(more);
        }
        list.appendChild(add(item, actions));
      });
      wrap.appendChild(list);
    }
    if (parts.after) {
      var after = el('div', { 'class': 'pcn-after' });
      appendText(after, parts.after, true);
      wrap.appendChild(after);
    }
    if (parts.sources.length) {
      var line = el('p', { 'class': 'pcn-sources' },
        (parts.sources.length > 1 ? labels.sources || 'Sources:' : labels.source || 'Source:') + ' ');
      var shorts = parts.sources.map(function (s) { return s.short; });
      parts.sources.forEach(function (s, i) {
        // Two pages from one publisher: their full titles tell them apart.
        var repeated = shorts.indexOf(s.short) !== shorts.lastIndexOf(s.short);
        if (i) line.appendChild(document.createTextNode('; '));
        line.appendChild(el('a', { href: s.url, 'class': 'pcn-link', target: '_blank',
          rel: 'noopener noreferrer', 'aria-describedby': 'pcn-newtab', title: s.title },
          repeated ? s.title : s.short));
      });
      wrap.appendChild(line);
    }
    if (labels.print) {
      var print = el('button', { type: 'button', 'class': 'pcn-print',
        'aria-label': labels.print_name || labels.print }, labels.print);
      print.addEventListener('click', function () { printEntry(wrap); });
      wrap.appendChild(print);
    }
  }

  // Print one answer or result list on a clean page (widget.css, @media print).
  function printEntry(wrap) {
    clearPrint();
    wrap.classList.add('pcn-print-target');
    document.documentElement.classList.add('pcn-printing');
    window.print();
  }

  function clearPrint() {
    document.documentElement.classList.remove('pcn-printing');
    Array.prototype.forEach.call(ui.log.querySelectorAll('.pcn-print-target'),
      function (n) { n.classList.remove('pcn-print-target'); });
  }

  function push(entries) {
    var first = null;
    entries.forEach(function (e) {
      transcript.push(e);
      var node = render(e, true);
      first = first || node;
    });
    save();
    if (first) ui.log.scrollTop = first.offsetTop - 8; // show the start of the reply
  }

  // Disable the quick replies that are still live; returns them for undo.
  function disableQuick() {
    var live = Array.prototype.filter.call(ui.log.querySelectorAll('.pcn-quick'),
      function (b) { return !b.disabled; });
    live.forEach(function (b) { b.disabled = true; });
    return live;
  }

  function redraw() {
    while (ui.log.firstChild) ui.log.removeChild(ui.log.firstChild);
    var lastUser = -1;
    transcript.forEach(function (e, i) { if (e.who === 'user') lastUser = i; });
    transcript.forEach(function (e, i) { render(e, i > lastUser); });
    ui.log.scrollTop = ui.log.scrollHeight;
  }

  function notice(text) { push([{ who: 'notice', text: text, buttons: [], parts: null }]); }

  // The visible indicator is shown/hidden; a separate always-present status
  // region carries the announcement (live regions that appear are not reliable).
  function setBusy(on) {
    busy = on;
    ui.send.setAttribute('aria-disabled', on ? 'true' : 'false');
    ui.typing.hidden = !on;
    ui.status.textContent = on ? 'Navigator is typing\u2026' : '';
  }

  /* ---------- server calls ---------- */

  function post(url, body) {
    var ctrl = typeof AbortController === 'function' ? new AbortController() : null;
    var timer = ctrl && setTimeout(function () { ctrl.abort(); }, TIMEOUT_MS);
    var opts = { method: 'POST', credentials: 'same-origin',
      headers: { Accept: 'application/json' }, signal: ctrl ? ctrl.signal : undefined };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    var done = function () { clearTimeout(timer); };
    return fetch(url, opts).then(function (res) {
      return res.json().catch(function () { return null; }).then(function (data) {
        done();
        return { ok: res.ok, data: data || {} };
      });
    }, function (err) { done(); throw err; });
  }

  // A failed reply from the server (as opposed to a network failure).
  function ServerError(data) { this.data = data; }

  // Friendly text for a failure: the server's `message`, or our fallback.
  function errorText(err) {
    var data = err instanceof ServerError ? err.data : null;
    return data && typeof data.message === 'string' && data.message.trim()
      ? data.message : OFFLINE + emergency;
  }

  // The emergency line from the served config: its sentence, each number in it a tel:
  // link. Anything missing or malformed leaves the line as it is.
  function showEmergency(data) {
    var served = data && typeof data === 'object' ? data.emergency : null;
    if (!served || typeof served.text !== 'string' || !served.text.trim()) return;
    var text = served.text, at = 0, line = ui.emergency;
    while (line.firstChild) line.removeChild(line.firstChild);
    (Array.isArray(served.numbers) ? served.numbers : []).forEach(function (n) {
      if (!n || typeof n.label !== 'string' || !n.label) return;
      var found = text.indexOf(n.label, at);
      if (found < 0) return;
      if (found > at) line.appendChild(document.createTextNode(text.slice(at, found)));
      var tel = typeof n.tel === 'string' && TEL_RE.test(n.tel) ? n.tel : '';
      line.appendChild(tel ? el('a', { href: 'tel:' + tel, 'class': 'pcn-link' }, n.label)
        : document.createTextNode(n.label));
      at = found + n.label.length;
    });
    if (at < text.length) line.appendChild(document.createTextNode(text.slice(at)));
    emergency = text;
  }

  // The served welcome and its topic buttons (knowledge/replies.yml).
  function showWelcome(data) {
    var served = data && typeof data === 'object' ? clean(data.welcome) : null;
    if (!served || !served.text) return;
    welcome = { who: 'bot', text: served.text, buttons: served.buttons };
    // Still only the fallback greeting on screen: show the served one instead.
    if (transcript.length === 1 && transcript[0].fallback) {
      transcript = [];
      redraw();
      push([clean(welcome)]);
    }
  }

  function greeting() {
    if (welcome) return clean(welcome);
    var g = clean(GREETING);
    g.fallback = true;
    return g;
  }

  function loadConfig() {
    fetch(CONFIG_URL, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (res) { return res.ok ? res.json() : null; })
      .then(function (data) { showEmergency(data); showWelcome(data); })
      .catch(function () { /* unreachable or not JSON: keep the line without numbers */ });
  }

  // Send text or a button payload; `shown` is what appears as the user's message.
  function send(payload, shown, typed) {
    if (busy || !payload.trim()) return false;
    var gen = generation;
    var quick = disableQuick();
    clearPrint();
    push([{ who: 'user', text: shown, buttons: [], parts: null }]);
    ui.log.scrollTop = ui.log.scrollHeight;
    setBusy(true);
    ui.input.focus();                 // quick-reply buttons just got disabled
    post(CHAT_URL, { message: payload }).then(function (r) {
      if (gen !== generation) return;
      if (!r.ok || !Array.isArray(r.data.messages)) throw new ServerError(r.data);
      push(r.data.messages.map(function (m) {
        m = clean(m);
        return m && { who: 'bot', text: m.text, buttons: m.buttons, parts: m.parts };
      }).filter(Boolean));
    }).catch(function (err) {
      if (gen !== generation) return;
      quick.forEach(function (b) { b.disabled = false; });  // choices still valid
      notice(errorText(err));
      // Give typed text back so it can be sent again without retyping.
      if (typed && !ui.input.value) { ui.input.value = payload; updateCount(); }
    }).then(function () { if (gen === generation) setBusy(false); });
    return true;
  }

  function restart() {
    var gen = ++generation;
    setBusy(true);
    post(RESTART_URL).then(function (r) {
      if (gen !== generation) return;
      if (!r.ok) throw new ServerError(r.data);
      transcript = [];
      redraw();
      push([greeting()]);
    }).catch(function (err) {
      if (gen === generation) notice(errorText(err));
    }).then(function () {
      if (gen !== generation) return;
      setBusy(false);
      ui.input.focus();
    });
  }

  /* ---------- open / close ---------- */

  function open() {
    ui.panel.hidden = false;
    ui.root.classList.add('pcn-open');
    ui.launcher.setAttribute('aria-expanded', 'true');
    ui.input.focus();
    ui.log.scrollTop = ui.log.scrollHeight;
    if (!transcript.length) {
      // Short delay so screen readers treat the greeting as a live addition.
      setTimeout(function () { if (!transcript.length) push([greeting()]); }, 150);
    }
  }

  function close() {
    clearPrint();
    ui.panel.hidden = true;
    ui.root.classList.remove('pcn-open');
    ui.launcher.setAttribute('aria-expanded', 'false');
    ui.launcher.focus();
  }

  /* ---------- input: Enter sends, counter near the limit ---------- */

  function updateCount() {
    var n = ui.input.value.length;
    var near = n >= WARN_AT;
    ui.count.hidden = !near;
    ui.count.textContent = near ? n + ' / ' + MAX_LEN + ' characters' : '';
    // Announce only at a few thresholds, not on every key press.
    var left = MAX_LEN - n;
    var warn = left <= 0 ? 'Character limit reached.'
      : left <= 50 ? '50 characters or fewer left.'
      : near ? '100 characters or fewer left.' : '';
    if (warn !== lastWarn) { ui.countLive.textContent = warn; lastWarn = warn; }
  }

  function submitInput() {
    var text = ui.input.value;
    if (send(text, text, true)) { ui.input.value = ''; updateCount(); }
  }

  /* ---------- build the DOM ---------- */

  function build() {
    var root = ui.root = el('div', { id: 'pcn-root', 'class': 'pcn-root' });

    ui.launcher = el('button', { type: 'button', id: 'pcn-launcher', 'class': 'pcn-launcher',
      'data-testid': 'pcn-launcher', 'aria-expanded': 'false', 'aria-controls': 'pcn-panel' });
    add(ui.launcher, el('span', { 'class': 'pcn-launcher-icon', 'aria-hidden': 'true' }),
      el('span', {}, 'Chat with us'));

    var panel = ui.panel = el('div', { id: 'pcn-panel', 'class': 'pcn-panel',
      'data-testid': 'pcn-panel', role: 'dialog', 'aria-modal': 'false',
      'aria-labelledby': 'pcn-title' });
    panel.hidden = true;

    var header = el('div', { 'class': 'pcn-header' });
    ui.restart = el('button', { type: 'button', id: 'pcn-restart', 'class': 'pcn-btn pcn-btn-plain',
      'data-testid': 'pcn-restart' }, 'Start over');
    ui.close = el('button', { type: 'button', id: 'pcn-close', 'class': 'pcn-btn pcn-btn-plain pcn-close',
      'data-testid': 'pcn-close', 'aria-label': 'Close chat' });
    ui.close.appendChild(el('span', { 'aria-hidden': 'true' }, '\u2715'));
    add(header, el('h2', { id: 'pcn-title', 'class': 'pcn-title' }, TITLE),
      add(el('div', { 'class': 'pcn-actions' }, null), ui.restart, ui.close));

    var privacy = el('p', { 'class': 'pcn-privacy', id: 'pcn-privacy' }, PRIVACY);
    ui.emergency = el('p', { 'class': 'pcn-emergency', id: 'pcn-emergency',
      'data-testid': 'pcn-emergency' }, EMERGENCY_FALLBACK);

    // tabindex lets keyboard users scroll the log; links inside stay reachable too.
    ui.log = el('div', { id: 'pcn-log', 'class': 'pcn-log', 'data-testid': 'pcn-log',
      role: 'log', 'aria-live': 'polite', 'aria-relevant': 'additions',
      'aria-label': 'Conversation', tabindex: '0' });

    ui.typing = el('div', { id: 'pcn-typing', 'class': 'pcn-typing', 'data-testid': 'pcn-typing',
      'aria-hidden': 'true' });
    add(ui.typing, add(el('span', { 'class': 'pcn-dots' }), el('span'), el('span'), el('span')),
      el('span', {}, 'Navigator is typing\u2026'));
    ui.typing.hidden = true;
    ui.status = el('div', { id: 'pcn-status', 'class': 'pcn-sr', role: 'status',
      'aria-live': 'polite' });

    var form = ui.form = el('form', { 'class': 'pcn-form', novalidate: '' });
    ui.input = el('textarea', { id: 'pcn-input', 'class': 'pcn-input', 'data-testid': 'pcn-input',
      name: 'message', rows: '2', maxlength: String(MAX_LEN), autocomplete: 'off',
      placeholder: 'Type your question', 'aria-describedby': 'pcn-hint pcn-count' });
    ui.send = el('button', { type: 'submit', id: 'pcn-send', 'class': 'pcn-btn pcn-send',
      'data-testid': 'pcn-send', 'aria-disabled': 'false' }, 'Send');
    ui.count = el('p', { id: 'pcn-count', 'class': 'pcn-count' });
    ui.count.hidden = true;
    ui.countLive = el('span', { 'class': 'pcn-sr', role: 'status', 'aria-live': 'polite' });
    add(form,
      el('label', { 'for': 'pcn-input', 'class': 'pcn-sr' }, 'Your message'),
      el('span', { id: 'pcn-hint', 'class': 'pcn-sr' },
        'Press Enter to send, Shift and Enter for a new line.'),
      add(el('div', { 'class': 'pcn-row' }), ui.input, ui.send),
      ui.count, ui.countLive);

    add(panel, header, privacy, ui.emergency, ui.log, ui.typing, ui.status, form,
      el('span', { id: 'pcn-newtab', 'class': 'pcn-sr' }, '(opens in a new tab)'));
    add(root, ui.launcher, panel);

    /* events */
    ui.launcher.addEventListener('click', function () {
      if (ui.panel.hidden) open(); else close();
    });
    ui.close.addEventListener('click', close);
    ui.restart.addEventListener('click', restart);
    root.addEventListener('keydown', function (e) {
      if (e.key === 'Escape' && !ui.panel.hidden && !e.isComposing) {
        e.preventDefault();
        close();
      }
    });
    form.addEventListener('submit', function (e) { e.preventDefault(); submitInput(); });
    ui.input.addEventListener('keydown', function (e) {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
        e.preventDefault();
        submitInput();
      }
    });
    ui.input.addEventListener('input', updateCount);
    return root;
  }

  /* ---------- start: load CSS first so nothing flashes unstyled ---------- */

  function start() {
    if (document.getElementById('pcn-root')) return;   // included twice
    var root = build();
    loadConfig();
    transcript = load();
    redraw();
    var href = new URL('widget.css', BASE).href;
    var links = document.querySelectorAll('link[rel~="stylesheet"]');
    var linked = Array.prototype.some.call(links, function (l) { return l.href === href; });
    if (!linked) {
      root.hidden = true;
      var link = el('link', { rel: 'stylesheet', href: href });
      var show = function () { root.hidden = false; };
      link.addEventListener('load', show);
      link.addEventListener('error', show);        // still usable unstyled
      setTimeout(show, 3000);
      document.head.appendChild(link);
    }
    document.body.appendChild(root);
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
