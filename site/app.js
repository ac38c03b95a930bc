// The broadcast web app: loads config.json, shows the newest page of history, listens on the
// SignalR hub, and after every (re)connect asks the API for what it missed, so each message is
// shown exactly once, in order. User-supplied text is always rendered as text (links are built
// with DOM calls, http and https only), never as HTML.
"use strict";

(() => {
  const PAGE = 100; // the API's largest page
  const KEEP = 500; // messages kept on screen before the oldest make way (still reachable)
  const KEY_STORAGE = "broadcast.functionKey";
  const MAX_TEXT = 2000;
  // A visible page must be live again within seconds of the service coming back; a hidden one
  // retries rarely and catches up at once when shown. Jitter keeps thousands of pages from
  // retrying in step.
  const RETRY_CAP_VISIBLE_MS = 3000;
  const RETRY_CAP_HIDDEN_MS = 30000;
  // Screen readers get one summary per burst: after a quiet moment, or at most this late.
  const ANNOUNCE_QUIET_MS = 1000;
  const ANNOUNCE_MAX_WAIT_MS = 3000;
  const SPOKEN_CHARS = 140;
  // A connection state is read out only once it has lasted this long (no flapping read out).
  const SETTLE_MS = { live: 1000, down: 3000 };
  const COLLAPSE_CHARS = 600;
  const COLLAPSE_LINES = 8;
  const SENT_VISIBLE_MS = 4000;

  const $ = (id) => document.getElementById(id);
  const feed = $("feed");
  const baseTitle = document.title;
  const messages = new Map(); // id -> message
  const parts = new WeakMap(); // article -> { date, day, ago }: what refreshFeed updates
  const reducedMotion = matchMedia("(prefers-reduced-motion: reduce)");
  let config = null;
  let connection = null;
  let lastId = 0; // newest id seen
  // Every message up to this id has been read from the API or received in order: a catch-up asks
  // for what follows it (a live message that arrived during a catch-up must not hide a gap).
  let caughtUp = 0;
  let limit = KEEP;
  let loaded = false; // the newest page has been shown
  let everLive = false;
  let newestLoad = null; // the newest page's request while it runs, shared by its callers

  // ---- rendering ---------------------------------------------------------------------------

  const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "long", month: "long", day: "numeric" });
  const yearFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "long" });
  const exactFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
  const clockFormat = new Intl.DateTimeFormat(undefined, { timeStyle: "short" });
  const relative = new Intl.RelativeTimeFormat("en", { numeric: "auto", style: "long" });

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  const authorOf = (message) => message.author || "anonymous";

  // "just now", "5 minutes ago", "3 hours ago"; older ones show the time of day, since the day
  // separator above them gives the date.
  function ago(date, now) {
    const seconds = (date - now) / 1000;
    if (seconds > -45) return "just now";
    const minutes = Math.round(seconds / 60);
    if (minutes > -60) return relative.format(minutes, "minute");
    const hours = Math.round(minutes / 60);
    if (hours > -24) return relative.format(hours, "hour");
    return clockFormat.format(date);
  }

  function dayLabel(date, now) {
    const midnight = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
    const days = Math.round((midnight(now) - midnight(date)) / 86400000);
    if (days === 0) return "Today";
    if (days === 1) return "Yesterday";
    return date.getFullYear() === now.getFullYear() ? dayFormat.format(date) : yearFormat.format(date);
  }

  // Only http and https become links: `javascript:`, `data:` and the like stay plain text.
  function safeHref(candidate) {
    try {
      const url = new URL(candidate);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch {
      return null;
    }
  }

  // The text as text nodes, with http(s) URLs as links that cannot reach back into this page.
  function linkify(text) {
    const fragment = document.createDocumentFragment();
    let last = 0;
    for (const match of text.matchAll(/\bhttps?:\/\/[^\s<>"']+/gi)) {
      // Punctuation that ends the sentence is not part of the address.
      let candidate = match[0].replace(/[.,;:!?]+$/, "");
      if (candidate.endsWith(")") && !candidate.includes("(")) candidate = candidate.slice(0, -1);
      const href = safeHref(candidate);
      if (!href) continue;
      fragment.append(text.slice(last, match.index));
      const link = element("a", "", candidate);
      link.href = href;
      link.rel = "noopener noreferrer";
      link.target = "_blank";
      fragment.append(link);
      last = match.index + candidate.length;
    }
    fragment.append(text.slice(last));
    return fragment;
  }

  // Long texts are collapsed behind "Show more". Length and line count pick the candidates
  // without measuring every message; `unfoldShort` then measures only those.
  function collapsible(card, text, message) {
    if (message.text.length <= COLLAPSE_CHARS && message.text.split("\n").length <= COLLAPSE_LINES) return;
    text.classList.add("collapsed");
    const more = element("button", "quiet more", "Show more");
    more.type = "button";
    more.setAttribute("aria-expanded", "false");
    more.setAttribute("aria-controls", text.id);
    more.addEventListener("click", () => {
      const collapsed = text.classList.toggle("collapsed");
      more.textContent = collapsed ? "Show more" : "Show less";
      more.setAttribute("aria-expanded", String(!collapsed));
    });
    card.append(more);
  }

  // A candidate that fits in the collapsed height anyway (a wide screen) needs no button.
  function unfoldShort(articles) {
    for (const article of articles) {
      const text = article.querySelector(".text.collapsed");
      if (text && text.scrollHeight <= text.clientHeight) {
        text.classList.remove("collapsed");
        article.querySelector(".more").remove();
      }
    }
  }

  // One message as an article of the feed. Author and text are isolated (<bdi>, dir="auto") so a
  // right-to-left name cannot reorder the time beside it.
  function render(message, fresh) {
    const id = `m${message.id}`;
    const article = element("article", fresh ? "message fresh" : "message");
    article.dataset.id = String(message.id);
    article.tabIndex = 0;
    article.setAttribute("aria-labelledby", `${id}-who ${id}-when`);
    article.setAttribute("aria-describedby", `${id}-text`);
    const day = element("p", "day");
    day.hidden = true;
    const card = element("div", "card");
    const head = element("p", "head");
    const who = element("bdi", "who", authorOf(message));
    who.id = `${id}-who`;
    const when = element("time");
    when.id = `${id}-when`;
    when.dateTime = message.createdAt;
    const date = new Date(message.createdAt);
    when.title = exactFormat.format(date);
    when.append(element("span", "ago", ago(date, new Date())), element("span", "exact", when.title));
    head.append(who, " ", when);
    const text = element("p", "text");
    text.id = `${id}-text`;
    text.dir = "auto";
    text.append(linkify(message.text));
    card.append(head, text);
    collapsible(card, text, message);
    article.append(day, card);
    parts.set(article, { date, day, ago: when.firstChild });
    return article;
  }

  // Day separators, positions in the feed, and relative times: one pass over the feed, after each
  // change and every half minute (a separator says "Today" only until midnight).
  function refreshFeed() {
    const now = new Date();
    const size = $("older").hidden ? String(feed.children.length) : "-1";
    let previous = "";
    let position = 0;
    for (const article of feed.children) {
      const { date, day, ago: relativeTime } = parts.get(article);
      const label = dayLabel(date, now);
      setText(day, label);
      day.hidden = label === previous;
      previous = label;
      setText(relativeTime, ago(date, now));
      article.setAttribute("aria-posinset", String(++position));
      article.setAttribute("aria-setsize", size);
    }
  }

  // Writes only what changed: the whole feed is refreshed after every arrival.
  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  function setHasOlder(hasOlder) {
    $("older").hidden = !hasOlder;
    $("beginning").hidden = hasOlder || feed.children.length === 0;
  }

  function setBusy(busy) {
    feed.setAttribute("aria-busy", String(busy));
  }

  // Adds messages not seen before; keeps the feed newest first whatever order they arrive in.
  // `kind` is "history" (shown, not new to the reader) or "new" (announced, highlighted, counted).
  function merge(batch, kind) {
    const fresh = batch
      .filter((m) => Number.isInteger(m.id) && !messages.has(m.id))
      .sort((a, b) => a.id - b.id);
    if (fresh.length === 0) return;
    const added = [];
    for (const message of fresh) {
      if (kind === "history" || message.id === caughtUp + 1) caughtUp = Math.max(caughtUp, message.id);
      messages.set(message.id, message);
      // Before the first older one: the top for anything newer than all shown, else a search.
      const older =
        message.id > lastId
          ? feed.firstElementChild
          : [...feed.children].find((article) => Number(article.dataset.id) < message.id);
      added.push(feed.insertBefore(render(message, kind === "new"), older || null));
      lastId = Math.max(lastId, message.id);
    }
    unfoldShort(added);
    while (feed.children.length > limit) {
      const oldest = feed.lastElementChild;
      messages.delete(Number(oldest.dataset.id));
      oldest.remove();
      setHasOlder(true);
    }
    $("empty").hidden = true;
    refreshFeed();
    if (kind === "new") noticeNew(fresh);
  }

  // ---- what is new: announcements, the "new messages" pill, the title ---------------------

  let pending = [];
  let firstPendingAt = 0;
  let announceTimer = 0;
  let unread = 0;
  let unseen = 0;

  function clip(text) {
    const flat = text.replace(/\s+/g, " ").trim();
    if (flat.length <= SPOKEN_CHARS) return flat;
    const cut = flat.slice(0, SPOKEN_CHARS);
    const space = cut.lastIndexOf(" "); // end on a whole word when one ends late enough
    return `${space > SPOKEN_CHARS / 2 ? cut.slice(0, space) : cut}…`;
  }

  // "New message from Ana: hello" or "3 new messages from Ana and 2 others" (newest author first).
  function summary(batch) {
    const newest = batch[batch.length - 1];
    if (batch.length === 1) return `New message from ${authorOf(newest)}: ${clip(newest.text)}`;
    const authors = [...new Set(batch.map(authorOf).reverse())];
    const from =
      authors.length === 1
        ? authors[0]
        : authors.length === 2
          ? `${authors[0]} and ${authors[1]}`
          : `${authors[0]} and ${authors.length - 1} others`;
    return `${batch.length} new messages from ${from}`;
  }

  // A live region re-reads only changed text: the same summary twice is cleared first.
  function speak(region, text) {
    if (region.textContent !== text) {
      region.textContent = text;
      return;
    }
    region.textContent = "";
    setTimeout(() => {
      region.textContent = text;
    }, 100);
  }

  function announce(batch) {
    if (pending.length === 0) firstPendingAt = Date.now();
    pending.push(...batch);
    clearTimeout(announceTimer);
    const wait = Math.min(ANNOUNCE_QUIET_MS, firstPendingAt + ANNOUNCE_MAX_WAIT_MS - Date.now());
    announceTimer = setTimeout(() => {
      const batchToSay = pending.sort((a, b) => a.id - b.id);
      pending = [];
      speak($("announcer"), summary(batchToSay));
    }, Math.max(0, wait));
  }

  // The newest message is at the top: the reader is away when the feed's top is scrolled past.
  function awayFromNewest() {
    return feed.getBoundingClientRect().top < 0;
  }

  function showPill() {
    const pill = $("new-pill");
    pill.hidden = unseen === 0;
    pill.textContent = `${unseen} new message${unseen === 1 ? "" : "s"}`;
  }

  function noticeNew(batch) {
    announce(batch);
    if (document.hidden) {
      unread += batch.length;
      document.title = `(${unread}) ${baseTitle}`;
    }
    if (awayFromNewest()) {
      unseen += batch.length;
      showPill();
    }
  }

  function setupNewMessageCues() {
    $("new-pill").addEventListener("click", () => {
      unseen = 0;
      showPill();
      window.scrollTo({ top: 0, behavior: reducedMotion.matches ? "auto" : "smooth" });
      feed.firstElementChild?.focus({ preventScroll: true });
    });
    let ticking = false;
    window.addEventListener(
      "scroll",
      () => {
        if (ticking) return;
        ticking = true;
        requestAnimationFrame(() => {
          ticking = false;
          if (unseen > 0 && !awayFromNewest()) {
            unseen = 0;
            showPill();
          }
        });
      },
      { passive: true },
    );
    // The header wraps on narrow screens; the pill sits just under it.
    new ResizeObserver(() => {
      document.body.style.setProperty("--bar-height", `${document.querySelector(".bar").offsetHeight}px`);
    }).observe(document.querySelector(".bar"));
    // The feed pattern's keys: Page Down / Page Up move between articles.
    feed.addEventListener("keydown", (event) => {
      const article = event.target.closest?.("article");
      if (!article || (event.key !== "PageDown" && event.key !== "PageUp")) return;
      const next = event.key === "PageDown" ? article.nextElementSibling : article.previousElementSibling;
      if (next) {
        event.preventDefault();
        next.focus();
      }
    });
    setInterval(refreshFeed, 30000);
  }

  // ---- history ------------------------------------------------------------------------------

  async function getMessages(query) {
    const response = await fetch(`${config.apiBaseUrl}/messages${query}`, {
      headers: { Accept: "application/json" },
    });
    if (!response.ok) throw new Error(`history answered ${response.status}`);
    return (await response.json()).messages;
  }

  // Both query values are always sent: on Azure the binding needs every value it names.
  const page = (before) => getMessages(`/page?before=${before}&take=${PAGE}`);

  async function loadNewestOnce() {
    setBusy(true);
    try {
      const newest = await page("latest");
      merge(newest, "history");
      loaded = true;
      setHasOlder(newest.length === PAGE);
      $("empty").hidden = feed.children.length > 0; // a message may have arrived live meanwhile
      $("load-error").hidden = true;
    } catch (error) {
      $("load-error").hidden = false;
      throw error;
    } finally {
      $("loading").hidden = true;
      setBusy(false);
    }
  }

  function loadNewest() {
    newestLoad = newestLoad || loadNewestOnce().finally(() => (newestLoad = null));
    return newestLoad;
  }

  // Everything after what was caught up to, page by page.
  async function catchUp(kind) {
    setBusy(true);
    try {
      for (;;) {
        const batch = await getMessages(`?after=${caughtUp}&take=${PAGE}`);
        merge(batch, kind);
        caughtUp = Math.max(caughtUp, ...batch.map((m) => m.id));
        if (batch.length < PAGE) return;
      }
    } finally {
      setBusy(false);
    }
  }

  async function loadOlder() {
    const button = $("older");
    const oldest = Number(feed.lastElementChild?.dataset.id);
    button.disabled = true;
    setBusy(true);
    try {
      const older = await page(oldest);
      limit = Math.max(limit, messages.size + older.length); // what the reader asked for stays
      merge(older, "history");
      button.textContent = "Show older messages";
      setHasOlder(older.length === PAGE);
    } catch (error) {
      console.warn("older messages failed:", error);
      button.textContent = "Show older messages (failed: try again)";
    } finally {
      button.disabled = false;
      setBusy(false);
    }
  }

  // ---- connection -----------------------------------------------------------------------------

  const STATES = {
    connecting: "Connecting…",
    live: "Live",
    reconnecting: "Reconnecting…",
    offline: "Offline: waiting for the network",
  };
  let spoken = ""; // the state last read out: "live" or "down"
  let settling = ""; // the state waiting to be read out
  let settleTimer = 0;
  let wake = null; // ends the current wait between attempts early
  let hurry = false; // "retry now" asked for while an attempt was under way: no wait after it
  let retrying = false;
  let warned = false; // one console warning per outage, not one per attempt

  function setStatus(state, waiting = false) {
    $("status").dataset.state = state;
    $("status-text").textContent = STATES[state];
    document.body.dataset.connection = state;
    $("reconnect").hidden = !waiting;
    const group = state === "live" ? "live" : "down";
    if (group === settling) return; // the same state again: let it settle
    settling = group;
    clearTimeout(settleTimer);
    settleTimer = setTimeout(() => {
      if (group === spoken) return;
      let text = "Not connected yet. Retrying…";
      if (group === "live") text = spoken === "down" ? "Live again." : "Live.";
      else if (everLive) text = "Connection lost. Reconnecting…";
      spoken = group;
      speak($("status-announce"), text);
    }, SETTLE_MS[group]);
  }

  function setPresence(online) {
    const presence = $("presence");
    if (online === null) {
      // Unknown while disconnected: an old count would be a guess shown as a fact.
      $("online").textContent = "–";
      presence.title = "Unknown while disconnected";
      return;
    }
    presence.hidden = false;
    presence.title = "";
    $("online").textContent = String(online);
  }

  function pause(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wake = null;
        resolve();
      }
      wake = done;
    });
  }

  function retryNow() {
    if (wake) wake();
    else if (retrying) hurry = true;
  }

  function retryDelay(attempt) {
    const cap = document.hidden ? RETRY_CAP_HIDDEN_MS : RETRY_CAP_VISIBLE_MS;
    const delay = Math.min(cap, 500 * 2 ** attempt);
    return delay / 2 + (Math.random() * delay) / 2;
  }

  async function onLive() {
    const returning = everLive;
    everLive = true;
    warned = false;
    setStatus("live");
    const result = $("publish-result");
    if (result.dataset.stale === "true") result.textContent = ""; // "could not reach" is over
    try {
      if (!loaded) await loadNewest();
      // On the first connection, what was published while it was made is history; after an outage
      // it is news, announced and counted.
      await catchUp(returning ? "new" : "history");
    } catch (error) {
      console.warn("history failed:", error);
    }
  }

  // Tries until connected: at once, then with growing, capped, jittered pauses that `retryNow`
  // (the button, the network coming back, the page being shown) cuts short.
  async function keepConnected() {
    if (retrying) return;
    retrying = true;
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0 && !navigator.onLine) {
        setStatus("offline", true);
        await pause(RETRY_CAP_HIDDEN_MS);
      }
      setStatus(everLive ? "reconnecting" : "connecting", attempt > 0);
      try {
        await connection.start();
        retrying = false;
        hurry = false;
        await onLive();
        return;
      } catch (error) {
        if (!warned) console.warn("not connected, retrying:", error?.message || error);
        warned = true;
        setStatus(everLive ? "reconnecting" : "connecting", true);
        if (hurry) hurry = false;
        else await pause(retryDelay(attempt));
      }
    }
  }

  // The client's own logging would print an error per failed attempt: one warning per outage.
  const quietLogger = {
    log(level, message) {
      if (level >= signalR.LogLevel.Warning && !warned) {
        warned = true;
        console.warn(`SignalR: ${message}`);
      }
    },
  };

  function connect() {
    // No withAutomaticReconnect: keepConnected retries itself, so that it can be hurried.
    connection = new signalR.HubConnectionBuilder()
      .withUrl(config.apiBaseUrl)
      .configureLogging(quietLogger)
      .build();
    connection.on("newMessage", (message) => merge([message], "new"));
    connection.on("presence", (presence) => setPresence(presence.online));
    connection.onclose(() => {
      setPresence(null);
      keepConnected();
    });
    $("reconnect").addEventListener("click", retryNow);
    window.addEventListener("online", retryNow);
    window.addEventListener("offline", () => {
      if (document.body.dataset.connection !== "live") setStatus("offline", true);
    });
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) return;
      unread = 0;
      document.title = baseTitle;
      refreshFeed();
      retryNow();
    });
    return keepConnected();
  }

  // ---- publisher ----------------------------------------------------------------------------

  const FIELD_OF_ERROR = { invalid_text: "text", text_too_long: "text", invalid_author: "author" };
  let sentTimer = 0;

  function openPublisher(open, focus) {
    $("publisher").hidden = !open;
    $("publish-toggle").setAttribute("aria-expanded", String(open));
    if (open !== (location.hash === "#publish")) {
      history.replaceState(null, "", open ? "#publish" : location.pathname + location.search);
    }
    if (open && focus) $($("publish-key").value ? "text" : "publish-key").focus();
  }

  function report(kind, message, field = null, stale = false) {
    const result = $("publish-result");
    clearTimeout(sentTimer);
    result.dataset.kind = kind;
    result.dataset.stale = String(stale);
    result.textContent = message;
    if (field) {
      $(field).setAttribute("aria-invalid", "true");
      $(field).focus();
    }
    if (kind === "ok") sentTimer = setTimeout(() => (result.textContent = ""), SENT_VISIBLE_MS);
  }

  function countCharacters() {
    // UTF-16 units, as the API and SQL Server's NVARCHAR count them (most emoji count 2).
    const count = $("text").value.length;
    const counter = $("text-count");
    counter.textContent = `${count} / ${MAX_TEXT}`;
    counter.dataset.level = count > MAX_TEXT ? "over" : count > MAX_TEXT * 0.9 ? "near" : "";
  }

  // A random UUID (v4); crypto.randomUUID needs a secure context, getRandomValues does not.
  function newMessageKey() {
    if (crypto.randomUUID) return crypto.randomUUID();
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  // The message being sent keeps its key until it is stored: sending it again after a failure
  // (an answer lost to the network) cannot publish it twice. A changed message gets a new key.
  let unsent = null; // { key, body }

  async function send() {
    const key = $("publish-key");
    const text = $("text").value;
    if (!key.value.trim()) return report("error", "Enter the publish key first.", "publish-key");
    if (!text.trim()) return report("error", "Write a message first.", "text");
    sessionStorage.setItem(KEY_STORAGE, key.value);
    const body = JSON.stringify({ text, author: $("author").value || null });
    if (unsent?.body !== body) unsent = { key: newMessageKey(), body };
    $("send").disabled = true;
    report("", "");
    try {
      const response = await fetch(`${config.apiBaseUrl}/messages/${unsent.key}`, {
        method: "PUT",
        headers: { "Content-Type": "application/json", "x-functions-key": key.value },
        body,
      });
      if (response.status === 202 || response.status === 200) {
        unsent = null;
        $("text").value = "";
        countCharacters();
        report("ok", "Sent.");
      } else if (response.status === 401) {
        report("error", "The publish key was refused.", "publish-key");
      } else {
        const body = await response.json().catch(() => null);
        const message = body?.error?.message || `The API answered ${response.status}.`;
        report("error", message, FIELD_OF_ERROR[body?.error?.code] || null);
      }
    } catch {
      report("error", "Could not reach the API. Try again once the feed is live.", null, true);
    } finally {
      $("send").disabled = false;
    }
  }

  function setupPublisher() {
    const form = $("publish-form");
    $("publish-key").value = sessionStorage.getItem(KEY_STORAGE) || "";
    $("publish-toggle").addEventListener("click", () => openPublisher($("publisher").hidden, true));
    window.addEventListener("hashchange", () => location.hash === "#publish" && openPublisher(true, true));
    if (location.hash === "#publish") openPublisher(true, false);
    form.addEventListener("input", (event) => {
      event.target.removeAttribute("aria-invalid");
      if (event.target.id === "text") countCharacters();
    });
    form.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      send();
    });
  }

  // ---- start ----------------------------------------------------------------------------------

  async function main() {
    setStatus("connecting");
    setupPublisher();
    setupNewMessageCues();
    $("older").addEventListener("click", loadOlder);
    const response = await fetch("config.json", { cache: "no-cache" });
    config = await response.json();
    config.apiBaseUrl = config.apiBaseUrl.replace(/\/$/, "");
    // The first screen and the connection at once; the first live moment waits for the screen.
    loadNewest().catch((error) => console.warn("history failed:", error));
    await connect();
  }

  main();
})();
