/*
 * Bazaar Bridge buyer widget: <bazaar-chat>, embedded as the README shows.
 *
 * One file, no framework, no build step. Everything renders into an open Shadow DOM
 * (open so that accessibility tools can inspect it), with its styles inside, so the
 * shop's CSS and ours never mix. The server is the only source of history: the widget
 * keeps nothing but the last stream `seq` in memory, so reloads, tabs and devices agree.
 * Attachments are fetched with the Authorization header and shown through object URLs,
 * because <img src> can't send a header and the token must stay out of URLs.
 * The API contract is docs/widget-api.md.
 */
(() => {
  'use strict';

  if (customElements.get('bazaar-chat')) return; // the script was included twice

  // Captured now: document.currentScript is only set while this file runs.
  const SCRIPT_SRC = document.currentScript ? document.currentScript.src : '';

  const DRAFT = '#draft'; // thread key of the conversation the first message will start
  const PAGE_SIZE = 50;
  const TYPING_IDLE_MS = 3000; // we stop "typing" after this long without a keystroke
  const TYPING_REPEAT_MS = 20000; // while typing goes on, say so again this often
  const SELLER_TYPING_MS = 30000; // forget a seller's "typing" if no "stopped" arrives
  const PING_MS = 25000;
  const REPLACED = 4000; // the close code of a stream a newer one of the buyer replaced
  const RANK = { pending: 0, failed: 0, sent: 1, read: 2 };
  // The server's default limit; it is the judge, this only spares a doomed upload.
  const MAX_FILE_BYTES = 20 * 1024 * 1024; // the bridge's default media.max_upload_mb
  const ACCEPT = 'image/*,.pdf,.txt,.doc,.docx,.xls,.xlsx,.ppt,.pptx,.odt,.ods,.odp';
  const THUMB_BOX = 220; // an inline image fits in a square this many pixels wide
  // Icons from Feather (MIT), drawn with the text colour.
  const PAPERCLIP = 'M21.44 11.05l-9.19 9.19a6 6 0 0 1-8.49-8.49l9.19-9.19a4 4 0 0 1 5.66 5.66l-9.2 9.19a2 2 0 0 1-2.83-2.83l8.49-8.48';
  const FILE_ICON = 'M13 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V9zM13 2v7h7';


  const STRINGS = {
    en: {
      ask: 'Ask a question',
      dialog: 'Chat with the seller',
      conversations: 'Your conversations',
      back: 'All conversations',
      close: 'Close chat',
      signIn: '{link} to ask the seller a question.', // {link}: signInLink, a link or not
      signInLink: 'Sign in',
      label: 'Your message',
      placeholder: 'Write a message…',
      send: 'Send',
      sending: 'Sending…',
      sent: 'Sent',
      read: 'Read',
      failed: 'Not sent',
      retry: 'Retry',
      edited: 'edited',
      typing: '{name} is typing…',
      seller: 'Seller',
      earlier: 'Load earlier messages',
      loading: 'Loading…',
      messages: 'Messages',
      empty: 'No conversations yet.',
      start: 'Ask the seller about “{title}”. The answer will appear here.',
      askAbout: 'Ask about “{title}”',
      general: 'Question',
      blocked: 'This conversation is blocked. New messages cannot be sent.',
      sellerBlocked: 'The seller has closed this conversation. New messages cannot be sent.',
      buyerBlocked: 'You blocked this seller. New messages cannot be sent.',
      buyerBlockedToo: 'You have blocked this seller too.',
      more: 'More actions',
      block: 'Block seller',
      blockTitle: 'Block this seller?',
      blockText: 'The seller will no longer be able to write to you in any of your conversations with them, and you will not be able to write to them. You can unblock them later.',
      blockYes: 'Block',
      cancel: 'Cancel',
      unblock: 'Unblock seller',
      unblocked: 'The conversation is open again.',
      blockedList: 'Blocked',
      archived: 'This conversation is archived.',
      disabled: 'This seller is not taking questions in chat right now.',
      error: 'Something went wrong. Please try again.',
      reconnecting: 'Reconnecting…',
      incoming: 'New message from {name}: {text}',
      attach: 'Attach a file',
      drop: 'Drop the file here to attach it',
      tooLarge: 'The file is larger than {mb} MB.',
      uploading: 'Uploading {name}',
      download: 'Download',
      closeImage: 'Close image',
      showOriginal: 'Show original',
      showTranslation: 'Show translation',
      notTranslated: 'Not translated',
      held: 'To send with your message',
      remove: 'Remove {name}',
      online: 'Online',
      away: 'Away',
      awayUntil: 'Away · replies from {time}',
      within: 'usually replies within {n} min',
      withinH: 'usually replies within {n} h',
      automatic: 'Automatic reply',
      chatOff: 'Leave the seller a message: they will get back to you.',
      contact: 'Your e-mail or phone (optional)',
      thanks: 'Thank you! The seller has your message.',
      unread: { one: '{n} unread message', other: '{n} unread messages' },
      order: 'Order {id}',
      orderLink: 'See it in your orders',
      buy: 'Buy',
      placed: 'Placed',
      paid: 'Paid',
      shipped: 'Shipped',
      delivered: 'Delivered',
      cancelled: 'Cancelled',
      open: 'Open',
      accepted: 'Accepted',
      expired: 'Expired',
      withdrawn: 'Withdrawn',
    },
    ru: {
      ask: 'Задать вопрос',
      dialog: 'Чат с продавцом',
      conversations: 'Ваши переписки',
      back: 'Все переписки',
      close: 'Закрыть чат',
      signIn: '{link}, чтобы задать вопрос продавцу.',
      signInLink: 'Войдите',
      label: 'Ваше сообщение',
      placeholder: 'Напишите сообщение…',
      send: 'Отправить',
      sending: 'Отправляется…',
      sent: 'Отправлено',
      read: 'Прочитано',
      failed: 'Не отправлено',
      retry: 'Повторить',
      edited: 'изменено',
      typing: '{name} печатает…',
      seller: 'Продавец',
      earlier: 'Показать более ранние сообщения',
      loading: 'Загрузка…',
      messages: 'Сообщения',
      empty: 'Переписок пока нет.',
      start: 'Задайте продавцу вопрос о «{title}». Ответ появится здесь.',
      askAbout: 'Спросить о «{title}»',
      general: 'Вопрос',
      blocked: 'Эта переписка заблокирована. Новые сообщения отправить нельзя.',
      sellerBlocked: 'Продавец закрыл эту переписку. Новые сообщения отправить нельзя.',
      buyerBlocked: 'Вы заблокировали этого продавца. Новые сообщения отправить нельзя.',
      buyerBlockedToo: 'Вы тоже заблокировали этого продавца.',
      more: 'Другие действия',
      block: 'Заблокировать продавца',
      blockTitle: 'Заблокировать этого продавца?',
      blockText: 'Продавец больше не сможет писать вам ни в одной из переписок с ним, а вы не сможете писать ему. Разблокировать его можно позже.',
      blockYes: 'Заблокировать',
      cancel: 'Отмена',
      unblock: 'Разблокировать продавца',
      unblocked: 'Переписка снова открыта.',
      blockedList: 'Заблокированные',
      archived: 'Эта переписка в архиве.',
      disabled: 'Этот продавец сейчас не принимает вопросы в чате.',
      error: 'Что-то пошло не так. Попробуйте ещё раз.',
      reconnecting: 'Переподключение…',
      incoming: 'Новое сообщение от {name}: {text}',
      attach: 'Прикрепить файл',
      drop: 'Отпустите файл, чтобы прикрепить его',
      tooLarge: 'Файл больше {mb} МБ.',
      uploading: 'Загрузка файла {name}',
      download: 'Скачать',
      closeImage: 'Закрыть изображение',
      showOriginal: 'Показать оригинал',
      showTranslation: 'Показать перевод',
      notTranslated: 'Не переведено',
      held: 'Будет отправлено с сообщением',
      remove: 'Убрать {name}',
      online: 'В сети',
      away: 'Нет на месте',
      awayUntil: 'Нет на месте · ответит с {time}',
      within: 'обычно отвечает за {n} мин',
      withinH: 'обычно отвечает за {n} ч',
      automatic: 'Автоматический ответ',
      chatOff: 'Оставьте продавцу сообщение: он свяжется с вами.',
      contact: 'Ваш e-mail или телефон (необязательно)',
      thanks: 'Спасибо! Продавец получил ваше сообщение.',
      unread: {
        one: '{n} непрочитанное сообщение',
        few: '{n} непрочитанных сообщения',
        many: '{n} непрочитанных сообщений',
        other: '{n} непрочитанного сообщения',
      },
      order: 'Заказ {id}',
      orderLink: 'Открыть в ваших заказах',
      buy: 'Купить',
      placed: 'Оформлен',
      paid: 'Оплачен',
      shipped: 'Отправлен',
      delivered: 'Доставлен',
      cancelled: 'Отменён',
      open: 'Действует',
      accepted: 'Принято',
      expired: 'Истекло',
      withdrawn: 'Отозвано',
    },
  };

  function pickLang(...candidates) {
    for (const tag of candidates) {
      const base = String(tag || '').toLowerCase().split(/[-_]/)[0];
      if (STRINGS[base]) return base;
    }
    return 'en';
  }

  /** The browser's own variant of `lang` ("en-GB" writes "28 Nov, 14:05", "en-US"
   *  "Nov 28, 02:05 PM"), else the first candidate in it: how the buyer writes dates. */
  function pickLocale(lang, ...candidates) {
    for (const tag of [...(navigator.languages || []), ...candidates]) {
      try {
        const base = String(tag || '').toLowerCase().split('-')[0];
        if (base === lang && Intl.DateTimeFormat.supportedLocalesOf(tag).length) return tag;
      } catch {
        // not a language tag ("en_GB"): try the next
      }
    }
    return lang;
  }

  function translator(lang) {
    const table = STRINGS[lang];
    const plurals = new Intl.PluralRules(lang);
    return (key, vars = {}) => {
      let text = table[key] ?? STRINGS.en[key];
      if (typeof text === 'object') text = text[plurals.select(vars.n)] ?? text.other;
      return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ''));
    };
  }


  /** Creates an element; strings become text nodes, so nothing here parses HTML. */
  function h(tag, props = {}, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (value == null || value === false) continue;
      if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
      else if (key === 'class') el.className = value;
      else el.setAttribute(key, value === true ? '' : value);
    }
    for (const child of children.flat()) {
      if (child != null && child !== false) el.append(child);
    }
    return el;
  }

  /** Moves `nodes` into `parent` in order, touching only what changed, so focus survives. */
  function reconcile(parent, nodes) {
    let cursor = parent.firstChild;
    for (const node of nodes) {
      if (node === cursor) cursor = cursor.nextSibling;
      else parent.insertBefore(node, cursor);
    }
    while (cursor) {
      const next = cursor.nextSibling;
      cursor.remove();
      cursor = next;
    }
  }

  /** The JWT's claims, unverified: only to read `lang`, `exp` and `email`; the server checks it. */
  function jwtClaims(token) {
    try {
      const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      const bytes = Uint8Array.from(atob(part), (c) => c.charCodeAt(0));
      return JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      return null;
    }
  }

  function uuid() {
    if (crypto.randomUUID) return crypto.randomUUID();
    // randomUUID needs a secure context; a shop on plain http still gets unique ids.
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const x = [...b].map((v) => v.toString(16).padStart(2, '0')).join('');
    return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
  }

  /** The bridge's public URL: widget.js is served at {public_url}/widget/widget.js. */
  function defaultApi() {
    if (!SCRIPT_SRC) return location.origin;
    const url = new URL(SCRIPT_SRC);
    const path = url.pathname.replace(/\/widget\/widget\.js$/, '');
    return url.origin + (path === url.pathname ? '' : path);
  }

  /** A message's time: "14:05" today, "28 Nov, 14:05" before, with the year if another. */
  function messageTime(date, locale) {
    const now = new Date();
    const options = { hour: '2-digit', minute: '2-digit' };
    if (date.toDateString() !== now.toDateString()) {
      options.day = 'numeric';
      options.month = 'short';
      if (date.getFullYear() !== now.getFullYear()) options.year = 'numeric';
    }
    return date.toLocaleString(locale, options);
  }

  /** A link or picture from the shop or the marketplace, http(s) only: an attribute must
   *  not run script. */
  function httpUrl(value) {
    try {
      const url = new URL(value, document.baseURI);
      if (url.protocol === 'https:' || url.protocol === 'http:') return url.href;
    } catch {
      // not a URL
    }
    return null;
  }

  /** The shop's sign-in page (`login_url`). */
  function loginUrl(value) {
    const url = value ? httpUrl(value) : null;
    if (value && !url) console.warn('bazaar-chat: login_url is not an http(s) URL');
    return url;
  }

  /** An amount (a decimal string) in its currency, as the buyer writes money. */
  function money(amount, currency, locale) {
    try {
      return new Intl.NumberFormat(locale, { style: 'currency', currency }).format(Number(amount));
    } catch {
      return `${amount} ${currency}`; // a code Intl doesn't know
    }
  }

  function sameContext(a, b) {
    return !!a && !!b && a.type === b.type && String(a.id) === String(b.id);
  }

  function svgIcon(path) {
    const NS = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(NS, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('focusable', 'false');
    const line = document.createElementNS(NS, 'path');
    line.setAttribute('d', path);
    svg.append(line);
    return svg;
  }

  function humanSize(bytes, lang) {
    const units = ['byte', 'kilobyte', 'megabyte', 'gigabyte'];
    let n = bytes || 0;
    let i = 0;
    for (; n >= 1024 && i < units.length - 1; i++) n /= 1024;
    return new Intl.NumberFormat(lang, {
      style: 'unit',
      unit: units[i],
      unitDisplay: i ? 'short' : 'long',
      maximumFractionDigits: i && n < 10 ? 1 : 0,
    }).format(n);
  }

  /** An image's inline size, its own fitted into THUMB_BOX: the log doesn't jump on load. */
  function fitBox(width, height) {
    if (!(width > 0 && height > 0)) return [THUMB_BOX, Math.round(THUMB_BOX * 0.75)];
    const scale = Math.min(1, THUMB_BOX / width, THUMB_BOX / height);
    return [Math.max(1, Math.round(width * scale)), Math.max(1, Math.round(height * scale))];
  }

  /** The text the buyer reads: their own words as they wrote them (the server's `text` is
   *  the seller's translation), the seller's in the buyer's language. */
  function shownText(m) {
    return m.sender === 'buyer' && m.original ? m.original.text : m.text;
  }

  function preview(m) {
    const attachments = m.attachments || [];
    return shownText(m) || (attachments.length ? attachments[0].name : '');
  }

  const path = (...parts) => parts.map((part) => `/${encodeURIComponent(part)}`).join('');

  function attachmentPath(conversationId, attachment, thumbnail) {
    return path('conversations', conversationId, 'attachments', attachment.attachment_id) +
      (thumbnail ? '?thumbnail=1' : '');
  }


  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.error) || `HTTP ${status}`);
      this.status = status; // 0: the network failed
      this.errcode = body && body.errcode;
      this.retryAfter = body && body.retry_after_ms;
    }
  }

  class Api {
    constructor(base, token) {
      this.base = base.replace(/\/+$/, '') + '/widget/v1';
      this.token = token;
    }

    /** A fetch with the token in the header (never the URL); ApiError unless it is a 2xx. */
    async fetch(method, path, body) {
      const headers = { Authorization: `Bearer ${this.token}` };
      if (body !== undefined) headers['Content-Type'] = 'application/json';
      let response;
      try {
        response = await fetch(this.base + path, { method, headers, body: body && JSON.stringify(body) });
      } catch {
        throw new ApiError(0, null);
      }
      if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
      return response;
    }

    async call(method, path, body) {
      return (await this.fetch(method, path, body)).json().catch(() => null);
    }

    async blob(path) {
      return (await this.fetch('GET', path)).blob().catch(() => {
        throw new ApiError(0, null); // the connection broke mid-way
      });
    }

    /** Posts a multipart form. XMLHttpRequest, not fetch: only it reports upload progress. */
    upload(path, form, onProgress) {
      return new Promise((resolve, reject) => {
        const xhr = new XMLHttpRequest();
        xhr.open('POST', this.base + path);
        xhr.setRequestHeader('Authorization', `Bearer ${this.token}`);
        xhr.upload.onprogress = (event) => {
          if (event.lengthComputable) onProgress(event.loaded / event.total);
        };
        xhr.onload = () => {
          let answer = null;
          try {
            answer = JSON.parse(xhr.responseText);
          } catch {
            // not JSON: a proxy's error page; the status says enough
          }
          if (xhr.status >= 200 && xhr.status < 300) resolve(answer);
          else reject(new ApiError(xhr.status, answer));
        };
        xhr.onerror = xhr.onabort = xhr.ontimeout = () => reject(new ApiError(0, null));
        xhr.send(form);
      });
    }

    streamUrl(since) {
      const url = new URL(this.base + '/stream');
      url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
      if (since != null) url.searchParams.set('since', since);
      url.searchParams.set('access_token', this.token);
      return url.href;
    }
  }

  /**
   * The buyer's live feed. Reconnects with growing, jittered delays and resumes from the
   * last `seq` it saw, so a dropped connection loses nothing. Without a seq yet (nothing
   * arrived so far) the server starts from its newest frame. A buyer has a few streams at
   * most: when a newer tab's stream replaces this one, it waits until the buyer looks at
   * this page again (`wake`), so tabs never take turns closing each other.
   */
  class Stream {
    constructor(api, onFrame, onStatus) {
      this.api = api;
      this.onFrame = onFrame;
      this.onStatus = onStatus; // (connected: bool, resumed: bool)
      this.seq = null;
      this.attempt = 0;
      this.everOpened = false;
      this.stopped = false;
    }

    open() {
      if (this.stopped || this.ws) return;
      clearTimeout(this.retryTimer);
      const ws = new WebSocket(this.api.streamUrl(this.seq));
      this.ws = ws;
      ws.onopen = () => {
        this.attempt = 0;
        this.onStatus(true, this.everOpened);
        this.everOpened = true;
        this.keepAlive();
      };
      ws.onmessage = (event) => this.receive(event.data);
      ws.onclose = (event) => this.lost(ws, event.code);
      ws.onerror = () => ws.close();
    }

    receive(data) {
      this.awaitingPong = false;
      let frame;
      try {
        frame = JSON.parse(data);
      } catch {
        return;
      }
      if (frame.type === 'pong') return;
      if (typeof frame.seq === 'number') {
        if (this.seq != null && frame.seq <= this.seq) return;
        this.seq = frame.seq;
      }
      this.onFrame(frame);
    }

    // Browsers hide the server's pings; ours notices a silently dead connection in a minute.
    keepAlive() {
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => {
        if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
        if (this.awaitingPong) return this.ws.close();
        this.awaitingPong = true;
        this.ws.send(JSON.stringify({ type: 'ping' }));
      }, PING_MS);
    }

    lost(ws, code) {
      if (ws !== this.ws) return;
      this.ws = null;
      this.awaitingPong = false;
      clearInterval(this.pingTimer);
      if (this.stopped) return;
      if (code === REPLACED) {
        this.replaced = true;
        return;
      }
      this.onStatus(false, false);
      const delay = Math.min(30000, 500 * 2 ** this.attempt++) * (0.5 + Math.random() / 2);
      this.retryTimer = setTimeout(() => this.open(), delay);
    }

    /** Try again now (the browser came back online); a replaced stream waits for `wake`. */
    nudge() {
      if (this.ws || this.stopped || this.replaced) return;
      this.attempt = 0;
      this.open();
    }

    /** The buyer looks at this page again (the tab is shown, the window focused). */
    wake() {
      this.replaced = false;
      this.nudge();
    }

    stop() {
      this.stopped = true;
      clearTimeout(this.retryTimer);
      clearInterval(this.pingTimer);
      if (this.ws) this.ws.close();
      this.ws = null;
    }
  }


  /** Keeps a stale answer from undoing a newer one: status only moves forward, edits
   *  only to a later version, a removal sticks. */
  function merge(old, incoming) {
    const keepStatus =
      old.message_id === incoming.message_id && RANK[old.status] > RANK[incoming.status];
    const keepText = old.edited_at && (!incoming.edited_at || incoming.edited_at < old.edited_at);
    const status = keepStatus ? old.status : incoming.status;
    const text = keepText ? {
      text: old.text,
      html: old.html,
      original: old.original,
      translation: old.translation,
      edited_at: old.edited_at,
    } : {};
    Object.assign(old, incoming, text, { status, deleted: old.deleted || incoming.deleted });
    delete old.error;
    return old;
  }

  class Thread {
    constructor() {
      this.items = [];
      this.loaded = false;
      this.hasMore = false;
    }

    find(m) {
      return this.items.find(
        (x) =>
          (m.message_id && x.message_id === m.message_id) ||
          (m.client_id && x.sender === 'buyer' && m.sender === 'buyer' && x.client_id === m.client_id),
      );
    }

    upsert(m) {
      const old = this.find(m);
      if (old) merge(old, m);
      else this.items.push({ ...m });
      return !old;
    }

    /** The server's latest page replaces what we had, keeping newer and unsent messages. */
    setLatest(page, hasMore) {
      const merged = page.map((m) => {
        const old = this.find(m);
        return old ? merge(old, m) : { ...m };
      });
      this.items = merged.concat(this.items.filter((x) => !merged.includes(x)));
      this.loaded = true;
      this.hasMore = hasMore;
    }

    prepend(page, hasMore) {
      const fresh = page.filter((m) => !this.find(m)).map((m) => ({ ...m }));
      this.items = fresh.concat(this.items);
      this.hasMore = hasMore;
    }

    visible() {
      return this.items.filter((m) => !m.deleted);
    }

    lastConfirmed() {
      return [...this.items].reverse().find((m) => m.message_id);
    }

    lastFromSeller() {
      return [...this.items].reverse().find((m) => m.sender === 'seller' && m.message_id);
    }
  }


  /** One job of the element (BazaarChat), which holds the state and wires the parts. */
  class Part {
    constructor(chat) {
      this.chat = chat;
    }
  }

  class ThreadView extends Part {
    reset() {
      this.readUpTo = new Map(); // conversation id → last message id we marked read
      this.sellerTyping = null;
      this.originals = new Set(); // keys of seller messages shown as written, untranslated
    }

    async page(id, query) {
      const answer = await this.chat.api.call('GET', `${path('conversations', id, 'messages')}?${new URLSearchParams(query)}`);
      return answer.messages || [];
    }

    async loadLatest(id) {
      try {
        const page = await this.page(id, { limit: PAGE_SIZE });
        this.chat.threadOf(id).setLatest(page, page.length >= PAGE_SIZE);
      } catch (error) {
        return this.chat.failed(error);
      }
      this.chat.render({ scroll: 'bottom' });
      this.markRead();
    }

    /** Catches up on what arrived while the stream was down and we had no seq. */
    async loadNewer(id) {
      const last = this.chat.threadOf(id).lastConfirmed();
      if (!last) return this.loadLatest(id);
      try {
        for (const m of await this.page(id, { after: last.message_id, limit: 100 })) this.chat.threadOf(id).upsert(m);
      } catch (error) {
        return this.chat.failed(error);
      }
      this.chat.render({ scroll: 'follow' });
      this.markRead();
    }

    async loadEarlier() {
      const id = this.chat.current;
      const thread = this.chat.threadOf(id);
      const first = thread.items.find((m) => m.message_id);
      if (!first || thread.loadingEarlier) return;
      thread.loadingEarlier = true;
      try {
        const page = await this.page(id, { before: first.message_id, limit: PAGE_SIZE });
        thread.prepend(page, page.length >= PAGE_SIZE);
      } catch (error) {
        this.chat.failed(error);
      } finally {
        thread.loadingEarlier = false;
      }
      this.chat.render({ scroll: 'anchor' });
    }

    applyMessage(id, message, created) {
      if (!message) return;
      const conv = this.chat.convs.get(id);
      if (!conv) this.chat.conversations.refreshSoon();
      if (conv && (!conv.last_message || conv.last_message.message_id === message.message_id ||
          created)) {
        conv.last_message = message;
        conv.last_message_at = message.created_at;
      }
      const isNew = this.chat.threads.has(id) ? this.chat.threadOf(id).upsert(message) : created;
      if (message.sender === 'seller' && created && isNew) {
        if (this.sellerTyping && this.sellerTyping.id === id) this.applyTyping(id, {});
        this.chat.announce(this.chat.t('incoming', { name: message.sender_name || this.chat.t('seller'), text: preview(message) }));
        if (this.chat.isReading(id)) this.markRead();
        else this.chat.conversations.refreshSoon();
      }
      this.chat.render({ scroll: message.sender === 'buyer' ? 'bottom' : 'follow' });
    }

    applyTyping(id, frame) {
      clearTimeout(this.sellerTypingTimer);
      this.sellerTyping = frame.typing ? { id, name: frame.sender_name } : null;
      if (frame.typing) {
        this.sellerTypingTimer = setTimeout(() => this.applyTyping(id, {}), SELLER_TYPING_MS);
      }
      this.chat.render();
    }

    async markRead() {
      const id = this.chat.current;
      if (!id || id === DRAFT || !this.chat.isReading(id)) return;
      const last = this.chat.threadOf(id).lastFromSeller();
      if (!last || this.readUpTo.get(id) === last.message_id) return;
      this.readUpTo.set(id, last.message_id);
      try {
        const answer = await this.chat.api.call(
          'POST',
          path('conversations', id, 'read'),
          { up_to: last.message_id },
        );
        const conv = this.chat.convs.get(id);
        if (conv && answer && typeof answer.unread === 'number') conv.unread = answer.unread;
        // A list answer already on its way may predate this read: ask again after it.
        if (this.chat.conversations.loads) this.chat.conversations.refreshSoon();
      } catch (error) {
        this.readUpTo.delete(id);
        if (error.status === 401) return this.chat.signedOut();
      }
      this.chat.render();
    }

    messageList(messages) {
      // A read receipt covers everything before it: show ✓✓ on earlier messages too.
      let readLater = false;
      const shown = new Map();
      for (let i = messages.length - 1; i >= 0; i--) {
        const m = messages[i];
        if (m.sender !== 'buyer') continue;
        if (m.status === 'read') readLater = true;
        shown.set(m, m.status === 'sent' && readLater ? 'read' : m.status);
      }
      return messages.map((m, i) => {
        const previous = messages[i - 1];
        const showName = m.sender === 'seller' &&
          (!previous || previous.sender !== 'seller' || previous.sender_name !== m.sender_name);
        return this.messageNode(m, shown.get(m), showName);
      });
    }

    messageNode(m, status, showName) {
      const key = m.client_id && m.sender === 'buyer' ? `c:${m.client_id}` : `m:${m.message_id}`;
      const attachments = (m.attachments || []).map((a) => a.attachment_id);
      const signature = JSON.stringify([m.text, m.html, m.original, m.translation, attachments,
        !!m.file, m.edited_at, status, m.error, showName, this.chat.language,
        new Date().toDateString()]); // after midnight, yesterday's times get their date
      const cached = this.nodes.get(key);
      if (cached && cached.signature === signature) return cached.node;
      const node = this.buildMessage(m, status, showName, key);
      this.nodes.set(key, { signature, node });
      return node;
    }

    buildMessage(m, status, showName, key) {
      const t = this.chat.t;
      const files = (m.attachments || []).map((a) => this.chat.attachments.node(m, a));
      if (m.file && !files.length) files.push(this.chat.attachments.uploadNode(m, status));
      // A message may be just a file: then there is no empty bubble under it.
      const hasText = !!(shownText(m) || (m.sender === 'seller' && m.html));
      const bubble = hasText || !files.length ? h('div', { class: 'bubble' }) : null;
      const asWritten = this.originals.has(key);
      if (bubble) this.fillBubble(bubble, m, asWritten);
      let toggle = null;
      if (bubble && m.sender === 'seller' && m.original) {
        toggle = h('button', {
          class: 'toggle',
          type: 'button',
          'aria-pressed': String(asWritten),
          onclick: () => {
            // Swapped in place, not re-rendered, so the button keeps the focus.
            const on = !this.originals.has(key);
            if (on) this.originals.add(key);
            else this.originals.delete(key);
            this.fillBubble(bubble, m, on);
            toggle.setAttribute('aria-pressed', String(on));
            toggle.textContent = t(on ? 'showTranslation' : 'showOriginal');
          },
        }, t(asWritten ? 'showTranslation' : 'showOriginal'));
      }
      const untranslated = m.sender === 'seller' && m.translation && m.translation.failed;
      const time = m.created_at ? new Date(m.created_at) : null;
      const meta = h('div', { class: 'meta' },
        time ? h('time', { datetime: m.created_at }, messageTime(time, this.chat.locale)) : null,
        m.edited_at ? h('span', {}, t('edited')) : null,
        untranslated ? h('span', { class: 'note' }, t('notTranslated')) : null,
        m.automatic ? h('span', { class: 'note' }, t('automatic')) : null,
        toggle,
        m.sender === 'buyer' ? this.statusNode(m, status) : null);
      const problem = status === 'failed' && typeof m.error === 'string'
        ? h('p', { class: 'problem' }, m.error) : null;
      return h('li', { class: `msg ${m.sender}` },
        showName ? h('span', { class: 'who' }, m.sender_name || t('seller')) : null,
        files.length ? h('div', { class: 'files' }, files) : null,
        bubble, problem, meta);
    }

    /** Puts the text in the bubble: the seller's translated, or as written (`asWritten`). */
    fillBubble(bubble, m, asWritten) {
      const seller = m.sender === 'seller';
      const written = m.original && (!seller || asWritten);
      const translation = m.translation;
      // The formatting is the seller's own, so it goes with their own words only.
      const html = seller && (written || !m.original) ? m.html : null;
      const text = written ? m.original.text : m.text;
      // The language of what is shown, so that a screen reader pronounces it right.
      const lang = written ? m.original.lang
        : translation ? (translation.failed ? translation.source : translation.target) : null;
      bubble.classList.toggle('html', !!html);
      if (html) {
        // The only innerHTML in the widget: the server sanitized it with an allow-list.
        bubble.innerHTML = html;
        for (const link of bubble.querySelectorAll('a')) {
          link.target = '_blank';
          link.rel = 'noopener noreferrer nofollow';
        }
      } else {
        bubble.textContent = text;
      }
      if (lang) bubble.lang = lang;
      else bubble.removeAttribute('lang');
    }

    statusNode(m, status) {
      const t = this.chat.t;
      if (status === 'failed') {
        return [
          h('span', { class: 'failed' }, t('failed')),
          h('button', { class: 'retry', type: 'button', onclick: () => this.chat.composer.deliver(m) }, t('retry')),
        ];
      }
      if (status === 'pending') return h('span', { class: 'status' }, t('sending'));
      // The ticks are decoration, the words beside them for screen readers; the CSS
      // thickens them, a bare ✓ at this size being nearly all faint edge pixels.
      const ticks = status === 'read' ? '✓✓' : '✓';
      return h('span', { class: `status ${status}`, title: t(status) },
        h('span', { class: 'ticks', 'aria-hidden': 'true' }, ticks),
        h('span', { class: 'sr' }, t(status)));
    }

    build() {
      const { t, ui } = this.chat;
      ui.earlier = h('button', {
        class: 'earlier',
        type: 'button',
        hidden: true,
        onclick: () => this.loadEarlier(),
      }, t('earlier'));
      ui.intro = h('p', { class: 'intro' });
      ui.messages = h('ol', {});
      ui.log = h('div', { class: 'log', tabindex: '0', role: 'group', 'aria-label': t('messages') },
        ui.earlier, ui.intro, ui.messages);
      ui.typing = h('p', { class: 'typing' });
      return [ui.log, ui.typing];
    }

    render(id, conv, scroll) {
      const { t, ui } = this.chat;
      const thread = this.chat.threadOf(id);
      const messages = thread.visible();
      const loading = id !== DRAFT && !thread.loaded;
      ui.intro.hidden = messages.length > 0;
      ui.intro.textContent = loading ? t('loading') : this.chat.sellerState.off(conv) ? `${t('disabled')} ${t('chatOff')}`
        : t('start', { title: (conv ? conv.context : this.chat.pageContext()).title });
      ui.earlier.hidden = !thread.hasMore;

      const typing = this.sellerTyping && this.sellerTyping.id === id;
      ui.typing.textContent = typing ? t('typing', { name: this.sellerTyping.name || t('seller') }) : '';

      const log = ui.log;
      const nearBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 60;
      const height = log.scrollHeight;
      reconcile(ui.messages, this.messageList(messages));
      this.chat.attachments.drop(new Set(messages.flatMap((m) => (m.attachments || []).map((a) => a.attachment_id))));
      if (scroll === 'bottom' || (scroll === 'follow' && nearBottom)) log.scrollTop = log.scrollHeight;
      else if (scroll === 'anchor') log.scrollTop += log.scrollHeight - height;
    }
  }

  class Composer extends Part {
    reset() {
      this.held = []; // files in the composer, sent with the next message: { file, url }
    }

    async send(text, file) {
      const id = this.chat.current;
      const entry = {
        client_id: uuid(),
        conversation_id: id === DRAFT ? null : id,
        sender: 'buyer',
        text,
        status: 'pending',
        created_at: new Date().toISOString(),
      };
      if (file) entry.file = file; // kept until the server has it, so Retry can send it again
      this.chat.threadOf(id).items.push(entry);
      this.stopTyping();
      this.chat.render({ scroll: 'bottom' });
      await this.deliver(entry);
    }

    /** Posts a message; Retry repeats it with the same client_id, which the server knows. */
    async deliver(entry) {
      entry.status = 'pending';
      entry.sent = 0;
      delete entry.error;
      this.chat.notice = null;
      this.chat.render();
      try {
        if (!entry.conversation_id) entry.conversation_id = await this.startConversation();
        const id = entry.conversation_id;
        const to = path('conversations', id, 'messages');
        // A file the server already stored is retried by client_id alone, as text is.
        const message = entry.file
          ? await this.chat.api.upload(to, this.chat.attachments.form(entry), (part) => this.chat.attachments.uploaded(entry, part))
          : await this.chat.api.call('POST', to, { text: shownText(entry), client_id: entry.client_id });
        delete entry.file;
        this.chat.threadOf(id).upsert({ ...message, client_id: message.client_id || entry.client_id });
      } catch (error) {
        if (error.status === 429) {
          // Rate-limited: still "sending", try again when the server says we may.
          setTimeout(() => this.deliver(entry), error.retryAfter || 2000);
          return;
        }
        entry.status = 'failed';
        entry.error = entry.file ? this.chat.attachments.problem(error) : true;
        if (error.status === 401) return this.chat.signedOut();
        if (typeof entry.error === 'string') this.chat.announce(`${this.chat.t('failed')}: ${entry.error}`);
        if (error.errcode === 'BAZAAR_CHAT_DISABLED') this.chat.notice = 'disabled';
        if (error.errcode === 'BAZAAR_BLOCKED') {
          // Blocked before the stream told us: show it now, and learn the rest.
          const conv = this.chat.convs.get(entry.conversation_id);
          if (conv) conv.state = 'blocked';
          this.chat.conversations.refreshSoon();
        }
      }
      this.chat.render();
    }

    /** Starts the conversation about this page once, however many messages wait for it. */
    startConversation() {
      if (!this.starting) {
        this.starting = this.chat.api
          .call('POST', '/conversations', { seller_id: this.chat.seller, context: this.chat.pageContext() })
          .then((view) => {
            const id = view.conversation_id;
            this.chat.convs.set(id, { ...this.chat.convs.get(id), ...view });
            // The draft's messages become the conversation's, its history merged around them.
            const draft = this.chat.threadOf(DRAFT);
            const thread = this.chat.threadOf(id);
            for (const m of draft.items) {
              m.conversation_id = id;
              if (!thread.find(m)) thread.items.push(m);
            }
            this.chat.threads.delete(DRAFT);
            if (this.chat.current === DRAFT) this.chat.current = id;
            this.chat.thread.loadLatest(id);
            return id;
          })
          .finally(() => {
            this.starting = null;
          });
      }
      return this.starting;
    }

    typed() {
      const id = this.chat.current;
      if (!id || id === DRAFT) return;
      clearTimeout(this.idleTimer);
      this.idleTimer = setTimeout(() => this.stopTyping(), TYPING_IDLE_MS);
      const now = Date.now();
      if (this.typingIn === id && now - this.typingSince < TYPING_REPEAT_MS) return;
      this.typingIn = id;
      this.typingSince = now;
      this.postTyping(id, true);
    }

    stopTyping() {
      clearTimeout(this.idleTimer);
      if (!this.typingIn) return;
      this.postTyping(this.typingIn, false);
      this.typingIn = null;
    }

    postTyping(id, typing) {
      // Typing is a courtesy: a failure is not worth telling the buyer about.
      this.chat.api
        .call('POST', path('conversations', id, 'typing'), { typing })
        .catch(() => {});
    }

    /** Files chosen or dropped wait in the composer until the buyer sends them. */
    attach(files) {
      if (!files.length || !this.canAttach()) return;
      const fitting = files.filter((file) => file.size <= this.chat.maxFile);
      for (const file of fitting) {
        this.held.push({ file, url: file.type.startsWith('image/') ? URL.createObjectURL(file) : null });
      }
      if (fitting.length < files.length) this.chat.notice = 'tooLarge';
      else if (this.chat.notice === 'tooLarge') this.chat.notice = null;
      this.renderHeld();
      this.chat.render();
      this.chat.ui.textarea.focus();
    }

    unhold(entry) {
      for (const held of this.held) {
        if (held.url && (!entry || held === entry)) URL.revokeObjectURL(held.url);
      }
      this.held = entry ? this.held.filter((held) => held !== entry) : [];
    }

    renderHeld() {
      const list = this.chat.ui.held;
      if (!list) return;
      list.hidden = !this.held.length;
      reconcile(list, this.held.map((entry) => this.heldNode(entry)));
    }

    heldNode(entry) {
      if (entry.node) return entry.node;
      const { file } = entry;
      const label = this.chat.t('remove', { name: file.name });
      // alt="": the name is written beside it. A type the browser can't draw gets the icon.
      const preview = entry.url
        ? h('img', { src: entry.url, alt: '', onerror: (event) => event.target.replaceWith(svgIcon(FILE_ICON)) })
        : svgIcon(FILE_ICON);
      entry.node = h('li', { class: 'chip' }, preview,
        h('span', { class: 'name' }, file.name),
        h('span', { class: 'size' }, humanSize(file.size, this.chat.language)),
        h('button', {
          class: 'remove',
          type: 'button',
          'aria-label': label,
          title: label,
          onclick: () => {
            this.unhold(entry);
            this.renderHeld();
            this.chat.ui.textarea.focus();
          },
        }, '×'));
      return entry.node;
    }

    /** A file may come in while the composer is there to take it. */
    canAttach() {
      const ui = this.chat.ui;
      return !!(this.chat.opened && !this.chat.attachments.viewer && ui.form && ui.form.isConnected &&
        !ui.form.hidden && !ui.textarea.disabled);
    }

    dragOver(event) {
      const types = event.dataTransfer ? Array.from(event.dataTransfer.types) : [];
      if (!types.includes('Files')) return;
      // Always taken, even where it can't be sent: else the browser opens the file.
      event.preventDefault();
      const allowed = this.canAttach();
      event.dataTransfer.dropEffect = allowed ? 'copy' : 'none';
      this.chat.ui.panel.classList.toggle('dropping', allowed);
    }

    dropped(event) {
      if (!event.dataTransfer || !event.dataTransfer.files.length) return;
      event.preventDefault();
      this.chat.ui.panel.classList.remove('dropping');
      this.attach([...event.dataTransfer.files]);
    }

    submit() {
      const text = this.chat.ui.textarea.value.trim();
      const files = this.held.map((entry) => entry.file);
      if ((!text && !files.length) || this.chat.ui.textarea.disabled) return;
      this.chat.ui.textarea.value = '';
      this.grow();
      this.unhold();
      this.renderHeld();
      if (!files.length) return this.send(text);
      // A message carries one file: the text is the first one's caption.
      files.forEach((file, i) => this.send(i ? '' : text, file));
    }

    grow() {
      const area = this.chat.ui.textarea;
      area.style.height = 'auto';
      area.style.height = `${area.scrollHeight + 2}px`;
    }

    build() {
      const { t, ui } = this.chat;
      this.unhold(); // a new composer: files held for another conversation are dropped
      ui.held = h('ul', { class: 'held', 'aria-label': t('held'), hidden: true });
      ui.textarea = h('textarea', {
        id: 'message',
        rows: '1',
        placeholder: t('placeholder'),
        oninput: () => {
          this.grow();
          if (ui.textarea.value.trim()) this.typed();
          else this.stopTyping();
        },
        onkeydown: (event) => {
          // Enter sends, Shift+Enter is a new line; not while an IME is composing a word.
          if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
            event.preventDefault();
            this.submit();
          }
        },
      });
      ui.sendButton = h('button', { class: 'send', type: 'submit' }, t('send'));
      ui.fileInput = h('input', {
        type: 'file',
        id: 'file',
        accept: ACCEPT,
        hidden: true,
        tabindex: '-1',
        'aria-label': t('attach'),
        onchange: () => {
          const files = [...ui.fileInput.files];
          ui.fileInput.value = ''; // so that choosing the same file again is a change too
          this.attach(files);
        },
      });
      ui.attach = h('button', {
        class: 'attach',
        type: 'button',
        'aria-label': t('attach'),
        title: t('attach'),
        onclick: () => ui.fileInput.click(),
      }, svgIcon(PAPERCLIP));
      ui.form = h('form', {
        onsubmit: (event) => {
          event.preventDefault();
          this.submit();
        },
      },
      ui.held, h('label', { class: 'sr', for: 'message' }, t('label')),
      ui.attach, ui.fileInput, ui.textarea, ui.sendButton);
      return [ui.form];
    }
  }

  class ConversationList extends Part {
    reset() {
      this.hiddenUnread = 0; // unread in conversations the list did not include
      this.loaded = false;
      this.clock = 0; // counts conversation views applied from the stream or an answer
      this.stateAt = new Map(); // conversation id → clock when its view last came
    }

    async load() {
      this.loads = (this.loads || 0) + 1;
      const asked = this.clock;
      try {
        const answer = await this.chat.api.call('GET', '/conversations');
        const listed = answer.conversations || [];
        for (const c of listed) {
          // A state the stream brought while this list was on its way is the newer one.
          const old = this.chat.convs.get(c.conversation_id);
          if (old && this.stateAt.get(c.conversation_id) > asked) c.state = old.state;
        }
        this.chat.convs = new Map(listed.map((c) => [c.conversation_id, c]));
        const counted = listed.reduce((sum, c) => sum + (c.unread || 0), 0);
        this.hiddenUnread = Math.max(0, (answer.unread_total || 0) - counted);
        this.chat.maxFile = answer.max_upload_bytes || MAX_FILE_BYTES;
        this.loaded = true;
      } catch (error) {
        // Keep trying while the server is unreachable; the badge depends on this list.
        if (error.status !== 401) this.retryTimer = setTimeout(() => this.load(), 5000);
        return this.chat.failed(error);
      } finally {
        this.loads -= 1;
      }
      this.chat.notice = null;
      if (this.chat.opened && this.chat.choosing) {
        // Opened before the list came, the panel held its focus on the title meanwhile.
        const waiting = this.chat.root.activeElement === this.chat.ui.title;
        this.chat.chooseConversation();
        if (waiting) this.chat.focusPanel();
      }
      this.chat.render();
    }

    /** Refreshes the list soon; several triggers in a burst make one request. */
    refreshSoon() {
      clearTimeout(this.refreshTimer);
      this.refreshTimer = setTimeout(() => this.load(), 250);
    }

    apply(view) {
      if (!view) return;
      const old = this.chat.convs.get(view.conversation_id) || {};
      if (!this.chat.convs.has(view.conversation_id)) this.refreshSoon();
      this.stateAt.set(view.conversation_id, ++this.clock);
      const shut = this.chat.blocking.shutText(view);
      if (old.state && this.chat.blocking.shutText(old) !== shut && !this.chat.blocking.busy && this.chat.opened &&
          this.chat.current === view.conversation_id) {
        // Blocked or unblocked from elsewhere (the seller in Matrix): say so.
        this.chat.announce(shut || this.chat.t('unblocked'));
      }
      // A view in a frame may leave out the seller's name and the last message: keep ours.
      this.chat.convs.set(view.conversation_id, {
        ...old,
        ...view,
        seller_name: view.seller_name || old.seller_name,
        last_message: view.last_message || old.last_message,
      });
      if (this.chat.isReading(view.conversation_id) && view.unread > 0) this.chat.thread.markRead();
      this.chat.render();
    }

    unreadTotal() {
      let total = this.hiddenUnread;
      for (const conv of this.chat.convs.values()) total += conv.unread || 0;
      return total;
    }

    render() {
      const ui = this.chat.ui;
      const convs = [...this.chat.convs.values()].sort((a, b) =>
        String(b.last_message_at || b.created_at).localeCompare(String(a.last_message_at || a.created_at)));
      ui.empty.hidden = convs.length > 0;
      ui.newButton.hidden = convs.some(
        (c) => c.seller_id === this.chat.seller && sameContext(c.context, this.chat.pageContext()),
      );
      const open = convs.filter((c) => c.state !== 'blocked');
      const shut = convs.filter((c) => c.state === 'blocked');
      ui.convs.hidden = !open.length;
      ui.blockedHeading.hidden = ui.blockedConvs.hidden = !shut.length;
      reconcile(ui.convs, open.map((conv) => this.node(conv)));
      reconcile(ui.blockedConvs, shut.map((conv) => this.node(conv)));
    }

    node(conv) {
      const last = conv.last_message && !conv.last_message.deleted ? conv.last_message : null;
      const signature = JSON.stringify([conv.context, conv.seller_name, conv.unread, last && preview(last)]);
      const cached = this.nodes.get(conv.conversation_id);
      if (cached && cached.signature === signature) return cached.node;
      const image = conv.context.image_url;
      const node = h('li', {}, h('button', {
        class: 'conv',
        type: 'button',
        onclick: () => {
          this.chat.show(conv.conversation_id);
          this.chat.focusPanel();
        },
      },
      image ? h('img', { src: image, alt: '' }) : h('span', { class: 'ph' }),
      h('span', { class: 'text' },
        h('span', { class: 'title' }, conv.context.title),
        conv.seller_name ? h('span', { class: 'seller' }, conv.seller_name) : null,
        last ? h('span', { class: 'last' }, preview(last)) : null),
      conv.unread ? h('span', { class: 'badge' }, ...this.chat.count(conv.unread)) : null));
      this.nodes.set(conv.conversation_id, { signature, node });
      return node;
    }

    build() {
      const { t, ui } = this.chat;
      ui.convs = h('ul', { class: 'convs', 'aria-label': t('conversations') });
      ui.blockedHeading = h('h3', { class: 'section', id: 'blocked-heading' }, t('blockedList'));
      ui.blockedConvs = h('ul', { class: 'convs', 'aria-labelledby': 'blocked-heading' });
      ui.newButton = h('button', {
        class: 'new',
        type: 'button',
        onclick: () => this.chat.chooseForPage(),
      }, t('askAbout', { title: this.chat.pageContext().title }));
      ui.empty = h('p', { class: 'pad' }, t('empty'));
      return [ui.newButton, ui.empty,
        h('div', { class: 'lists' }, ui.convs, ui.blockedHeading, ui.blockedConvs)];
    }
  }

  class Blocking extends Part {

    /** Whether the buyer's own block stands: only that one is theirs to lift. */
    buyerBlocks(conv) {
      return !!conv && (conv.blocked_by || []).includes('buyer');
    }

    /** The blocked notice, by who blocks (`blocked_by`); '' while the conversation is open. */
    shutText(conv) {
      if (!conv || conv.state !== 'blocked') return '';
      const bySeller = (conv.blocked_by || []).includes('seller');
      const byBuyer = this.buyerBlocks(conv);
      if (bySeller) return byBuyer ? `${this.chat.t('sellerBlocked')} ${this.chat.t('buyerBlockedToo')}` : this.chat.t('sellerBlocked');
      // Known blocked (a refused message) before a view said by whom: the neutral words.
      return this.chat.t(byBuyer ? 'buyerBlocked' : 'blocked');
    }

    toggleMenu(open = !this.chat.menuOpen) {
      this.chat.menuOpen = open;
      this.chat.render();
    }

    /** "Block seller" asks first, in place of the composer; Cancel is the safe default. */
    askBlock() {
      this.chat.menuOpen = false;
      this.chat.confirming = true;
      this.chat.render();
      this.chat.ui.cancel.focus();
    }

    cancelBlock() {
      this.chat.confirming = false;
      this.chat.ui.more.focus();
      this.chat.render();
    }

    /** Blocks (or unblocks) the open conversation's seller, in all of them (the stream says). */
    async setBlock(blocked) {
      const id = this.chat.current;
      if (this.busy || !id || id === DRAFT) return;
      this.busy = true;
      try {
        const view = await this.chat.api.call(
          'POST',
          path('conversations', id, blocked ? 'block' : 'unblock'),
        );
        this.chat.conversations.apply(view);
        this.chat.conversations.refreshSoon();
      } catch (error) {
        this.chat.failed(error);
      } finally {
        this.busy = false;
      }
      this.chat.confirming = false;
      this.chat.render();
      if (this.chat.current === id) this.chat.focusPanel();
    }

    build() {
      const { t, ui } = this.chat;
      // The confirm step and the blocked notice take the composer's place.
      ui.cancel = h('button', { class: 'ghost', type: 'button', onclick: () => this.cancelBlock() }, t('cancel'));
      ui.confirm = h('div', {
        class: 'confirm',
        role: 'alertdialog',
        'aria-labelledby': 'confirm-title',
        'aria-describedby': 'confirm-text',
        hidden: true,
      },
      h('h3', { id: 'confirm-title' }, t('blockTitle')),
      h('p', { id: 'confirm-text' }, t('blockText')),
      h('div', { class: 'actions' },
        ui.cancel,
        h('button', { class: 'danger', type: 'button', onclick: () => this.setBlock(true) }, t('blockYes'))));
      ui.blockedText = h('p', { tabindex: '-1' });
      ui.unblock = h('button', { class: 'ghost', type: 'button', onclick: () => this.setBlock(false) }, t('unblock'));
      ui.shut = h('div', { class: 'shut', hidden: true }, ui.blockedText, ui.unblock);
      return [ui.confirm, ui.shut];
    }
  }

  class Attachments extends Part {
    reset() {
      this.blobs = new Map();
      this.progressBars = new WeakMap();
      this.viewer = null;
    }

    form(entry) {
      const form = new FormData();
      // The small fields first: the server reads them before the file streams in.
      form.append('client_id', entry.client_id);
      if (entry.text) form.append('text', entry.text);
      form.append('file', entry.file, entry.file.name);
      return form;
    }

    uploaded(entry, part) {
      entry.sent = part;
      const bar = this.progressBars.get(entry);
      if (bar) bar.value = Math.round(part * 100);
    }

    limit() {
      return { mb: Math.floor(this.chat.maxFile / (1024 * 1024)) };
    }

    problem(error) {
      if (error.errcode && error.message) return error.message;
      if (error.status === 413) return this.chat.t('tooLarge', this.limit()); // a proxy in front said it
      return true;
    }

    /** An attachment as an object URL, fetched once per attachment while it is shown. */
    url(conversationId, attachment, thumbnail) {
      const key = attachment.attachment_id + (thumbnail ? '#thumb' : '');
      let entry = this.blobs.get(key);
      if (!entry) {
        entry = { id: attachment.attachment_id, url: null };
        entry.promise = this.chat.api.blob(attachmentPath(conversationId, attachment, thumbnail))
          .then((blob) => {
            if (this.blobs.get(key) !== entry) return null;
            entry.url = URL.createObjectURL(blob);
            return entry.url;
          });
        entry.promise.catch(() => {
          if (this.blobs.get(key) === entry) this.blobs.delete(key);
        });
        this.blobs.set(key, entry);
      }
      return entry.promise;
    }

    drop(keep) {
      for (const [key, entry] of this.blobs) {
        if (keep && keep.has(entry.id)) continue;
        if (entry.url) URL.revokeObjectURL(entry.url);
        this.blobs.delete(key);
      }
    }

    /** The full image over the conversation, with a close button; the rest is inert. */
    view(conversationId, attachment, opener) {
      const t = this.chat.t;
      const ui = this.chat.ui;
      this.closeViewer(false);
      const img = h('img', { alt: attachment.name, hidden: true });
      const wait = h('p', { role: 'status' }, t('loading'));
      const node = h('div', {
        class: 'viewer',
        role: 'dialog',
        'aria-modal': 'true',
        'aria-label': attachment.name,
        onclick: (event) => {
          if (event.target === node || event.target.classList.contains('frame')) this.closeViewer();
        },
      },
      h('div', { class: 'head' },
        h('p', { class: 'name' }, attachment.name),
        h('button', {
          class: 'icon',
          type: 'button',
          'aria-label': t('closeImage'),
          onclick: () => this.closeViewer(),
        }, '×')),
      h('div', { class: 'frame' }, wait, img));
      this.viewer = { node, opener };
      ui.head.inert = ui.notice.inert = ui.body.inert = true;
      ui.panel.append(node);
      node.querySelector('button').focus();
      this.url(conversationId, attachment, false).then((url) => {
        if (!url) return;
        img.src = url;
        img.hidden = false;
        wait.remove();
      }, (error) => {
        wait.textContent = t('error');
        if (error.status === 401) this.chat.signedOut();
      });
    }

    closeViewer(restoreFocus = true) {
      const viewer = this.viewer;
      if (!viewer) return;
      this.viewer = null;
      viewer.node.remove();
      const ui = this.chat.ui;
      ui.head.inert = ui.notice.inert = ui.body.inert = false;
      if (!restoreFocus) return;
      if (viewer.opener.isConnected) viewer.opener.focus();
      else this.chat.focusPanel();
    }

    /** Saves a file under its name. Not cached: files may be big and are seldom opened twice. */
    async download(conversationId, attachment, button) {
      if (button.hasAttribute('aria-busy')) return;
      button.setAttribute('aria-busy', 'true');
      try {
        const blob = await this.chat.api.blob(attachmentPath(conversationId, attachment, false));
        const url = URL.createObjectURL(blob);
        const link = h('a', { href: url, download: attachment.name, hidden: true });
        this.chat.root.append(link);
        link.click();
        link.remove();
        // The browser reads the blob after click() returns; give it time before revoking.
        setTimeout(() => URL.revokeObjectURL(url), 60000);
      } catch (error) {
        this.chat.failed(error);
      } finally {
        button.removeAttribute('aria-busy');
      }
    }

    node(m, a) {
      const conversationId = m.conversation_id || this.chat.current;
      if (a.kind === 'image') {
        const [width, height] = fitBox(a.width, a.height);
        const img = h('img', { alt: a.name, width, height });
        this.url(conversationId, a, a.thumbnail).then((url) => {
          if (url) img.src = url;
        }, (error) => {
          img.classList.add('broken');
          if (error.status === 401) this.chat.signedOut();
        });
        const opener = h('button', {
          class: 'shot',
          type: 'button',
          onclick: () => this.view(conversationId, a, opener),
        }, img);
        return opener;
      }
      const button = h('button', {
        class: 'file',
        type: 'button',
        onclick: () => this.download(conversationId, a, button),
      },
      svgIcon(FILE_ICON),
      h('span', {}, h('span', { class: 'sr' }, `${this.chat.t('download')} `),
        `${a.name} · ${humanSize(a.size, this.chat.language)}`));
      return button;
    }

    uploadNode(m, status) {
      const file = m.file;
      let bar = null;
      if (status === 'pending') {
        bar = h('progress', {
          max: '100',
          value: String(Math.round((m.sent || 0) * 100)),
          'aria-label': this.chat.t('uploading', { name: file.name }),
        });
        this.progressBars.set(m, bar);
      }
      return h('div', { class: 'upload' },
        h('span', {}, svgIcon(FILE_ICON), `${file.name} · ${humanSize(file.size, this.chat.language)}`),
        bar);
    }
  }

  /** The conversation's orders and offers as cards above its messages: the order it is
   *  about first. A frame replaces the card with its id; an older answer never a newer card. */
  class Cards extends Part {
    reset() {
      this.byConv = new Map(); // conversation id → Map: 'o'/'f' + id → card
    }

    of(id) {
      if (!this.byConv.has(id)) this.byConv.set(id, new Map());
      return this.byConv.get(id);
    }

    async load(id) {
      this.of(id);
      try {
        const answer = await this.chat.api.call('GET', path('conversations', id, 'cards'));
        for (const order of answer.orders || []) this.put(id, 'o', order);
        for (const offer of answer.offers || []) this.put(id, 'f', offer);
      } catch (error) {
        // The cards add to the conversation; without them it still works.
        if (error.status === 401) this.chat.signedOut();
        return;
      }
      this.chat.render();
    }

    put(id, kind, card) {
      if (!card) return;
      const cards = this.of(id);
      const key = kind + (kind === 'o' ? card.order_id : card.offer_id);
      const old = cards.get(key);
      if (!old || !(old.updated_at > card.updated_at)) cards.set(key, { ...card, kind });
      this.chat.render();
    }

    render(id, conv) {
      const first = (card) => card.kind === 'o' && sameContext(conv && conv.context, { type: 'order', id: card.order_id });
      const cards = [...this.of(id).values()].sort((a, b) => first(b) - first(a));
      this.chat.ui.cards.hidden = !cards.length;
      reconcile(this.chat.ui.cards, cards.map((card) => this.node(card)));
    }

    node(card) {
      const key = card.kind + (card.order_id || card.offer_id);
      const signature = JSON.stringify(card);
      const cached = this.nodes.get(key);
      if (cached && cached.signature === signature) return cached.node;
      const node = card.kind === 'o' ? this.order(card) : this.offer(card);
      this.nodes.set(key, { signature, node });
      return node;
    }

    link(href, text, cls) {
      const url = httpUrl(href);
      return url ? h('a', { class: cls, href: url, target: '_blank', rel: 'noopener noreferrer' }, text) : null;
    }

    head(title, status) {
      return h('p', { class: 'ct' }, h('span', {}, title), h('span', { class: 'st' }, this.chat.t(status)));
    }

    order(o) {
      const { t, locale } = this.chat;
      const title = t('order', { id: o.order_id });
      return h('section', { class: 'card', 'aria-label': title }, h('div', { class: 'cb' },
        this.head(title, o.status),
        h('ul', {}, (o.items || []).map((item) =>
          h('li', {}, `${item.title} · ${item.quantity} × ${money(item.price, o.currency, locale)}`))),
        h('p', { class: 'sum' }, money(o.total, o.currency, locale)),
        this.link(o.url, t('orderLink'))));
    }

    offer(f) {
      const { t, locale } = this.chat;
      const image = httpUrl(f.image_url);
      return h('section', { class: 'card', 'aria-label': f.title },
        image ? h('img', { src: image, alt: '', referrerpolicy: 'no-referrer' }) : null,
        h('div', { class: 'cb' },
          this.head(f.title, f.status),
          h('p', {}, `${f.quantity} × ${money(f.price, f.currency, locale)}`),
          h('p', { class: 'sum' }, money(f.total, f.currency, locale)),
          f.status === 'open' ? this.link(f.checkout_url, t('buy'), 'buy') : null));
    }

    build() {
      this.chat.ui.cards = h('div', { class: 'cards', hidden: true });
      return [this.chat.ui.cards];
    }
  }

  /** The page's seller: online or away, and, while their chat is off, the feedback form
   *  in the composer's place (in conversations with them). */
  class SellerState extends Part {
    reset() {
      this.state = null;
      this.sent = false;
    }

    async load() {
      try {
        this.state = await this.chat.api.call('GET', path('sellers', this.chat.seller));
        this.chat.render();
      } catch (error) {
        if (error.status === 401) this.chat.signedOut();
      }
    }

    off(conv) {
      const s = this.state;
      return !!s && !s.chat_enabled && (conv ? conv.seller_id === s.seller_id : this.chat.current === DRAFT);
    }

    text() {
      const { t, locale } = this.chat;
      const { open_now: open, next_open_at: at, usually_replies_within_minutes: n } = this.state;
      return (open ? t('online') : at ? t('awayUntil', { time: messageTime(new Date(at), locale) }) : t('away'))
        + (n ? ` · ${n > 59 ? t('withinH', { n: n / 60 }) : t('within', { n })}` : '');
    }

    async send() {
      const ui = this.chat.ui;
      const text = ui.fbText.value.trim();
      if (!text) return;
      try {
        await this.chat.api.call('POST', path('sellers', this.state.seller_id, 'feedback'),
          { text, contact: ui.fbContact.value });
        this.sent = true;
        ui.fbDone.textContent = this.chat.t('thanks');
      } catch (error) {
        if (error.errcode === 'BAZAAR_CHAT_ENABLED') this.state.chat_enabled = true;
        else this.chat.failed(error);
      }
      this.chat.render();
    }

    build() {
      const { t, ui } = this.chat;
      ui.fbText = h('textarea', { id: 'fb-text', rows: '3', required: true });
      ui.fbContact = h('input', { id: 'fb-contact', maxlength: '320', autocomplete: 'email', value: this.chat.email });
      ui.fbForm = h('form', {
        class: 'fb',
        onsubmit: (event) => {
          event.preventDefault();
          this.send();
        },
      },
      h('label', { for: 'fb-text' }, t('label')), ui.fbText,
      h('label', { for: 'fb-contact' }, t('contact')), ui.fbContact,
      h('button', { class: 'send', type: 'submit' }, t('send')));
      ui.fbDone = h('p', { class: 'pad', role: 'status' });
      return [ui.fbForm, ui.fbDone];
    }
  }


  class BazaarChat extends HTMLElement {
    static get observedAttributes() {
      return ['site', 'token', 'seller', 'context', 'lang', 'api', 'login_url'];
    }

    constructor() {
      super();
      this.root = this.attachShadow({ mode: 'open' });
      this.opened = false;
      this.maxFile = MAX_FILE_BYTES;
      this.conversations = new ConversationList(this);
      this.thread = new ThreadView(this);
      this.composer = new Composer(this);
      this.attachments = new Attachments(this);
      this.blocking = new Blocking(this);
      this.sellerState = new SellerState(this);
      this.cards = new Cards(this);
      this.onVisibility = () => this.visibilityChanged();
      this.onOnline = () => this.stream && this.stream.nudge();
      this.onFocus = () => this.stream && this.stream.wake();
    }

    connectedCallback() {
      document.addEventListener('visibilitychange', this.onVisibility);
      window.addEventListener('online', this.onOnline);
      window.addEventListener('focus', this.onFocus);
      this.start();
    }

    disconnectedCallback() {
      document.removeEventListener('visibilitychange', this.onVisibility);
      window.removeEventListener('online', this.onOnline);
      window.removeEventListener('focus', this.onFocus);
      this.teardown();
    }

    attributeChangedCallback(name, before, after) {
      // A new token (or seller, page, …) is a new session: start over from the server.
      if (this.isConnected && this.ui && before !== after) {
        this.teardown();
        this.start();
      }
    }

    start() {
      const token = (this.getAttribute('token') || '').trim();
      const claims = token ? jwtClaims(token) : null;
      const site = this.getAttribute('site');
      if (claims && site && claims.iss && claims.iss !== site) {
        console.warn(`bazaar-chat: the token is for site "${claims.iss}", not "${site}"`);
      }
      this.language = pickLang(
        this.getAttribute('lang'),
        claims && claims.lang,
        document.documentElement.lang,
      );
      this.t = translator(this.language);
      this.locale = pickLocale(this.language, this.getAttribute('lang'), claims && claims.lang,
        document.documentElement.lang);
      this.loginUrl = loginUrl(this.getAttribute('login_url'));
      this.seller = this.getAttribute('seller') || '';
      this.context = this.readContext();
      this.expiresAt = claims && claims.exp ? claims.exp * 1000 : null;
      this.signedIn = !!(claims && claims.sub && (!this.expiresAt || this.expiresAt > Date.now()));
      this.email = (claims && claims.email) || null;
      this.api = new Api(this.getAttribute('api') || defaultApi(), token);

      this.convs = new Map();
      this.threads = new Map();
      this.current = null;
      this.screen = null;
      this.notice = null;
      this.offline = false;
      this.menuOpen = false;
      this.confirming = false;
      this.conversations.reset();
      this.thread.reset();
      this.attachments.reset();
      this.composer.reset();
      this.sellerState.reset();
      this.cards.reset();

      this.build();
      if (!this.signedIn) return this.render();
      this.stream = new Stream(
        this.api,
        (frame) => this.apply(frame),
        (up, resumed) => this.streamStatus(up, resumed),
      );
      this.stream.open(); // before loading, so nothing that happens meanwhile is missed
      this.conversations.load();
      if (this.seller) this.sellerState.load();
      this.render();
    }

    teardown() {
      if (this.stream) this.stream.stop();
      this.stream = null;
      this.composer.stopTyping();
      clearTimeout(this.conversations.refreshTimer);
      clearTimeout(this.conversations.retryTimer);
      clearTimeout(this.offlineTimer);
      clearTimeout(this.thread.sellerTypingTimer);
      this.attachments.drop();
      this.composer.unhold();
      this.root.replaceChildren();
    }

    readContext() {
      try {
        const context = JSON.parse(this.getAttribute('context') || 'null');
        if (context && context.type && context.id != null && context.title) return context;
      } catch {
        console.warn('bazaar-chat: the context attribute is not valid JSON');
      }
      return null;
    }

    pageContext() {
      return this.context || { type: 'general', id: 'general', title: this.t('general') };
    }

    signedOut() {
      this.signedIn = false;
      if (this.stream) this.stream.stop();
      this.stream = null;
      this.render();
    }

    /** A failed call: a dead token signs the buyer out, anything else is shown. */
    failed(error) {
      if (error.status === 401) return this.signedOut();
      this.notice = error.errcode === 'BAZAAR_CHAT_DISABLED' ? 'disabled' : 'error';
      this.render();
    }

    streamStatus(up, resumed) {
      clearTimeout(this.offlineTimer);
      if (!up) {
        // The browser hides why a WebSocket failed; an expired token is the one we can see.
        if (this.expiresAt && this.expiresAt <= Date.now()) return this.signedOut();
        // Say "reconnecting" only if it takes a while: a quick reconnect is not news.
        this.offlineTimer = setTimeout(() => {
          this.offline = true;
          this.render();
        }, 2000);
        return;
      }
      if (resumed && this.stream.seq == null) {
        // We never saw a frame, so there is no seq to resume from: ask the server.
        this.conversations.load();
        if (this.current && this.current !== DRAFT) {
          this.thread.loadNewer(this.current);
          this.cards.load(this.current);
        }
      }
      if (this.offline) {
        this.offline = false;
        this.render();
      }
    }

    apply(frame) {
      const id = frame.conversation_id;
      switch (frame.type) {
        case 'message.created':
        case 'message.updated':
          return this.thread.applyMessage(id, frame.message, frame.type === 'message.created');
        case 'typing':
          return this.thread.applyTyping(id, frame);
        case 'conversation.updated':
          return this.conversations.apply(frame.conversation);
        case 'order.updated':
          return this.cards.put(id, 'o', frame.order);
        case 'offer.updated':
          return this.cards.put(id, 'f', frame.offer);
        default:
          return undefined;
      }
    }

    isReading(id) {
      return this.opened && this.current === id && document.visibilityState === 'visible';
    }

    visibilityChanged() {
      if (document.visibilityState !== 'visible') return;
      if (this.stream) this.stream.wake();
      this.thread.markRead();
    }

    open() {
      this.opened = true;
      // Which conversation to show is decided once the list is known.
      this.choosing = this.current == null;
      if (this.signedIn && this.choosing && this.conversations.loaded) this.chooseConversation();
      this.render({ scroll: 'bottom' });
      this.focusPanel();
      this.thread.markRead();
    }

    close() {
      this.opened = false;
      this.menuOpen = false;
      this.confirming = false;
      this.composer.stopTyping();
      this.attachments.closeViewer(false);
      this.attachments.drop();
      if (this.thread.nodes) this.thread.nodes.clear();
      this.render();
      this.ui.launcher.focus();
    }

    /** On open: this page's conversation if there is one, else a fresh one about it. */
    chooseConversation() {
      const mine = [...this.convs.values()].find(
        (c) => c.seller_id === this.seller && sameContext(c.context, this.pageContext()),
      );
      if (mine) return this.show(mine.conversation_id);
      if (!this.context && this.convs.size) return this.show(null);
      return this.show(DRAFT);
    }

    show(id) {
      this.choosing = false;
      this.composer.stopTyping();
      this.current = id;
      this.notice = null;
      this.menuOpen = false;
      this.confirming = false;
      if (id && id !== DRAFT && !this.threadOf(id).loaded) this.thread.loadLatest(id);
      if (id && id !== DRAFT && !this.cards.byConv.has(id)) this.cards.load(id);
      this.render({ scroll: 'bottom' });
      this.thread.markRead();
    }

    focusPanel() {
      const ui = this.ui;
      const target = [ui.textarea, ui.fbText, ui.blockedText].find(
        (el) => el && el.isConnected && !el.disabled && el.getClientRects().length,
      );
      (target || ui.title).focus();
    }

    announce(text) {
      // Emptied first, so the same words twice are still announced twice.
      this.ui.live.textContent = '';
      setTimeout(() => {
        this.ui.live.textContent = text;
      }, 50);
    }

    build() {
      const t = this.t;
      const ui = (this.ui = {});
      ui.badge = h('span', { class: 'badge', hidden: true });
      ui.launcher = h(
        'button',
        {
          class: 'launcher',
          type: 'button',
          part: 'launcher',
          lang: this.language,
          'aria-expanded': 'false',
          'aria-controls': 'panel',
          onclick: () => (this.opened ? this.close() : this.open()),
        },
        h('span', {}, t('ask')),
        ui.badge,
      );
      ui.back = h('button', {
        class: 'icon',
        type: 'button',
        'aria-label': t('back'),
        onclick: () => {
          this.show(null);
          this.ui.title.focus();
        },
      }, '‹');
      ui.thumb = h('img', { class: 'thumb', alt: '', hidden: true });
      ui.title = h('h2', { id: 'title', tabindex: '-1' });
      ui.close = h('button', {
        class: 'icon',
        type: 'button',
        'aria-label': t('close'),
        onclick: () => this.close(),
      }, '×');
      // A small disclosure menu; for now it holds one thing: blocking the seller.
      ui.more = h('button', {
        class: 'icon',
        type: 'button',
        'aria-label': t('more'),
        'aria-expanded': 'false',
        'aria-controls': 'menu',
        onclick: () => this.blocking.toggleMenu(),
      }, '⋮');
      ui.menu = h('div', { class: 'menu', id: 'menu', hidden: true },
        h('button', { class: 'item', type: 'button', onclick: () => this.blocking.askBlock() }, t('block')));
      ui.moreWrap = h('div', {
        class: 'more',
        onfocusout: (event) => {
          // Tabbing out closes it (a click elsewhere is the panel's pointerdown).
          if (event.relatedTarget && !ui.moreWrap.contains(event.relatedTarget)) this.blocking.toggleMenu(false);
        },
      }, ui.more, ui.menu);
      ui.body = h('div', { class: 'body' });
      ui.notice = h('p', { class: 'notice', role: 'status', hidden: true });
      ui.by = h('p', { class: 'by', hidden: true });
      ui.head = h('div', { class: 'head' }, ui.back, ui.thumb, h('div', { class: 'titles' }, ui.title, ui.by),
        ui.moreWrap, ui.close);
      ui.panel = h(
        'div',
        {
          class: 'panel',
          id: 'panel',
          role: 'dialog',
          'aria-labelledby': 'title',
          lang: this.language,
          hidden: true,
          'data-drop': t('drop'),
          ondragover: (event) => this.composer.dragOver(event),
          ondragleave: (event) => {
            // Moving between the panel's own parts is not leaving it.
            if (!event.relatedTarget || !ui.panel.contains(event.relatedTarget)) {
              ui.panel.classList.remove('dropping');
            }
          },
          ondrop: (event) => this.composer.dropped(event),
          onkeydown: (event) => {
            if (event.key !== 'Escape') return;
            // Escape undoes the innermost: the image, the confirm step, the menu, the chat.
            event.preventDefault();
            if (this.attachments.viewer) this.attachments.closeViewer();
            else if (this.confirming) this.blocking.cancelBlock();
            else if (this.menuOpen) {
              ui.more.focus();
              this.blocking.toggleMenu(false);
            } else this.close();
          },
          onpointerdown: (event) => {
            if (this.menuOpen && !ui.moreWrap.contains(event.target)) this.blocking.toggleMenu(false);
          },
        },
        ui.head,
        ui.notice,
        ui.body,
      );
      ui.live = h('div', { class: 'sr', 'aria-live': 'polite', lang: this.language });
      this.root.replaceChildren(h('style', {}, STYLE), ui.launcher, ui.panel, ui.live);
      this.screen = null;
    }

    render(options = {}) {
      if (!this.ui) return;
      const ui = this.ui;
      const total = this.signedIn ? this.conversations.unreadTotal() : 0;
      ui.badge.hidden = total === 0;
      ui.badge.replaceChildren(...this.count(total));
      ui.launcher.setAttribute('aria-expanded', String(this.opened));
      ui.panel.hidden = !this.opened;
      if (!this.opened) return;
      const focused = this.root.activeElement;

      const name = !this.signedIn ? 'signin'
        : this.current != null ? 'conversation'
          : this.conversations.loaded ? 'list' : 'loading';
      const key = name === 'conversation' ? `conversation:${this.current}` : name;
      if (key !== this.screen) {
        // A DRAFT that just became a real conversation keeps its DOM (and the focus).
        const promoted = this.screen === `conversation:${DRAFT}` && name === 'conversation';
        if (!promoted) this.buildScreen(name);
        this.screen = key;
      }
      this.renderHeader(name);
      ui.panel.classList.toggle('short', name === 'signin');
      if (name !== 'conversation') this.renderNotice(null);
      if (name === 'list') this.conversations.render();
      if (name === 'conversation') this.renderConversation(options.scroll);
      // Keep the focus in the panel if what had it just went (a blocked composer, a menu).
      if (focused && (!focused.isConnected || !focused.getClientRects().length)) this.focusPanel();
    }

    /** An unread count: the number to see, the words ("2 unread messages") to hear. */
    count(n) {
      return [
        h('span', { class: 'count', 'aria-hidden': 'true' }, String(n)),
        h('span', { class: 'sr' }, ` ${this.t('unread', { n })}`),
      ];
    }

    renderHeader(screen) {
      const { back, thumb, title, moreWrap, more, menu } = this.ui;
      const conv = this.convs.get(this.current);
      const context = conv ? conv.context : this.current === DRAFT ? this.pageContext() : null;
      back.hidden = screen !== 'conversation';
      // Blocking needs a conversation; once the buyer blocks, Unblock shows instead (one
      // the seller closed can still be blocked by the buyer).
      moreWrap.hidden = !(screen === 'conversation' && conv && !this.blocking.buyerBlocks(conv));
      if (moreWrap.hidden) this.menuOpen = false;
      menu.hidden = !this.menuOpen;
      more.setAttribute('aria-expanded', String(this.menuOpen));
      title.textContent = context ? context.title
        : screen === 'list' ? this.t('conversations') : this.t('dialog');
      const image = context && context.image_url;
      thumb.hidden = !image;
      if (image && thumb.getAttribute('src') !== image) thumb.src = image;
      // Before the first message, another conversation with the seller may know their name.
      const withSeller = screen !== 'conversation' ? null
        : conv || [...this.convs.values()].find((c) => c.seller_id === this.seller && c.seller_name);
      const state = this.sellerState.state;
      const theirs = screen === 'conversation' && state && (conv ? conv.seller_id === state.seller_id : true);
      const sellerName = (withSeller && withSeller.seller_name) || (theirs && state.name) || '';
      this.ui.by.hidden = !sellerName;
      this.ui.by.replaceChildren(h('span', { class: 'sr' }, `${this.t('seller')}: `), sellerName,
        theirs ? h('span', { class: 'avail' }, ` · ${this.sellerState.text()}`) : '');
    }

    renderNotice(state) {
      const { notice } = this.ui;
      const problem = this.notice || state || (this.offline ? 'reconnecting' : null);
      notice.hidden = !problem || !this.signedIn;
      notice.textContent = problem ? this.t(problem, this.attachments.limit()) : '';
      notice.classList.toggle('error', problem === 'error' || problem === 'tooLarge');
    }

    buildScreen(name) {
      const t = this.t;
      const ui = this.ui;
      this.attachments.closeViewer(false);
      this.attachments.drop();
      this.thread.nodes = new Map();
      this.conversations.nodes = new Map();
      this.cards.nodes = new Map();
      let content;
      if (name === 'signin') {
        // "Sign in" links to login_url, else is words the shop may replace with a slot:
        // <a slot="signin" href="/login">Sign in</a>
        const [before, after] = t('signIn', { link: '{link}' }).split('{link}');
        const link = this.loginUrl ? h('a', { href: this.loginUrl }, t('signInLink')) : t('signInLink');
        content = h('div', { class: 'pad' }, h('p', {}, before, link, after),
          this.loginUrl ? null : h('slot', { name: 'signin' }));
      } else if (name === 'loading') {
        content = h('p', { class: 'pad', role: 'status' }, t('loading'));
      } else if (name === 'list') {
        content = this.conversations.build();
      } else {
        content = [...this.cards.build(), ...this.thread.build(), ...this.composer.build(), ...this.blocking.build(),
          ...this.sellerState.build()];
      }
      ui.body.replaceChildren(...[content].flat());
    }

    chooseForPage() {
      this.current = null;
      this.chooseConversation();
      this.focusPanel();
    }

    renderConversation(scroll) {
      const ui = this.ui;
      const id = this.current;
      const conv = this.convs.get(id);
      const state = conv ? conv.state : 'active';
      const blocked = state === 'blocked';
      const byBuyer = this.blocking.buyerBlocks(conv);
      if (byBuyer) this.confirming = false;
      const off = this.sellerState.off(conv) && !blocked;
      this.renderNotice(state === 'archived' ? state : off && conv ? 'disabled' : null);
      ui.form.hidden = blocked || this.confirming || off;
      ui.fbForm.hidden = !off || this.sellerState.sent;
      ui.fbDone.hidden = !off || !this.sellerState.sent;
      ui.textarea.disabled = blocked;
      ui.confirm.hidden = !this.confirming;
      ui.shut.hidden = !blocked || this.confirming;
      ui.blockedText.textContent = this.blocking.shutText(conv);
      // Only the buyer's own block is theirs to lift; the seller's stays the seller's.
      ui.unblock.hidden = !byBuyer;

      this.cards.render(id, conv);
      this.thread.render(id, conv, scroll);
    }

    threadOf(id) {
      if (!this.threads.has(id)) this.threads.set(id, new Thread());
      return this.threads.get(id);
    }
  }


  const STYLE = `
:host{all:initial;display:inline-block;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#111827}
*{box-sizing:border-box}
[hidden]{display:none!important}
.sr{position:absolute;width:1px;height:1px;margin:-1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;border:0}
button{font:inherit;cursor:pointer}
button:focus-visible,textarea:focus-visible,input:focus-visible,.log:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}
.launcher{display:inline-flex;align-items:center;gap:8px;padding:10px 18px;border:0;border-radius:999px;background:#1d4ed8;color:#fff;font-weight:600}
.launcher:hover{background:#1e40af}
.badge{display:inline-block;min-width:22px;padding:0 6px;border-radius:999px;background:#b91c1c;color:#fff;font-size:13px;font-weight:700;line-height:22px;text-align:center}
.panel{position:fixed;right:16px;bottom:16px;z-index:2147483000;display:flex;flex-direction:column;width:370px;max-width:calc(100vw - 32px);height:min(580px,calc(100vh - 32px));background:#fff;border:1px solid #d1d5db;border-radius:12px;box-shadow:0 12px 40px rgba(0,0,0,.25);overflow:hidden}
@media (max-width:480px){.panel{right:0;bottom:0;width:100vw;max-width:none;height:100vh;border-radius:0}}
.panel.short{height:auto}
.head{display:flex;align-items:center;gap:8px;padding:10px 12px;background:#1d4ed8;color:#fff}
.titles{flex:1;min-width:0}
.head h2,.by{margin:0;font-size:16px;font-weight:600;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.by{font-size:13px;font-weight:400;color:#e0e7ff;white-space:normal}
.head h2:focus{outline:none}
.icon{width:32px;height:32px;padding:0;border:0;border-radius:6px;background:transparent;color:#fff;font-size:22px;line-height:1}
.icon:hover{background:rgba(255,255,255,.18)}
.thumb{width:32px;height:32px;border-radius:6px;object-fit:cover;background:#e5e7eb;flex:none}
.body{flex:1;display:flex;flex-direction:column;min-height:0}
.pad{padding:16px;margin:0}
.pad a{color:#1d4ed8;font-weight:600}
.notice{margin:0;padding:8px 12px;background:#fef3c7;color:#78350f;font-size:14px}
.error{background:#fee2e2;color:#7f1d1d}
.log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:6px}
.earlier{align-self:center;margin-bottom:6px;padding:4px 12px;border:1px solid #1d4ed8;border-radius:999px;background:#fff;color:#1d4ed8;font-size:13px}
.intro{color:#4b5563;text-align:center;margin:auto 8px}
ol{list-style:none;margin:0;padding:0;display:flex;flex-direction:column;gap:6px}
.msg{max-width:82%;display:flex;flex-direction:column}
.msg.buyer{align-self:flex-end;align-items:flex-end}
.msg.seller{align-self:flex-start}
.msg.system{align-self:center;color:#4b5563;font-size:13px}
.who{font-size:12px;color:#4b5563;margin:4px 0 2px}
.bubble{padding:8px 12px;border-radius:14px;white-space:pre-wrap;overflow-wrap:anywhere}
.buyer .bubble{background:#1d4ed8;color:#fff;border-bottom-right-radius:4px}
.seller .bubble{background:#f3f4f6;color:#111827;border-bottom-left-radius:4px}
.seller .bubble a{color:#1e3a8a;text-decoration:underline}
.html{white-space:normal}
.html>:first-child{margin-top:0}.html>:last-child{margin-bottom:0}
.meta{display:flex;gap:6px;align-items:center;font-size:12px;color:#4b5563;margin-top:2px}
.ticks{color:#4b5563;font-size:14px;line-height:1;font-weight:700;letter-spacing:-2px;-webkit-text-stroke:.8px currentColor}
.read .ticks{color:#1e40af}
.failed{color:#b91c1c;font-weight:600}
.retry{padding:1px 8px;border:1px solid #b91c1c;border-radius:999px;background:#fff;color:#b91c1c;font-size:12px}
.typing{margin:0;padding:2px 14px 4px;min-height:22px;font-size:13px;color:#4b5563;font-style:italic}
form{display:flex;flex-wrap:wrap;gap:8px;align-items:flex-end;padding:10px 12px;border-top:1px solid #e5e7eb}
.held{flex-basis:100%;display:flex;flex-wrap:wrap;gap:6px;margin:0;padding:0;list-style:none}
.chip{display:flex;align-items:center;gap:8px;max-width:100%;padding:4px 4px 4px 6px;border:1px solid #d1d5db;border-radius:10px;background:#f9fafb;font-size:13px}
.chip img{width:48px;height:48px;border-radius:6px;object-fit:cover;flex:none}
.chip .name{min-width:0;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.chip .size{color:#4b5563;white-space:nowrap}
.remove{flex:none;width:28px;height:28px;padding:0;border:0;border-radius:6px;background:none;color:#374151;font-size:20px;line-height:1}
.remove:hover{background:#e5e7eb}
textarea,input{flex:1;resize:none;max-height:140px;padding:8px 10px;border:1px solid #6b7280;border-radius:8px;font:inherit;color:#111827;background:#fff}
textarea::placeholder{color:#6b7280}
.fb{flex-direction:column;align-items:stretch;font-size:13px}
.fb textarea{flex:none}
.fb .send{align-self:flex-end}
.send{padding:8px 14px;border:0;border-radius:8px;background:#1d4ed8;color:#fff;font-weight:600}
.send:disabled{background:#6b7280;cursor:default}
.lists{flex:1;overflow-y:auto}
.convs{list-style:none;margin:0;padding:0}
.section{margin:0;padding:12px 14px 4px;border-bottom:1px solid #e5e7eb;font-size:13px;font-weight:600;color:#4b5563}
.more{position:relative}
.menu{position:absolute;right:0;top:calc(100% + 6px);z-index:1;padding:4px;background:#fff;border:1px solid #d1d5db;border-radius:8px;box-shadow:0 6px 20px rgba(0,0,0,.18)}
.item{display:block;padding:8px 12px;border:0;border-radius:6px;background:#fff;color:#b91c1c;text-align:left;white-space:nowrap}
.item:hover{background:#fef2f2}
.confirm,.shut{padding:12px;border-top:1px solid #e5e7eb}
.shut{background:#f9fafb}
.confirm h3{margin:0 0 4px;font-size:15px}
.confirm p,.shut p{margin:0 0 10px;font-size:14px;color:#374151}
.shut p:focus{outline:none}
.actions{display:flex;gap:8px;justify-content:flex-end}
.ghost,.danger{padding:6px 14px;border:1px solid #1d4ed8;border-radius:8px;background:#fff;color:#1d4ed8;font-weight:600}
.danger{border-color:#b91c1c;background:#b91c1c;color:#fff}
.conv{display:flex;gap:10px;align-items:center;width:100%;padding:10px 14px;border:0;border-bottom:1px solid #e5e7eb;background:#fff;color:#111827;text-align:left}
.conv:hover{background:#f9fafb}
.conv img,.conv .ph{width:44px;height:44px;border-radius:8px;object-fit:cover;background:#e5e7eb;flex:none}
.conv .text{flex:1;min-width:0}
.conv .title{display:block;font-weight:600;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.conv .last,.conv .seller{display:block;color:#4b5563;font-size:13px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.conv .seller{font-size:12px}
.new{margin:12px 14px;padding:8px 12px;border:1px solid #1d4ed8;border-radius:8px;background:#fff;color:#1d4ed8;font-weight:600}
svg{width:20px;height:20px;flex:none;fill:none;stroke:currentColor;stroke-width:2;stroke-linecap:round;stroke-linejoin:round}
.attach{flex:none;display:inline-flex;align-items:center;justify-content:center;width:38px;height:38px;padding:0;border:1px solid #6b7280;border-radius:8px;background:#fff;color:#374151}
.attach:hover{background:#f3f4f6}
.files{display:flex;flex-direction:column;align-items:flex-start;gap:4px;max-width:100%;margin-bottom:2px}
.buyer .files{align-items:flex-end}
.shot{display:block;max-width:100%;padding:0;border:0;border-radius:10px;background:none;overflow:hidden}
.shot img{display:block;max-width:100%;height:auto;object-fit:cover;background:#e5e7eb}
.shot img.broken{outline:1px dashed #6b7280;outline-offset:-1px}
.file,.upload{display:flex;gap:6px;align-items:center;max-width:100%;padding:8px 10px;border:1px solid #d1d5db;border-radius:10px;background:#fff;color:#1e3a8a;text-align:left;overflow-wrap:anywhere}
.file:hover{background:#f9fafb}
.file[aria-busy]{cursor:progress;opacity:.7}
.upload{flex-direction:column;align-items:stretch;color:#111827}
.upload span{display:flex;gap:6px;align-items:center}
.upload progress{width:100%;height:6px}
.toggle{padding:0;border:0;background:none;color:#1d4ed8;font-size:12px;text-decoration:underline}
.note{font-style:italic}
.problem{margin:2px 0 0;font-size:12px;color:#b91c1c}
.viewer{position:absolute;inset:0;z-index:2;display:flex;flex-direction:column;background:#111827}
.viewer .name{flex:1;margin:0;font-weight:600;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.frame{flex:1;min-height:0;display:flex;align-items:center;justify-content:center;padding:12px;color:#fff}
.frame img{max-width:100%;max-height:100%;object-fit:contain}
.cards{flex:none;max-height:45%;overflow-y:auto;padding:8px 12px 0;display:flex;flex-direction:column;gap:8px}
.card{display:flex;gap:10px;padding:8px 10px;border:1px solid #d1d5db;border-radius:10px;background:#f9fafb;font-size:14px}
.card img{width:56px;height:56px;border-radius:6px;object-fit:cover;flex:none;background:#e5e7eb}
.cb{flex:1;min-width:0;overflow-wrap:anywhere}
.card p,.card ul{margin:0}
.card ul{padding-left:18px;color:#374151}
.ct{display:flex;justify-content:space-between;gap:8px;font-weight:600}
.st{flex:none;padding:0 8px;border-radius:999px;background:#e0e7ff;color:#1e3a8a;font-size:12px;line-height:20px}
.sum{font-weight:700}
.card a{color:#1d4ed8;font-weight:600}
.card .buy{display:inline-block;margin-top:4px;padding:4px 14px;border-radius:8px;background:#1d4ed8;color:#fff;text-decoration:none}
.dropping::after{content:attr(data-drop);position:absolute;inset:8px;z-index:3;display:flex;align-items:center;justify-content:center;padding:16px;border:3px dashed #1d4ed8;border-radius:10px;background:rgba(239,246,255,.94);color:#1e3a8a;font-weight:600;text-align:center;pointer-events:none}
`;

  customElements.define('bazaar-chat', BazaarChat);
})();
