// The context pane inside Element: speaks the widget API with its parent to get an OpenID
// token, trades it for a pane session at the bridge, and shows the conversation. Every
// value from the bridge is shown through textContent; links only for http(s) addresses.
(() => {
  'use strict';

  const params = new URLSearchParams(window.location.search);
  const roomId = params.get('room_id') || '';
  const widgetId = params.get('widgetId') || '';
  let parentOrigin = '*';
  try {
    parentOrigin = new URL(params.get('parentUrl') || '').origin;
  } catch (_) {
    // No parent URL: replies go to whichever page embeds us, as the widget API allows.
  }
  const base = window.location.pathname.replace(/[^/]*$/, '');
  const pane = document.getElementById('pane');

  let sequence = 0;
  const waiting = new Map();
  let openidRequest = null;
  let started = false;
  let session = null;

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function say(text, refusal) {
    pane.replaceChildren(el('p', text, refusal ? 'refusal' : 'muted'));
    pane.firstChild.id = 'notice';
    pane.firstChild.setAttribute('role', refusal ? 'alert' : 'status');
  }

  function toParent(message) {
    window.parent.postMessage(message, parentOrigin);
  }

  function ask(action, data) {
    sequence += 1;
    const requestId = `bazaar-pane-${Date.now()}-${sequence}`;
    toParent({ api: 'fromWidget', widgetId, requestId, action, data: data || {} });
    return new Promise((resolve) => waiting.set(requestId, resolve)).then((response) => ({
      requestId,
      response,
    }));
  }

  function reply(request, response) {
    toParent({ ...request, response });
  }

  window.addEventListener('message', (event) => {
    if (event.source !== window.parent) return;
    if (parentOrigin !== '*' && event.origin !== parentOrigin) return;
    const message = event.data;
    if (!message || typeof message !== 'object' || message.widgetId !== widgetId) return;
    if (message.api === 'fromWidget' && message.response !== undefined) {
      const resolve = waiting.get(message.requestId);
      if (resolve) {
        waiting.delete(message.requestId);
        resolve(message.response);
      }
    } else if (message.api === 'toWidget' && message.response === undefined) {
      fromParent(message);
    }
  });

  function fromParent(request) {
    const data = request.data && typeof request.data === 'object' ? request.data : {};
    switch (request.action) {
      case 'capabilities':
        // Nothing beyond the OpenID token, which needs no capability.
        reply(request, { capabilities: [] });
        if (!started) {
          started = true;
          askOpenId();
        }
        break;
      case 'openid_credentials':
        reply(request, {});
        if (openidRequest !== null && data.original_request_id === openidRequest) {
          openidRequest = null;
          credentials(data);
        }
        break;
      case 'notify_capabilities':
      case 'theme_change':
      case 'language_change':
        reply(request, {});
        break;
      default:
        reply(request, { error: { message: 'The pane does not handle this action' } });
    }
  }

  function askOpenId() {
    say('Asking Element who you are…');
    ask('get_openid').then(({ requestId, response }) => {
      if (response && response.state === 'request') {
        // Element asks the user first; the answer comes as `openid_credentials`.
        openidRequest = requestId;
        say('Allow the pane to know who you are in the prompt Element shows.');
      } else {
        credentials(response || {});
      }
    });
  }

  function credentials(data) {
    if (data.state !== 'allowed' || typeof data.access_token !== 'string') {
      say('You did not let the pane know who you are, so it cannot show this conversation.', true);
      return;
    }
    call('POST', 'session', {
      room_id: roomId,
      access_token: data.access_token,
      matrix_server_name: data.matrix_server_name,
    }).then(({ ok, body }) => {
      if (!ok) {
        say(refusal(body), true);
        return;
      }
      session = body.session;
      load();
    });
  }

  function refusal(body) {
    if (body && body.errcode === 'BAZAAR_NOT_A_MEMBER') {
      return 'You are not a member of this conversation, so the pane shows nothing here.';
    }
    if (body && body.errcode === 'BAZAAR_WRONG_HOMESERVER') {
      return 'Your account is on another homeserver than this shop’s bridge.';
    }
    return (body && typeof body.error === 'string' && body.error) || 'The bridge refused.';
  }

  function call(method, path, body) {
    const headers = { 'Content-Type': 'application/json' };
    if (session) headers.Authorization = `Bearer ${session}`;
    return fetch(base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit',
    })
      .then((response) =>
        response
          .json()
          .catch(() => ({}))
          .then((json) => ({ ok: response.ok, status: response.status, body: json })),
      )
      .catch(() => ({ ok: false, status: 0, body: { error: 'The bridge did not answer.' } }));
  }

  function roomPath() {
    return `rooms/${encodeURIComponent(roomId)}`;
  }

  function load() {
    call('GET', roomPath()).then(({ ok, status, body }) => {
      if (ok) {
        show(body);
      } else if (status === 401) {
        // The session ran out: ask Element for a fresh token.
        session = null;
        askOpenId();
      } else {
        say(refusal(body), true);
      }
    });
  }

  function link(url, text) {
    let safe = null;
    try {
      const parsed = new URL(String(url));
      if (parsed.protocol === 'https:' || parsed.protocol === 'http:') safe = parsed.href;
    } catch (_) {
      safe = null;
    }
    if (safe === null) return el('span', text);
    const anchor = el('a', text);
    anchor.href = safe;
    anchor.target = '_blank';
    anchor.rel = 'noopener noreferrer';
    return anchor;
  }

  function line(parts) {
    return parts.filter((part) => part !== null && part !== undefined && part !== '').join(' · ');
  }

  function plain(value) {
    if (value === null || value === undefined) return '';
    if (typeof value !== 'object') return String(value);
    if (Array.isArray(value)) return value.map(plain).join(', ');
    return Object.entries(value)
      .filter(([, item]) => item !== null && item !== undefined)
      .map(([key, item]) => `${key}: ${plain(item)}`)
      .join(', ');
  }

  function section(title, id) {
    const node = el('section');
    node.id = id;
    node.setAttribute('aria-label', title);
    node.append(el('h2', title));
    return node;
  }

  function show(view) {
    const context = view.context || {};
    const header = el('header');
    const title = el('h1', context.title);
    title.id = 'context-title';
    header.append(title);
    header.append(
      el('p', line([context.type, line([context.price, context.currency]), context.status]), 'muted'),
    );
    if (context.url) {
      const where = el('p');
      where.append(link(context.url, 'Open on the shop'));
      header.append(where);
    }

    const parts = [header, buyerCard(view.buyer), orders(view.orders), offers(view.offers)];
    parts.push(templates(view.templates || []));
    pane.replaceChildren(...parts);
  }

  function buyerCard(buyer) {
    const node = section('Buyer', 'buyer');
    if (!buyer) {
      node.append(el('p', 'The shop has told nothing about this buyer.', 'muted'));
      return node;
    }
    const list = el('dl');
    const row = (term, value) => {
      if (value === null || value === undefined || value === '') return;
      list.append(el('dt', term));
      const cell = el('dd');
      if (value instanceof Node) cell.append(value);
      else cell.textContent = String(value);
      list.append(cell);
    };
    row('Name', buyer.name);
    row('E-mail', buyer.email);
    row('Phone', buyer.phone);
    if (buyer.profile_url) row('Profile', link(buyer.profile_url, buyer.profile_url));
    const summary = buyer.summary && typeof buyer.summary === 'object' ? buyer.summary : {};
    const named = { orders_count: 'Orders', last_order: 'Last order', address: 'Address', zone: 'Zone' };
    for (const [key, word] of Object.entries(named)) {
      if (key in summary) row(word, plain(summary[key]));
    }
    for (const [key, value] of Object.entries(summary)) {
      if (!(key in named)) row(key, plain(value));
    }
    node.append(list);
    return node;
  }

  function orders(found) {
    const node = section('Orders', 'orders');
    if (!found || !found.length) {
      node.append(el('p', 'No orders in this conversation.', 'muted'));
      return node;
    }
    const list = el('ul');
    for (const order of found) {
      const item = el('li');
      item.append(link(order.url, `#${order.order_id}`));
      item.append(el('span', ` · ${line([order.status, line([order.total, order.currency])])}`));
      for (const each of order.items || []) {
        item.append(el('div', `${each.quantity} × ${each.title} · ${each.price}`, 'muted'));
      }
      list.append(item);
    }
    node.append(list);
    return node;
  }

  function offers(found) {
    const node = section('Offers', 'offers');
    if (!found || !found.length) {
      node.append(el('p', 'No offers yet: say !offer in the room.', 'muted'));
      return node;
    }
    const list = el('ul');
    for (const offer of found) {
      const item = el('li');
      item.append(
        el('span', line([`${offer.quantity} × ${offer.title}`, line([offer.total, offer.currency]), offer.status])),
      );
      if (offer.checkout_url) {
        item.append(el('span', ' · '));
        item.append(link(offer.checkout_url, 'checkout'));
      }
      list.append(item);
    }
    node.append(list);
    return node;
  }

  function templates(found) {
    const node = section('Templates', 'templates');
    if (!found.length) {
      node.append(el('p', 'No templates: add one with !template add in the management room.', 'muted'));
      return node;
    }
    const status = el('p', '', 'muted');
    status.setAttribute('role', 'status');
    for (const template of found) {
      const button = el('button', null, 'template');
      button.type = 'button';
      button.append(el('span', template.name, 'name'));
      button.append(el('span', template.text, 'text'));
      if (template.file) button.append(el('span', `📎 ${template.file}`, 'text'));
      button.setAttribute('aria-label', `Send the template ${template.name}`);
      button.addEventListener('click', () => send(template.name, button, status));
      node.append(button);
    }
    node.append(status);
    return node;
  }

  function send(name, button, status) {
    button.disabled = true;
    const clientId = `${Date.now()}-${Math.random().toString(36).slice(2, 10)}`;
    call('POST', `${roomPath()}/templates/${encodeURIComponent(name)}`, { client_id: clientId }).then(
      ({ ok, body }) => {
        button.disabled = false;
        status.className = ok ? 'muted' : 'refusal';
        status.textContent = ok ? `Sent “${name}” to the buyer.` : refusal(body);
      },
    );
  }
})();
