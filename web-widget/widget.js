/*
 * Storefront support assistant: embeddable chat widget.
 *
 *   <script src="https://assistant.example.com/widget.js"
 *           data-assistant-url="https://assistant.example.com" async></script>
 *
 * Optional attributes: data-customer-token (a JWT signed by the store), data-token-url
 * (a same-origin URL answering {token}, e.g. a Shopify App Proxy path),
 * data-assistant-name (header title), data-accent-color (any CSS colour).
 * API: window.SupportAssistant = { identify(token), open(), close(), state } (state: open,
 * connected, identity status; never the session id).
 * A store may call the API before this async script has loaded by defining
 * `window.SupportAssistant = { q: [["identify", token]] }`; queued calls are replayed.
 *
 * Plain JavaScript, no build step. Everything renders inside an open Shadow DOM so the
 * store's CSS cannot reach it. Server and customer text is only ever set with
 * textContent (assistant text is built node by node from a Markdown subset, see
 * markdown()); the few constant SVG icons below are the only markup parsed.
 * The wire protocol is /v1/chat as described in PROTOCOL.md section 3.
 */
(function () {
  'use strict';
  if (window.SupportAssistant && window.SupportAssistant.__widget) return; // loaded twice

  // ---------------------------------------------------------------- configuration

  const script = document.currentScript || findOwnScript();
  function findOwnScript() {
    const all = document.querySelectorAll('script[src]');
    for (let i = all.length - 1; i >= 0; i--) {
      try { if (new URL(all[i].src, location.href).pathname.endsWith('/widget.js')) return all[i]; } catch (_) { /* bad src */ }
    }
    return null;
  }
  const attr = (name) => ((script && script.getAttribute(name)) || '').trim();

  // An empty or missing data-assistant-url means "wherever this script came from".
  const baseUrl = (function () {
    try {
      const v = attr('data-assistant-url');
      if (v) return new URL(v, location.href).href.replace(/[?#].*$/, '').replace(/\/+$/, '');
      if (script && script.src) return new URL(script.src, location.href).origin;
    } catch (_) { /* fall through */ }
    return location.origin;
  })();
  // http -> ws, https -> wss; a path prefix (assistant behind a reverse proxy) is kept.
  const wsUrl = baseUrl.replace(/^http/i, 'ws') + '/v1/chat';
  const locale = navigator.language || 'en';

  const PING_MS = 25000;
  const DEAD_MS = 60000;         // no frame at all for this long (pongs included): the socket is dead
  const RESEND_MAX_AGE = 600000; // unanswered messages older than this are no longer resent
  const LOG_MAX = 200;

  // ---------------------------------------------------------------- storage (sessionStorage, keys "sa:")

  const K = { session: 'sa:session_id', seq: 'sa:last_seq', log: 'sa:log', pending: 'sa:pending' };
  const storage = {
    get(k) { try { return sessionStorage.getItem(k); } catch (_) { return null; } },
    set(k, v) { try { sessionStorage.setItem(k, v); return true; } catch (_) { return false; } },
    del(k) { try { sessionStorage.removeItem(k); } catch (_) { /* storage disabled */ } },
    json(k, dflt) { try { const v = JSON.parse(this.get(k)); return Array.isArray(v) ? v : dflt; } catch (_) { return dflt; } },
  };

  // The widget's own state. Not put on window: the session id resumes the conversation, so any
  // script on the page that could read it could read the conversation too.
  const state = {
    connected: false, // socket open and the server's welcome received
    sessionId: storage.get(K.session) || null,
    lastSeq: Number(storage.get(K.seq)) || 0,
    identity: { status: 'guest' },
    open: false,
  };

  // The server replays only frames the client missed, and never echoes customer messages, so
  // a reload re-renders the transcript from this local log of what was shown in this tab.
  let log = storage.json(K.log, []);
  // Customer messages with no reply_to seen yet: resent with the same id after a reconnect.
  let pending = storage.json(K.pending, []);
  let outbox = [];  // other client frames waiting for a session
  let token = attr('data-customer-token') || null;
  // A Shopify store without a backend points this at its App Proxy path (e.g. /apps/assistant):
  // the proxy answers with a short-lived token for whoever is logged in to the storefront.
  const tokenUrl = attr('data-token-url') || null;
  let tokenFetched = false;

  let ws = null, welcomed = false, started = false, retries = 0;
  let retryTimer = null, pingTimer = null, typingTimer = null, lastFrameAt = 0;
  let handoffActive = false, handoffCooldown = false, verifyForm = null;
  const bubbles = new Map(); // customer message id -> bubble
  const streams = new Map(); // delta message_id -> in-progress bubble

  function saveLog() {
    if (log.length > LOG_MAX) log = log.slice(-LOG_MAX);
    while (!storage.set(K.log, JSON.stringify(log)) && log.length > 10) log = log.slice(Math.floor(log.length / 2));
  }
  function savePending() { storage.set(K.pending, JSON.stringify(pending)); }
  function setSeq(seq) { state.lastSeq = seq; storage.set(K.seq, String(seq)); }

  // ---------------------------------------------------------------- small DOM helpers

  function el(tag, props, ...children) {
    const n = document.createElement(tag);
    for (const k in props || {}) {
      const v = props[k];
      if (v == null || v === false) continue;
      if (k === 'text') n.textContent = String(v);
      else if (k === 'class') n.className = v;
      else if (k === 'testid') n.setAttribute('data-testid', v);
      else if (k.startsWith('on')) n.addEventListener(k.slice(2), v);
      else n.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) if (c != null && c !== false) n.append(c); // strings become text nodes
    return n;
  }

  // Only absolute http(s) URLs ever become links.
  function safeUrl(u) {
    if (typeof u !== 'string' || !/^https?:\/\//i.test(u.trim())) return null;
    try { return new URL(u.trim()).href; } catch (_) { return null; }
  }
  // `content` is a string or a node (e.g. the rendered label of a Markdown link).
  function link(url, content, testid) {
    const href = safeUrl(url);
    const text = content instanceof Node ? null : content, kid = text == null ? content : null;
    return href
      ? el('a', { href, target: '_blank', rel: 'noopener noreferrer', testid, text }, kid)
      : el('span', { testid, text }, kid);
  }
  // Plain text with bare http(s) URLs turned into links, built node by node.
  function richText(text) {
    const frag = document.createDocumentFragment();
    String(text || '').split(/(https?:\/\/[^\s<>"']+)/gi).forEach((part, i) => {
      if (i % 2 === 0) { if (part) frag.append(part); return; }
      const m = part.match(/^(.*?)([.,;:!?)\]]*)$/); // trailing punctuation is not part of the URL
      frag.append(link(m[1], m[1]), m[2]);
    });
    return frag;
  }

  // ---------------------------------------------------------------- Markdown (a safe subset)
  //
  // Assistant, agent and system text is Markdown quoted from the store's help articles. This
  // renders a small subset: paragraphs (blank lines), line breaks, "-"/"*" and "1." lists
  // (nested by indentation), "#".."###" headings as bold lines, simple pipe tables, **bold**,
  // *em* / _em_, `code`, [text](url) and bare URLs. Every node is built with createElement and
  // text nodes; only absolute http(s) URLs become links (safeUrl). Whatever is not recognised,
  // an unbalanced "*" included, stays literal text.
  function markdown(text) {
    const frag = document.createDocumentFragment();
    const lines = String(text == null ? '' : text).replace(/\r\n?/g, '\n').split('\n');
    let para = null; // lines of the paragraph being collected
    let lists = [];  // open lists, outermost first: { node, indent, ordered }
    const endPara = () => { if (para) frag.append(el('p', {}, mdInline(para.join('\n')))); para = null; };
    const endBlock = () => { endPara(); lists = []; };

    function listItem(indent, number, body) {
      const ordered = number != null;
      let top = lists[lists.length - 1];
      while (top && indent < top.indent) { lists.pop(); top = lists[lists.length - 1]; }
      if (!top || indent >= top.indent + 2 || top.ordered !== ordered) {
        // a first list, a list nested in the last item, or a list of the other kind after this one
        const parent = !top ? frag : indent >= top.indent + 2 ? top.node.lastChild : top.node.parentNode;
        if (top && parent !== top.node.lastChild) lists.pop();
        const node = el(ordered ? 'ol' : 'ul', { testid: 'sa-md-list', start: ordered && number !== 1 ? number : null });
        parent.append(node);
        lists.push(top = { node, indent, ordered });
      }
      top.node.append(el('li', {}, mdInline(body)));
    }

    for (let i = 0; i < lines.length; i++) {
      const line = lines[i].replace(/\s+$/, '');
      let m;
      if (!line) { endBlock(); continue; }
      if (/^ {0,3}([-*_])( *\1){2,}$/.test(line)) { endBlock(); continue; } // a --- rule: just a break
      if ((m = line.match(/^ {0,3}#{1,6}\s+(.*?)(\s+#+)?$/))) {
        endBlock();
        frag.append(el('p', { class: 'md-h' }, el('strong', {}, mdInline(m[1]))));
        continue;
      }
      if ((m = line.match(/^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/))) {
        endPara();
        listItem(m[1].replace(/\t/g, '    ').length, /\d/.test(m[2]) ? parseInt(m[2], 10) : null, m[3]);
        continue;
      }
      if (line.includes('|') && /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)+\|?\s*$/.test(lines[i + 1] || '')) {
        endBlock();
        const rows = [line];
        for (i += 2; i < lines.length && lines[i].includes('|') && lines[i].trim(); i++) rows.push(lines[i]);
        i--;
        frag.append(mdTable(rows));
        continue;
      }
      if (lists.length && /^\s/.test(line)) { // an indented line continues the last list item
        const li = lists[lists.length - 1].node.lastChild;
        li.append(el('br'), mdInline(line.trim()));
        continue;
      }
      lists = [];
      (para = para || []).push(line.trim());
    }
    endPara();
    return frag;
  }

  // A pipe table: a header row, the |---| row (already skipped), then body rows.
  function mdTable(rows) {
    const cells = (row) => row.trim().replace(/^\|/, '').replace(/\|$/, '').split('|').map((c) => c.trim());
    const row = (r, tag) => el('tr', {}, ...cells(r).map((c) => el(tag, {}, mdInline(c))));
    return el('div', { class: 'md-table' }, el('table', {},
      el('thead', {}, row(rows[0], 'th')), el('tbody', {}, ...rows.slice(1).map((r) => row(r, 'td')))));
  }

  const MD_LINK = /^\[([^[\]\n]+)\]\(\s*([^\s()]*(?:\([^\s()]*\)[^\s()]*)*)(?:\s+"[^"\n]*")?\s*\)/;
  const MD_ESCAPABLE = /[!-/:-@[-`{-~]/;

  // Inline Markdown of one block; `inLink` is set for a link's label (no links inside links).
  function mdInline(s, inLink) {
    const frag = document.createDocumentFragment();
    let buf = '';
    const put = (node) => {
      buf.split('\n').forEach((part, k) => { if (k) frag.append(el('br')); if (part) frag.append(part); });
      buf = '';
      if (node) frag.append(node);
    };
    for (let i = 0; i < s.length;) {
      const c = s[i], rest = s.slice(i);
      let m;
      if (c === '\\' && MD_ESCAPABLE.test(s[i + 1] || '')) { buf += s[i + 1]; i += 2; continue; }
      if (c === '`') {
        const run = rest.match(/^`+/)[0];
        const end = s.indexOf(run, i + run.length);
        if (end > 0 && s[end + run.length] !== '`') {
          put(el('code', { text: s.slice(i + run.length, end).replace(/^ ([^]*) $/, '$1') }));
          i = end + run.length;
        } else { buf += run; i += run.length; }
        continue;
      }
      if (c === '[' && !inLink && (m = rest.match(MD_LINK))) {
        put(link(m[2], mdInline(m[1], true))); // not http(s): the label as plain text
        i += m[0].length;
        continue;
      }
      if ((c === 'h' || c === 'H') && !inLink && !/\w/.test(s[i - 1] || '') && (m = rest.match(/^https?:\/\/[^\s<>"'`]+/i))) {
        const url = mdTrimUrl(m[0]);
        put(link(url, url));
        i += url.length;
        continue;
      }
      const em = (c === '*' || c === '_') && mdEmphasis(s, i);
      if (em) { put(el(em.tag, {}, mdInline(em.inner, inLink))); i = em.end; continue; }
      buf += c; i++;
    }
    put(null);
    return frag;
  }

  // Trailing punctuation is not part of a bare URL, nor is a ")" that closes a parenthesis
  // opened before it: "(see https://x.example/a_(b))." links https://x.example/a_(b).
  function mdTrimUrl(url) {
    for (;;) {
      const u = url.replace(/[.,;:!?*_\]]+$/, '');
      const unbalanced = u.endsWith(')') && u.split('(').length < u.split(')').length;
      url = unbalanced ? u.slice(0, -1) : u;
      if (!unbalanced) return url;
    }
  }

  // The **strong** / __strong__ / *em* / _em_ span opening at s[i], or null. The opener must be
  // followed, and the closer preceded, by a non-space; "_" never opens or closes inside a word,
  // so snake_case_names and a lone "*" stay as they are.
  function mdEmphasis(s, i) {
    const ch = s[i], len = s[i + 1] === ch ? 2 : 1, delim = ch.repeat(len);
    const word = (x) => /[\p{L}\p{N}]/u.test(x || '');
    if (!s[i + len] || /\s/.test(s[i + len])) return null;
    if (ch === '_' && word(s[i - 1])) return null;
    for (let j = s.indexOf(delim, i + len + 1); j > 0; j = s.indexOf(delim, j + 1)) {
      if (len === 2) while (s[j + 2] === ch) j++; // "***both***": the inner * belongs to the content
      else if (s[j + 1] === ch || s[j - 1] === ch) continue; // part of a ** pair inside an *em*
      if (/\s/.test(s[j - 1]) || (ch === '_' && word(s[j + len]))) continue;
      return { tag: len === 2 ? 'strong' : 'em', inner: s.slice(i + len, j), end: j + len };
    }
    return null;
  }

  const ICONS = {
    chat: '<path d="M21 11.5a8.4 8.4 0 0 1-.9 3.8 8.5 8.5 0 0 1-7.6 4.7 8.4 8.4 0 0 1-3.8-.9L3 21l1.9-5.7a8.4 8.4 0 0 1-.9-3.8 8.5 8.5 0 0 1 4.7-7.6 8.4 8.4 0 0 1 3.8-.9h.5a8.5 8.5 0 0 1 8 8v.5z"/>',
    close: '<path d="M18 6 6 18M6 6l12 12"/>',
    send: '<path d="M22 2 11 13M22 2l-7 20-4-9-9-4 20-7z"/>',
    up: '<path d="M14 9V5a3 3 0 0 0-3-3l-4 9v11h11.3a2 2 0 0 0 2-1.7l1.4-9a2 2 0 0 0-2-2.3zM7 22H4a2 2 0 0 1-2-2v-7a2 2 0 0 1 2-2h3"/>',
    down: '<path d="M10 15v4a3 3 0 0 0 3 3l4-9V2H5.7a2 2 0 0 0-2 1.7l-1.4 9a2 2 0 0 0 2 2.3zm7-13h2.7A2.3 2.3 0 0 1 22 4v7a2.3 2.3 0 0 1-2.3 2H17"/>',
  };
  function icon(name, size) {
    const t = document.createElement('template'); // constant markup only
    t.innerHTML = `<svg width="${size}" height="${size}" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true" focusable="false">${ICONS[name]}</svg>`;
    return t.content.firstChild;
  }

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    // randomUUID exists only in secure contexts (https, localhost); a plain-http demo needs this.
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  // ---------------------------------------------------------------- formatting

  function money(amount, currency) {
    if (amount && typeof amount === 'object') { currency = currency || amount.currency_code || amount.currency; amount = amount.amount; }
    if (amount == null || amount === '') return '';
    const n = Number(amount);
    if (currency && Number.isFinite(n)) {
      try { return new Intl.NumberFormat(locale, { style: 'currency', currency }).format(n); } catch (_) { /* unknown code */ }
    }
    return currency ? `${amount} ${currency}` : String(amount);
  }
  function date(s) {
    if (!s) return '';
    const d = new Date(s);
    if (isNaN(d)) return String(s); // e.g. a range such as "Nov 24-26": shown as sent
    // A bare "2025-11-24" parses as UTC midnight; formatting it in local time could show the day before.
    const utc = /^\d{4}-\d{2}-\d{2}$/.test(String(s)) ? { timeZone: 'UTC' } : {};
    return d.toLocaleDateString(locale, { year: 'numeric', month: 'short', day: 'numeric', ...utc });
  }
  // "IN_TRANSIT" / "partially_fulfilled" -> "In transit" / "Partially fulfilled"
  function human(s) {
    if (s == null || s === '') return '';
    const t = String(s).replace(/_/g, ' ').toLowerCase();
    return t.charAt(0).toUpperCase() + t.slice(1);
  }

  // ---------------------------------------------------------------- UI

  const host = document.createElement('support-assistant-widget'); // a custom tag: store rules for div/span never match it
  const shadow = host.attachShadow({ mode: 'open' });
  const CSS = `
:host{all:initial}
*,*::before,*::after{box-sizing:border-box}
.root{--accent:#1f2937;--accent-fg:#fff;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#111827}
button{font:inherit;cursor:pointer}
:focus-visible{outline:2px solid #2563eb;outline-offset:2px}
.launcher{position:fixed;right:20px;bottom:20px;z-index:2147483000;width:56px;height:56px;border:0;border-radius:50%;background:var(--accent);color:var(--accent-fg);box-shadow:0 6px 20px rgba(0,0,0,.22);display:grid;place-items:center;transition:transform .15s}
.launcher:hover{transform:scale(1.06)}
.dot{position:absolute;top:3px;right:3px;width:13px;height:13px;border-radius:50%;background:#ef4444;border:2px solid #fff}
.panel{position:fixed;right:20px;bottom:88px;z-index:2147483000;width:380px;height:min(640px,calc(100vh - 108px));display:flex;flex-direction:column;background:#fff;border-radius:16px;overflow:hidden;box-shadow:0 12px 40px rgba(0,0,0,.18),0 0 0 1px rgba(0,0,0,.06)}
.panel[hidden]{display:none}
header{display:flex;align-items:center;gap:10px;padding:14px 12px 14px 16px;background:var(--accent);color:var(--accent-fg)}
.titles{flex:1;min-width:0}
.title{font-weight:600;font-size:15px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.identity{font-size:12px;opacity:.8}.identity:empty{display:none}
.icon-btn{border:0;background:transparent;color:inherit;width:32px;height:32px;border-radius:8px;display:grid;place-items:center}
.icon-btn:hover{background:rgba(255,255,255,.15)}
.disclosure{margin:0;padding:7px 16px;font-size:12px;color:#4b5563;background:#f9fafb;border-bottom:1px solid #e5e7eb}
.conn{font-size:12px;color:#92400e;background:#fffbeb;text-align:center;padding:4px}.conn:empty{display:none}
.transcript{flex:1;overflow-y:auto;overscroll-behavior:contain;padding:16px;display:flex;flex-direction:column;gap:10px}
.msg{max-width:86%;padding:9px 12px;border-radius:14px;overflow-wrap:anywhere}
.text{white-space:pre-wrap}
.text.md{white-space:normal}
.md>*{margin:0}.md>*+*{margin-top:6px}
.md ul,.md ol{padding-left:20px}.md li+li{margin-top:2px}.md li>ul,.md li>ol{margin:2px 0 0}
.md-h{font-weight:600}
.md code{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:rgba(0,0,0,.06);padding:1px 4px;border-radius:4px}
.md-table{overflow-x:auto}.md table{border-collapse:collapse;font-size:12px}
.md th,.md td{border:1px solid #d1d5db;padding:3px 6px;text-align:left;vertical-align:top;overflow-wrap:break-word}.md th{background:rgba(0,0,0,.04)}
.msg.customer{align-self:flex-end;background:var(--accent);color:var(--accent-fg);border-bottom-right-radius:4px}
.msg.customer a{color:inherit}
.msg.assistant,.msg.agent{align-self:flex-start;background:#f3f4f6;border-bottom-left-radius:4px}
.msg.agent{background:#eaf2ff}
.msg.system{align-self:center;background:none;color:#6b7280;font-size:12px;text-align:center;padding:0 8px}
.msg a{color:#1d4ed8}
.author{font-size:12px;font-weight:600;color:#1d4ed8;margin-bottom:2px}
.meta{font-size:11px;opacity:.8;margin-top:3px;text-align:right}.meta:empty{display:none}
.msg[data-state=sending]{opacity:.7}
.msg[data-state=failed]{background:#fee2e2;color:#991b1b}
.retry{border:0;background:none;color:inherit;text-decoration:underline;padding:0 0 0 6px;font-size:11px}
.sys{align-self:center;max-width:92%;font-size:12px;color:#6b7280;text-align:center}
.sys[data-kind=error]{color:#9a3412}
.card{margin-top:8px;background:#fff;border:1px solid #e5e7eb;border-radius:10px;padding:10px 12px;font-size:13px}
.card-head{display:flex;justify-content:space-between;align-items:baseline;gap:8px;font-weight:600}
.pill{font-size:11px;font-weight:500;padding:2px 8px;border-radius:999px;background:#eef2f7;color:#374151;white-space:nowrap}
.pill.ok{background:#dcfce7;color:#166534}.pill.no{background:#fee2e2;color:#991b1b}
dl{display:grid;grid-template-columns:auto 1fr;gap:2px 10px;margin:8px 0 0}dt{color:#6b7280}dd{margin:0}
.card ul{margin:6px 0 0;padding-left:18px}
.chips{display:flex;flex-wrap:wrap;gap:4px;margin-top:6px}
.chip{font-size:11px;border:1px solid #d1d5db;border-radius:6px;padding:1px 6px}.chip.out{color:#9ca3af;text-decoration:line-through}
.sources{margin-top:6px;font-size:12px;color:#6b7280;display:flex;flex-wrap:wrap;gap:2px 8px}
.fb-bar{display:flex;gap:2px;margin-top:4px}
.fb{border:0;background:none;padding:4px;border-radius:6px;color:#9ca3af;display:grid}
.fb:hover{color:#374151;background:#e5e7eb}.fb[aria-pressed=true]{color:#111827;background:#e5e7eb}
.typing{align-self:flex-start;margin:0 16px 8px;padding:10px 12px;background:#f3f4f6;border-radius:14px;display:flex;gap:4px}
.typing[hidden]{display:none}
.typing i{width:6px;height:6px;border-radius:50%;background:#9ca3af;animation:sa-b 1.2s infinite}
.typing i:nth-child(2){animation-delay:.15s}.typing i:nth-child(3){animation-delay:.3s}
@keyframes sa-b{0%,60%,100%{transform:translateY(0);opacity:.5}30%{transform:translateY(-4px);opacity:1}}
.verify{align-self:stretch;display:grid;gap:8px;padding:12px;border:1px solid #e5e7eb;border-radius:12px;background:#fafafa}
.verify label{display:grid;gap:3px;font-size:12px;color:#374151}
input,textarea{font:inherit;color:inherit}
.verify input{padding:8px 10px;border:1px solid #d1d5db;border-radius:8px;background:#fff}
.btn{border:0;border-radius:8px;padding:8px 12px;background:var(--accent);color:var(--accent-fg);font-weight:600}
.btn:disabled,.send:disabled{opacity:.55;cursor:default}
.verify-error{font-size:12px;color:#b91c1c}.verify-error:empty{display:none}
footer{border-top:1px solid #e5e7eb;padding:8px 12px 12px;display:grid;gap:6px}
.handoff{justify-self:start;border:0;background:none;padding:2px 0;font-size:12px;color:#374151;text-decoration:underline}
.handoff:disabled{color:#9ca3af;cursor:default}
.composer{display:flex;align-items:flex-end;gap:8px;border:1px solid #d1d5db;border-radius:12px;padding:6px 6px 6px 12px}
.composer:focus-within{border-color:#6b7280}
textarea{flex:1;border:0;outline:none;resize:none;background:transparent;min-height:24px;max-height:120px;padding:5px 0;line-height:1.4}
.send{width:34px;height:34px;border:0;border-radius:9px;background:var(--accent);color:var(--accent-fg);display:grid;place-items:center}
@media (max-width:480px){.panel{inset:0;width:100%;height:100%;border-radius:0}.root.is-open .launcher{display:none}}
@media (prefers-reduced-motion:reduce){*{animation:none!important;transition:none!important}}`;

  const root = el('div', { class: 'root' });
  const accent = attr('data-accent-color');
  if (accent && window.CSS && CSS.supports && CSS.supports('color', accent)) root.style.setProperty('--accent', accent);

  const dot = el('span', { class: 'dot', hidden: true });
  const launcher = el('button', { type: 'button', class: 'launcher', testid: 'sa-launcher', 'aria-label': 'Open chat with support', 'aria-expanded': 'false', 'aria-controls': 'sa-panel', onclick: () => (state.open ? close() : open()) }, icon('chat', 26), dot);
  const titleEl = el('div', { class: 'title', id: 'sa-title', text: attr('data-assistant-name') || 'Support assistant' });
  const identityEl = el('div', { class: 'identity', testid: 'sa-identity' });
  const disclosure = el('p', { class: 'disclosure', testid: 'sa-disclosure', text: 'You are chatting with an AI assistant.' });
  const connEl = el('div', { class: 'conn', role: 'status', testid: 'sa-connection' });
  const transcript = el('div', { class: 'transcript', role: 'log', 'aria-live': 'polite', 'aria-label': 'Conversation', testid: 'sa-transcript' });
  const typingEl = el('div', { class: 'typing', testid: 'sa-typing', hidden: true, role: 'status', 'aria-label': 'The assistant is typing' }, el('i'), el('i'), el('i'));
  const input = el('textarea', { testid: 'sa-input', rows: 1, maxlength: 4000, placeholder: 'Type your message…', 'aria-label': 'Your message' });
  const sendBtn = el('button', { type: 'submit', class: 'send', testid: 'sa-send', 'aria-label': 'Send message' }, icon('send', 18));
  const handoffBtn = el('button', { type: 'button', class: 'handoff', testid: 'sa-handoff', 'aria-label': 'Talk to a person', text: 'Talk to a person', onclick: requestHandoff });
  const composer = el('form', { class: 'composer', onsubmit: (e) => { e.preventDefault(); submitInput(); } }, input, sendBtn);
  const panel = el('div', { class: 'panel', id: 'sa-panel', testid: 'sa-panel', role: 'dialog', 'aria-labelledby': 'sa-title', hidden: true },
    el('header', {}, el('div', { class: 'titles' }, titleEl, identityEl),
      el('button', { type: 'button', class: 'icon-btn', testid: 'sa-close', 'aria-label': 'Close chat', onclick: close }, icon('close', 20))),
    disclosure, connEl, transcript, typingEl, el('footer', {}, handoffBtn, composer));
  root.append(launcher, panel);
  shadow.append(el('style', { text: CSS }), root);

  input.addEventListener('keydown', (e) => {
    // Enter sends, Shift+Enter is a newline; never send while an IME is composing.
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); submitInput(); }
  });
  input.addEventListener('input', autosize);
  panel.addEventListener('keydown', (e) => { if (e.key === 'Escape' && !e.isComposing) { e.stopPropagation(); close(); } });

  function autosize() { input.style.height = 'auto'; input.style.height = Math.min(input.scrollHeight, 120) + 'px'; }

  function append(node, force) {
    const nearBottom = transcript.scrollHeight - transcript.scrollTop - transcript.clientHeight < 80;
    transcript.append(node);
    if (force || nearBottom) transcript.scrollTop = transcript.scrollHeight;
  }
  function systemLine(text, kind) {
    const n = el('div', { class: 'sys', testid: 'sa-system', 'data-kind': kind || 'info', text });
    append(n);
    return n;
  }
  function setConn(text) { connEl.textContent = text; }
  function setTyping(on) {
    typingEl.hidden = !on;
    clearTimeout(typingTimer);
    if (on) typingTimer = setTimeout(() => setTyping(false), 30000); // never spin forever if "off" is lost
  }
  function setIdentity(id) {
    state.identity = id && id.status ? id : { status: 'guest' };
    const { status, name } = state.identity;
    identityEl.dataset.status = status;
    identityEl.textContent = status === 'verified' ? (name ? `Signed in as ${name}` : 'Signed in')
      : status === 'order_verified' ? (name ? `Verified: ${name}` : 'Order verified') : '';
  }
  function updateHandoffBtn() { handoffBtn.disabled = handoffActive || handoffCooldown; }

  // ---------------------------------------------------------------- rendering frames

  function renderCustomer(id, text, status) {
    const b = el('div', { class: 'msg customer', testid: 'sa-msg', 'data-role': 'customer', 'data-id': id },
      el('div', { class: 'text' }, richText(text)), el('div', { class: 'meta' }));
    bubbles.set(id, b);
    append(b, true);
    setMsgState(id, status);
  }
  function setMsgState(id, status) {
    const b = bubbles.get(id);
    if (!b) return;
    b.dataset.state = status;
    const meta = b.querySelector('.meta');
    meta.textContent = status === 'sending' ? 'Sending…' : status === 'failed' ? 'Not sent.' : '';
    if (status === 'failed') meta.append(el('button', { type: 'button', class: 'retry', 'aria-label': 'Retry sending this message', text: 'Retry', onclick: () => retry(id) }));
  }

  function renderMessage(f) {
    const role = ['assistant', 'agent', 'system'].includes(f.role) ? f.role : 'assistant';
    // The final message replaces the bubble its deltas were streamed into (plain text so far), in place.
    const key = streams.has(f.id) ? f.id : (f.reply_to && streams.has(f.reply_to) ? f.reply_to : null);
    if (key && !f.text) f.text = streams.get(key).firstChild.textContent; // a final frame without text keeps what was streamed
    const b = el('div', { class: `msg ${role}`, testid: 'sa-msg', 'data-role': role, 'data-id': f.id });
    if (role === 'agent') b.append(el('div', { class: 'author', text: (f.author && f.author.name) || 'Support team' }));
    b.append(el('div', { class: 'text md' }, markdown(f.text)));
    for (const c of Array.isArray(f.cards) ? f.cards : []) {
      if (c && c.kind === 'order') b.append(orderCard(c));
      else if (c && c.kind === 'product') b.append(productCard(c));
    }
    if (Array.isArray(f.citations) && f.citations.length) {
      b.append(el('div', { class: 'sources' }, el('span', { text: 'Sources:' }),
        ...f.citations.map((c) => link(c && c.url, (c && c.title) || 'Help article', 'sa-citation'))));
    }
    if (role === 'assistant' && f.id) b.append(feedbackBar(f.id));
    if (key) { streams.get(key).replaceWith(b); streams.delete(key); if (!streams.size) transcript.removeAttribute('aria-busy'); }
    else append(b);
    setTyping(false);
  }

  function orderCard(c) {
    const no = String(c.order_number == null ? '' : c.order_number);
    const rows = [['Fulfillment', human(c.fulfillment_status)], ['Placed', date(c.placed_at)],
      ['Estimated delivery', date(c.estimated_delivery)], ['Total', money(c.total, c.currency)]];
    const card = el('div', { class: 'card', testid: 'sa-card-order' },
      el('div', { class: 'card-head' }, el('span', { text: `Order ${no.startsWith('#') ? no : '#' + no}` }),
        c.status ? el('span', { class: 'pill', text: human(c.status) }) : null),
      el('dl', {}, ...rows.filter((r) => r[1]).flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v })])));
    const items = Array.isArray(c.items) ? c.items : [];
    if (items.length) card.append(el('ul', { 'aria-label': 'Items' }, ...items.map((it) => el('li', { text: `${it.quantity || 1} × ${it.title || 'Item'}` }))));
    for (const t of Array.isArray(c.tracking) ? c.tracking : []) {
      const label = [t.company, t.number].filter(Boolean).join(' ') || 'Track package';
      card.append(el('div', { class: 'track' }, 'Tracking: ', link(t.url, label, 'sa-tracking')));
    }
    return card;
  }

  function productCard(c) {
    const avail = c.available === true ? el('span', { class: 'pill ok', text: 'In stock' })
      : c.available === false ? el('span', { class: 'pill no', text: 'Out of stock' }) : null;
    const card = el('div', { class: 'card', testid: 'sa-card-product' },
      el('div', { class: 'card-head' }, link(c.url, c.title || 'Product'), avail));
    const price = money(c.price, c.currency);
    if (price) card.append(el('div', { class: 'price', text: price }));
    // Variants may be plain strings or objects ({title|name, available?, price?}).
    const variants = Array.isArray(c.variants) ? c.variants : [];
    if (variants.length) {
      const chips = variants.slice(0, 16).map((v) => {
        const o = typeof v === 'object' && v ? v : { title: String(v) };
        const label = [o.title || o.name || '', o.price != null && o.price !== c.price ? money(o.price, c.currency) : ''].filter(Boolean).join(' · ');
        return el('span', { class: 'chip' + (o.available === false ? ' out' : ''), text: label + (o.available === false ? ' (sold out)' : '') });
      });
      if (variants.length > 16) chips.push(el('span', { class: 'chip', text: `+${variants.length - 16} more` }));
      card.append(el('div', { class: 'chips', 'aria-label': 'Variants' }, ...chips));
    }
    return card;
  }

  function feedbackBar(messageId) {
    const mk = (rating, label) => el('button', { type: 'button', class: 'fb', 'data-rating': rating, testid: `sa-feedback-${rating}`, 'aria-label': label, 'aria-pressed': 'false',
      onclick: () => { sendFrame({ type: 'feedback', message_id: messageId, rating }); render({ type: '_feedback', message_id: messageId, rating }, true); } }, icon(rating, 15));
    return el('div', { class: 'fb-bar', 'data-for': messageId }, mk('up', 'Helpful answer'), mk('down', 'Unhelpful answer'));
  }
  function markFeedback(f) {
    const bar = [...transcript.querySelectorAll('.fb-bar')].find((b) => b.dataset.for === f.message_id);
    if (bar) bar.querySelectorAll('.fb').forEach((btn) => btn.setAttribute('aria-pressed', String(btn.dataset.rating === f.rating)));
  }

  function showVerifyForm(f, live) {
    removeVerifyForm();
    const order = el('input', { testid: 'sa-verify-order', name: 'order_number', required: true, autocomplete: 'off', placeholder: '#1001' });
    const email = el('input', { testid: 'sa-verify-email', name: 'email', type: 'email', required: true, autocomplete: 'email', placeholder: 'you@example.com' });
    const submit = el('button', { type: 'submit', class: 'btn', testid: 'sa-verify-submit', text: 'Verify' });
    const err = el('div', { class: 'verify-error', role: 'alert', testid: 'sa-verify-error' });
    verifyForm = el('form', { class: 'verify', testid: 'sa-verify', 'aria-label': 'Verify your order', 'data-seq': f.seq,
      onsubmit: (e) => {
        e.preventDefault();
        const on = order.value.trim(), em = email.value.trim();
        if (!on || !/^[^\s@]+@[^\s@]+$/.test(em)) { err.textContent = 'Please enter your order number and the email used for the order.'; return; }
        err.textContent = '';
        submit.disabled = true; submit.textContent = 'Checking…';
        sendFrame({ type: 'verify', order_number: on, email: em });
      } },
    el('label', {}, 'Order number', order), el('label', {}, 'Email used for the order', email), submit, err);
    append(verifyForm, live);
    if (live && state.open) order.focus();
  }
  function removeVerifyForm() { if (verifyForm) verifyForm.remove(); verifyForm = null; }

  const HANDOFF_TEXT = {
    requested: () => 'Connecting you with our team…',
    created: (f) => `A teammate has the conversation${f.reference ? ` (ref ${f.reference})` : ''}. Your messages now go to them.`,
    agent_replied: () => 'A teammate has replied.',
    closed: () => 'Your conversation with our team is closed. The assistant can help again.',
    // Never a spinner: the customer is told a person will come back to them.
    failed_retrying: () => "We're having trouble reaching our team right now. A person will follow up with you here as soon as they can.",
  };

  function onError(f, live) {
    if (f.reply_to && bubbles.has(f.reply_to)) { ack(f.reply_to); setMsgState(f.reply_to, 'failed'); }
    if ((f.code === 'verification_failed' || f.code === 'verification_locked') && verifyForm) {
      verifyForm.querySelector('.verify-error').textContent = f.message || 'We could not verify that order.';
      const submit = verifyForm.querySelector('button');
      submit.textContent = 'Verify';
      submit.disabled = f.code === 'verification_locked';
      return;
    }
    if (live && handoffCooldown) { handoffCooldown = false; updateHandoffBtn(); }
    systemLine(f.message || 'Something went wrong. Please try again.', 'error');
  }

  // Renders one transcript entry: a server frame, or a local `_customer` / `_feedback` entry.
  // live=false while re-rendering the stored log after a reload (nothing is sent or re-logged).
  function render(f, live) {
    if (f.reply_to && live && f.type !== 'error') ack(f.reply_to);
    switch (f.type) {
      case '_customer': renderCustomer(f.id, f.text, pending.some((p) => p.id === f.id) ? 'sending' : 'sent'); break;
      case '_feedback': markFeedback(f); break;
      case 'message': renderMessage(f); break;
      case 'verify_required': {
        const b = el('div', { class: 'msg assistant', testid: 'sa-msg', 'data-role': 'assistant', 'data-kind': 'verify_required' }, el('div', { class: 'text md' }, markdown(f.text)));
        append(b); setTyping(false);
        if (Array.isArray(f.methods) && f.methods.includes('order_email')) showVerifyForm(f, live);
        break;
      }
      case 'verified':
        setIdentity(f.identity); removeVerifyForm();
        systemLine("Thanks, you're verified.");
        break;
      case 'handoff': {
        const text = (HANDOFF_TEXT[f.status] || (() => 'Update from our team.'))(f);
        systemLine(text).dataset.status = f.status || '';
        handoffActive = f.status !== 'closed';
        updateHandoffBtn();
        break;
      }
      case 'error': onError(f, live); break;
      default: return; // unknown types are ignored (the protocol may grow)
    }
    if (live) {
      log.push(f); saveLog();
      if (!state.open && (f.type === 'message' || f.type === 'verify_required')) dot.hidden = false;
    }
  }

  function onDelta(f) {
    if (!f.message_id) return;
    let b = streams.get(f.message_id);
    if (!b) {
      b = el('div', { class: 'msg assistant', testid: 'sa-msg', 'data-role': 'assistant', 'data-streaming': 'true', 'data-id': f.message_id }, el('div', { class: 'text' }));
      streams.set(f.message_id, b);
      transcript.setAttribute('aria-busy', 'true'); // screen readers hear the finished reply, not every fragment
      setTyping(false);
      append(b);
    }
    const nearBottom = transcript.scrollHeight - transcript.scrollTop - transcript.clientHeight < 80;
    b.firstChild.append(String(f.text || ''));
    if (nearBottom) transcript.scrollTop = transcript.scrollHeight;
  }

  // ---------------------------------------------------------------- connection

  function connect() {
    started = true;
    clearTimeout(retryTimer); retryTimer = null;
    if (ws) return;
    if (tokenUrl && !token && !tokenFetched) {
      tokenFetched = true;
      fetch(tokenUrl, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
        .then((r) => (r.ok ? r.json() : null))
        .then((body) => { if (body && typeof body.token === 'string') token = body.token; })
        .catch(() => { /* no token: carry on as a guest */ })
        .finally(connect);
      return;
    }
    let sock;
    try { sock = new WebSocket(wsUrl); } catch (_) { scheduleReconnect(); return; }
    ws = sock; welcomed = false;
    setConn(retries ? 'Reconnecting…' : 'Connecting…');
    // Each handler checks `sock === ws` so a socket we abandoned (identify, dead socket) stays silent.
    sock.onopen = () => { if (sock !== ws) return; lastFrameAt = Date.now(); sendHello(); startPing(); };
    sock.onmessage = (ev) => {
      if (sock !== ws) return;
      let f; try { f = JSON.parse(ev.data); } catch (_) { return; }
      if (f && typeof f.type === 'string') onFrame(f);
    };
    // Closed for idleness: wait for the customer (a message, the tab shown
    // again) instead of reconnecting, or an idle tab would hold a socket forever.
    sock.onclose = (ev) => { if (sock === ws) dropSocket(ev.reason !== 'idle'); };
  }

  function dropSocket(reconnect = true) {
    const s = ws;
    ws = null; welcomed = false; state.connected = false;
    stopPing(); setTyping(false);
    if (s) { try { s.close(); } catch (_) { /* already closed */ } }
    if (reconnect) scheduleReconnect(); else setConn('Paused. Send a message to carry on.');
  }

  function scheduleReconnect() {
    if (retryTimer) return;
    const base = Math.min(30000, 1000 * 2 ** retries); // 1s, 2s, 4s … 30s
    retries = Math.min(retries + 1, 10);
    // Jitter keeps every open widget from reconnecting in the same second after a server restart.
    const delay = Math.min(30000, base * (0.75 + Math.random() * 0.5));
    setConn('Reconnecting…');
    retryTimer = setTimeout(() => { retryTimer = null; connect(); }, delay);
  }
  function reconnectNow() {
    if (!started || ws) return;
    clearTimeout(retryTimer); retryTimer = null; retries = 0;
    connect();
  }
  window.addEventListener('online', reconnectNow);
  document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') reconnectNow(); });

  function startPing() {
    stopPing();
    pingTimer = setInterval(() => {
      if (Date.now() - lastFrameAt > DEAD_MS) { dropSocket(); return; } // half-open TCP: onclose may never come
      raw({ type: 'ping' });
    }, PING_MS);
  }
  function stopPing() { clearInterval(pingTimer); pingTimer = null; }

  function raw(frame) {
    if (!ws || ws.readyState !== 1) return false;
    try { ws.send(JSON.stringify(frame)); return true; } catch (_) { return false; }
  }
  function sendFrame(frame) { if (!(welcomed && raw(frame))) outbox.push(frame); }

  function sendHello() {
    const hello = { type: 'hello', locale, page: { url: location.href, title: document.title } };
    if (token) hello.token = token;
    if (state.sessionId) { hello.session_id = state.sessionId; hello.last_seq = state.lastSeq; }
    raw(hello);
  }

  function onFrame(f) {
    lastFrameAt = Date.now();
    switch (f.type) {
      case 'welcome': return onWelcome(f);
      case 'pong': return;
      case 'typing': return setTyping(!!f.on);
      case 'delta': return onDelta(f);
    }
    if (typeof f.seq === 'number') {
      if (f.seq <= state.lastSeq) return; // already shown: replay overlap or a duplicate delivery
      setSeq(f.seq);
    }
    if (f.type === 'error' && f.code === 'unauthorized' && !welcomed && token) {
      // The token was refused and no session exists yet: carry on as a guest on the same socket.
      token = null;
      systemLine("We couldn't confirm your sign-in, so you're chatting as a guest.", 'error');
      sendHello();
      return;
    }
    render(f, true);
  }

  function onWelcome(f) {
    const resumed = !!f.resumed && f.session_id === state.sessionId;
    if (!resumed) {
      // A new session numbers its frames from scratch: a stale last_seq would hide them all.
      if (state.sessionId && log.length) systemLine('A new conversation has started.');
      setSeq(Number(f.seq) || 0);
    } else if (Number(f.seq) < state.lastSeq) {
      setSeq(Number(f.seq) || 0); // the server knows fewer frames than we saw: don't drop new ones
    }
    state.sessionId = f.session_id || null;
    if (state.sessionId) storage.set(K.session, state.sessionId);
    if (f.ai_disclosure) disclosure.textContent = f.ai_disclosure;
    if (f.assistant_name && !attr('data-assistant-name')) titleEl.textContent = f.assistant_name;
    setIdentity(f.identity);
    welcomed = true; state.connected = true; retries = 0;
    setConn('');
    flush();
  }

  // After (re)connecting: resend unanswered messages with their original ids (the server
  // dedupes by id), then anything else queued while offline.
  function flush() {
    const now = Date.now();
    pending = pending.filter((p) => now - p.at < RESEND_MAX_AGE || bubbles.get(p.id)?.dataset.state === 'sending');
    savePending();
    for (const p of pending) {
      if (!raw({ type: 'message', id: p.id, text: p.text })) return;
      setMsgState(p.id, 'sent');
    }
    const queued = outbox; outbox = [];
    queued.forEach(sendFrame);
  }

  function ack(id) {
    if (!pending.some((p) => p.id === id)) return;
    pending = pending.filter((p) => p.id !== id);
    savePending();
    if (bubbles.get(id)?.dataset.state === 'sending') setMsgState(id, 'sent');
  }

  // ---------------------------------------------------------------- actions

  function submitInput() {
    const text = input.value.trim();
    if (!text) return;
    input.value = ''; autosize();
    sendMessage(text.slice(0, 4000));
  }

  function sendMessage(text) {
    const id = uuid();
    pending.push({ id, text, at: Date.now() });
    savePending();
    render({ type: '_customer', id, text }, true); // shown at once, in the "sending" state
    if (!started) connect(); else reconnectNow(); // after an idle close, the socket comes back now
    if (welcomed && raw({ type: 'message', id, text })) setMsgState(id, 'sent');
  }

  function retry(id) {
    const b = bubbles.get(id);
    if (!b) return;
    const text = b.querySelector('.text').textContent;
    // The server answered this id with an error, so the retry is a new message with a new id.
    b.remove(); bubbles.delete(id);
    log = log.filter((e) => !(e.type === '_customer' && e.id === id)); saveLog();
    sendMessage(text);
  }

  function requestHandoff() {
    sendFrame({ type: 'handoff_request' });
    if (!started) connect();
    handoffCooldown = true; updateHandoffBtn();
    setTimeout(() => { handoffCooldown = false; updateHandoffBtn(); }, 5000);
  }

  function open() {
    mount();
    state.open = true;
    panel.hidden = false;
    root.classList.add('is-open');
    launcher.setAttribute('aria-expanded', 'true');
    launcher.setAttribute('aria-label', 'Close chat with support');
    dot.hidden = true;
    if (!started) connect(); // lazy: a page view that never opens the chat opens no session
    transcript.scrollTop = transcript.scrollHeight;
    input.focus();
  }

  function close() {
    const hadFocus = shadow.activeElement && panel.contains(shadow.activeElement);
    state.open = false;
    panel.hidden = true;
    root.classList.remove('is-open');
    launcher.setAttribute('aria-expanded', 'false');
    launcher.setAttribute('aria-label', 'Open chat with support');
    if (hadFocus) launcher.focus();
  }

  // A new identity keeps nothing from the previous session: not the socket, the session id,
  // the transcript, nor anything queued.
  function identify(newToken) {
    token = newToken ? String(newToken) : null;
    const s = ws; ws = null;
    if (s) { try { s.close(1000); } catch (_) { /* ignore */ } }
    clearTimeout(retryTimer); retryTimer = null; retries = 0;
    welcomed = false; state.connected = false; stopPing(); setTyping(false);
    state.sessionId = null; state.lastSeq = 0;
    log = []; pending = []; outbox = [];
    Object.values(K).forEach((k) => storage.del(k));
    transcript.textContent = ''; bubbles.clear(); streams.clear(); transcript.removeAttribute('aria-busy');
    verifyForm = null; handoffActive = false; updateHandoffBtn();
    setIdentity({ status: 'guest' });
    connect();
  }

  // ---------------------------------------------------------------- start

  let mounted = false;
  function mount() {
    if (mounted || !document.body) return;
    mounted = true;
    document.body.append(host);
  }
  if (document.body) mount(); else document.addEventListener('DOMContentLoaded', mount);

  // The transcript as it was before the reload; one bad stored entry must not stop the widget.
  log.forEach((f) => { try { render(f, false); } catch (_) { /* skip it */ } });
  // Resume at once when there is something to resume: replies that arrived while away show up,
  // and messages typed before the reload are delivered.
  if (state.sessionId || pending.length) connect();

  // What the page (and the tests) may read: live, read-only, without the session id or seq.
  const publicState = Object.freeze({
    get open() { return state.open; },
    get connected() { return state.connected; },
    get identity() { return { status: state.identity.status }; },
  });
  const prev = window.SupportAssistant;
  window.SupportAssistant = { identify, open, close, state: publicState, __widget: true };
  if (prev && Array.isArray(prev.q)) {
    prev.q.forEach(([method, ...args]) => { if (typeof window.SupportAssistant[method] === 'function') window.SupportAssistant[method](...args); });
  }
})();
