/*! leadflow.js — LeadFlow's first-party browser tracker (served by the gateway at /sdk/ls.js).
 * Sends Segment-spec messages to the gateway's /v1/batch: an automatic page view, then your
 * track, identify and page calls. It keeps an anonymous id in first-party storage (key
 * lf_anon_id) and never throws on, or logs to, the host page, even with the gateway down.
 *
 * Embed (calls made before it loads are queued and sent once it has):
 *   <script>window.leadflow = window.leadflow || [];
 *     leadflow.push(['track', 'Pricing Viewed', { plan: 'pro' }]);</script>
 *   <script async src="https://GATEWAY/sdk/ls.js" data-write-key="WRITE_KEY"></script>
 * data-api-host defaults to the script's own origin; data-auto-page="false" turns the automatic
 * page view off. Without the data attributes, call leadflow.load({ writeKey, apiHost }).
 * Then: leadflow.track(event, properties), leadflow.identify(userId, traits),
 *       leadflow.page(name, properties), leadflow.reset().
 */
(function (window, document) {
  'use strict';
  var VERSION = '1.0.0';
  var ANON_KEY = 'lf_anon_id';
  var USER_KEY = 'lf_user_id';
  var MAX_QUEUE = 100; // messages held while unsent; older ones are dropped past it
  var MAX_BATCH = 20;
  var MAX_ATTEMPTS = 3;
  var FLUSH_DELAY_MS = 200;

  var earlier = window.leadflow;
  if (earlier && earlier.loaded) return; // the script was included twice
  var pending = isArray(earlier) ? earlier.slice() : [];
  var config = null;
  var queue = []; // [{ message, attempts }]
  var timer = null;
  var sending = false;
  var memory = {}; // storage when the page allows neither localStorage nor cookies

  function isArray(value) { return Object.prototype.toString.call(value) === '[object Array]'; }
  function isObject(value) { return value !== null && typeof value === 'object' && !isArray(value); }
  function now() { return new Date().toISOString(); }

  // Every entry point goes through this: a tracker must never break the page it measures.
  function safely(fn) {
    return function () {
      try { fn.apply(null, arguments); } catch (ignored) { /* swallowed on purpose */ }
    };
  }

  function uuid() {
    var c = window.crypto;
    if (c && typeof c.randomUUID === 'function') return c.randomUUID();
    var bytes = new Uint8Array(16);
    if (c && c.getRandomValues) c.getRandomValues(bytes);
    else for (var i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = '';
    for (var j = 0; j < 16; j++) hex += (bytes[j] + 0x100).toString(16).slice(1);
    return hex.slice(0, 8) + '-' + hex.slice(8, 12) + '-' + hex.slice(12, 16) + '-' +
      hex.slice(16, 20) + '-' + hex.slice(20);
  }

  // localStorage first; a cookie where it is blocked (some privacy modes throw on access).
  function read(key) {
    try { var stored = window.localStorage.getItem(key); if (stored) return stored; } catch (e) { /* next */ }
    try {
      var match = document.cookie.match(new RegExp('(?:^|; )' + key + '=([^;]*)'));
      if (match) return decodeURIComponent(match[1]);
    } catch (e) { /* next */ }
    return memory[key] || null;
  }

  function write(key, value) {
    memory[key] = value;
    try { window.localStorage.setItem(key, value); return; } catch (e) { /* cookie */ }
    try {
      document.cookie = key + '=' + encodeURIComponent(value) + '; path=/; max-age=63072000; SameSite=Lax';
    } catch (e) { /* memory only */ }
  }

  function forget(key) {
    delete memory[key];
    try { window.localStorage.removeItem(key); } catch (e) { /* ignore */ }
    try { document.cookie = key + '=; path=/; max-age=0'; } catch (e) { /* ignore */ }
  }

  function anonymousId() {
    var id = read(ANON_KEY);
    if (!id) { id = uuid(); write(ANON_KEY, id); }
    return id;
  }

  function pageContext() {
    var location = window.location;
    return {
      path: location.pathname, url: location.href, referrer: document.referrer,
      title: document.title, search: location.search
    };
  }

  function campaign(search) {
    var found = {};
    var any = false;
    var params = (search || '').replace(/^\?/, '').split('&');
    for (var i = 0; i < params.length; i++) {
      var pair = params[i].split('=');
      var name = pair[0].match(/^utm_(source|medium|term|content|campaign)$/);
      if (!name || pair.length < 2) continue;
      try { found[name[1] === 'campaign' ? 'name' : name[1]] = decodeURIComponent(pair[1].replace(/\+/g, ' ')); any = true; } catch (e) { /* skip */ }
    }
    return any ? found : undefined;
  }

  function message(type, fields) {
    var page = pageContext();
    var msg = {
      type: type,
      messageId: uuid(),
      anonymousId: anonymousId(),
      // The device's clock: the gateway corrects its skew with sentAt and the time received.
      originalTimestamp: now(),
      context: {
        page: page,
        userAgent: window.navigator.userAgent,
        locale: window.navigator.language,
        campaign: campaign(page.search),
        library: { name: 'leadflow.js', version: VERSION }
      }
    };
    var userId = read(USER_KEY);
    if (userId) msg.userId = userId;
    for (var key in fields) if (fields[key] !== undefined) msg[key] = fields[key];
    return msg;
  }

  function enqueue(msg) {
    queue.push({ message: msg, attempts: 0 });
    if (queue.length > MAX_QUEUE) queue.splice(0, queue.length - MAX_QUEUE);
    schedule(FLUSH_DELAY_MS);
  }

  function schedule(delay) {
    if (timer || !config) return;
    timer = setTimeout(safely(function () { timer = null; flush(); }), delay);
  }

  function body(items) {
    var sentAt = now();
    var batch = [];
    for (var i = 0; i < items.length; i++) batch.push(items[i].message);
    return JSON.stringify({ batch: batch, writeKey: config.writeKey, sentAt: sentAt });
  }

  function url() { return config.apiHost.replace(/\/+$/, '') + '/v1/batch'; }

  // One request in flight at a time, so that the gateway receives the calls in their order
  // (an identify after the page views it merges).
  function flush() {
    if (sending || !config || !queue.length) return;
    var items = queue.splice(0, MAX_BATCH);
    var payload = body(items);
    sending = true;
    var done = function (ok, retry) {
      sending = false;
      if (!ok && retry) {
        var again = [];
        for (var i = 0; i < items.length; i++) if (++items[i].attempts < MAX_ATTEMPTS) again.push(items[i]);
        queue = again.concat(queue);
        schedule(1000 * Math.pow(2, items[0].attempts));
      } else if (queue.length) {
        schedule(0);
      }
    };
    try {
      post(payload, payload.length < 60000).then(function (response) {
        done(response.ok, response.status >= 500 || response.status === 429);
      }, function () {
        done(false, true);
      }).then(null, function () { /* never an unhandled rejection */ });
    } catch (e) {
      done(false, false); // no fetch, or it refused the request outright
    }
  }

  // text/plain keeps the request "simple": no CORS preflight, as analytics.js does. keepalive
  // lets it finish after the page has gone (browsers cap such bodies at 64 KB in flight).
  function post(payload, keepalive) {
    return window.fetch(url(), {
      method: 'POST', body: payload, headers: { 'Content-Type': 'text/plain' },
      credentials: 'omit', keepalive: keepalive
    });
  }

  // The page is going away: hand everything left to the browser, which sends it after unload.
  function flushOnHide() {
    if (!config || !queue.length) return;
    while (queue.length) {
      var items = queue.splice(0, MAX_BATCH);
      var payload = body(items);
      var queued = false;
      try {
        var beacon = window.navigator.sendBeacon;
        queued = typeof beacon === 'function' &&
          window.navigator.sendBeacon(url(), new Blob([payload], { type: 'text/plain' }));
      } catch (e) { queued = false; }
      if (!queued) {
        try {
          post(payload, true).then(null, function () { /* the page is leaving: nothing to do */ });
        } catch (e) { /* dropped */ }
      }
    }
  }

  var api = {
    loaded: true,
    VERSION: VERSION,
    load: safely(function (options) {
      if (config || !isObject(options) || typeof options.writeKey !== 'string' || !options.writeKey) return;
      config = { writeKey: options.writeKey, apiHost: String(options.apiHost || defaultHost()) };
      if (options.autoPage !== false) api.page();
      schedule(0);
    }),
    track: safely(function (event, properties) {
      if (typeof event !== 'string' || !event) return;
      enqueue(message('track', { event: event, properties: isObject(properties) ? properties : {} }));
    }),
    page: safely(function (name, properties) {
      if (isObject(name)) { properties = name; name = undefined; }
      var props = pageContext();
      if (isObject(properties)) for (var key in properties) props[key] = properties[key];
      if (typeof name === 'string') props.name = name;
      enqueue(message('page', { name: typeof name === 'string' ? name : undefined, properties: props }));
    }),
    identify: safely(function (userId, traits) {
      if (isObject(userId)) { traits = userId; userId = undefined; }
      if (typeof userId === 'number') userId = String(userId);
      if (typeof userId === 'string' && userId) write(USER_KEY, userId);
      enqueue(message('identify', { traits: isObject(traits) ? traits : {} }));
    }),
    reset: safely(function () { forget(USER_KEY); forget(ANON_KEY); }),
    // Snippet compatibility: leadflow.push(['track', ...]) keeps working after the load.
    push: safely(function (call) { run(call); })
  };

  function run(call) {
    if (!call || typeof call.length !== 'number') return;
    var args = Array.prototype.slice.call(call);
    var method = args.shift();
    if (typeof method === 'string' && method !== 'push' && typeof api[method] === 'function') {
      api[method].apply(null, args);
    }
  }

  function ownScript() {
    if (document.currentScript) return document.currentScript;
    var scripts = document.getElementsByTagName('script');
    for (var i = scripts.length - 1; i >= 0; i--) {
      if (scripts[i].getAttribute('data-write-key') || /\/sdk\/ls\.js(\?|$)/.test(scripts[i].src)) return scripts[i];
    }
    return null;
  }

  var script = null;
  function defaultHost() {
    try { return new URL(script.src).origin; } catch (e) { return window.location.origin; }
  }

  safely(function () {
    script = ownScript();
    window.leadflow = api;
    var hide = safely(function (event) {
      if (event.type === 'pagehide' || document.visibilityState === 'hidden') flushOnHide();
    });
    window.addEventListener('pagehide', hide);
    document.addEventListener('visibilitychange', hide);
    // A load() in the queue wins over the script's attributes; the other calls wait for it.
    var loadCall = null;
    for (var i = 0; i < pending.length; i++) if (pending[i] && pending[i][0] === 'load') loadCall = pending[i];
    var key = script && script.getAttribute('data-write-key');
    if (loadCall) run(loadCall);
    else if (key) {
      api.load({
        writeKey: key,
        apiHost: script.getAttribute('data-api-host') || undefined,
        autoPage: script.getAttribute('data-auto-page') !== 'false'
      });
    }
    for (var j = 0; j < pending.length; j++) if (pending[j] !== loadCall) run(pending[j]);
  })();
})(window, document);
