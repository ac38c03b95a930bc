// The broadcast web app: loads config.json, negotiates through the Functions API, listens on the
// SignalR hub, and after every (re)connect asks the API for what it missed, so each message is
// shown exactly once, in order. Text is always rendered as text, never as HTML.
"use strict";

(() => {
  const PAGE = 100; // the API's largest page
  const KEEP = 500; // messages kept on screen
  const KEY_STORAGE = "broadcast.functionKey";

  const $ = (id) => document.getElementById(id);
  const feed = $("feed");
  const messages = new Map(); // id -> message
  let lastId = 0;
  let config = null;

  const STATES = {
    connecting: "Connecting…",
    live: "Live",
    reconnecting: "Reconnecting…",
    offline: "Offline: retrying",
  };

  function setStatus(state) {
    $("status").dataset.state = state;
    $("status-text").textContent = STATES[state];
    document.body.dataset.connection = state;
  }

  function render(message) {
    const item = document.createElement("li");
    item.dataset.id = String(message.id);
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = message.author || "anonymous";
    const when = document.createElement("time");
    when.dateTime = message.createdAt;
    when.textContent = new Date(message.createdAt).toLocaleString();
    const text = document.createElement("p");
    text.className = "text";
    text.textContent = message.text;
    item.append(who, when, text);
    return item;
  }

  // Adds messages not seen before; keeps the feed newest first whatever order they arrive in.
  function merge(batch) {
    const fresh = batch.filter((m) => Number.isInteger(m.id) && !messages.has(m.id));
    if (fresh.length === 0) return;
    for (const message of fresh) {
      messages.set(message.id, message);
      lastId = Math.max(lastId, message.id);
      const item = render(message);
      const newer = [...feed.children].find((li) => Number(li.dataset.id) < message.id);
      feed.insertBefore(item, newer || null);
    }
    while (feed.children.length > KEEP) {
      const oldest = feed.lastElementChild;
      messages.delete(Number(oldest.dataset.id));
      oldest.remove();
    }
    $("empty").hidden = feed.children.length > 0;
    const latest = fresh.reduce((a, b) => (a.id > b.id ? a : b));
    $("announcer").textContent = `${latest.author || "anonymous"}: ${latest.text}`;
  }

  async function history(after, take) {
    const url = `${config.apiBaseUrl}/messages?after=${after}&take=${take}`;
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`history answered ${response.status}`);
    return (await response.json()).messages;
  }

  // Everything after the last id seen, page by page.
  async function catchUp() {
    for (;;) {
      const page = await history(lastId, PAGE);
      merge(page);
      if (page.length < PAGE) return;
    }
  }

  // The newest message id, found with the history call alone: "is there a message after x?" is true
  // exactly below the newest id, so galloping then bisecting takes about 2 log2(n) small requests,
  // instead of reading the whole history to show its end.
  async function newestId() {
    const after = async (x) => (await history(x, 1)).length > 0;
    if (!(await after(0))) return 0;
    let low = 0;
    let high = 1;
    while (await after(high)) {
      low = high;
      high *= 2;
    }
    while (high - low > 1) {
      const middle = Math.floor((low + high) / 2);
      if (await after(middle)) low = middle;
      else high = middle;
    }
    return high;
  }

  async function start(connection) {
    let delay = 1000;
    for (;;) {
      try {
        setStatus("connecting");
        await connection.start();
        setStatus("live");
        await catchUp();
        return;
      } catch (error) {
        console.warn("connect failed:", error);
        setStatus("offline");
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(delay * 2, 30000);
      }
    }
  }

  function connect() {
    const connection = new signalR.HubConnectionBuilder()
      .withUrl(config.apiBaseUrl)
      .withAutomaticReconnect({
        nextRetryDelayInMilliseconds: (context) => Math.min(1000 * 2 ** context.previousRetryCount, 30000),
      })
      .configureLogging(signalR.LogLevel.Warning)
      .build();
    connection.on("newMessage", (message) => merge([message]));
    connection.on("presence", (presence) => {
      $("online").textContent = String(presence.online);
    });
    connection.onreconnecting(() => setStatus("reconnecting"));
    connection.onreconnected(async () => {
      setStatus("live");
      try {
        await catchUp();
      } catch (error) {
        console.warn("catch-up failed:", error);
      }
    });
    connection.onclose(() => start(connection));
    return start(connection);
  }

  function setupPublisher() {
    const form = $("publish-form");
    const key = $("function-key");
    const result = $("publish-result");
    key.value = sessionStorage.getItem(KEY_STORAGE) || "";
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const text = $("text").value;
      if (!text.trim()) {
        result.dataset.kind = "error";
        result.textContent = "Write a message first.";
        return;
      }
      sessionStorage.setItem(KEY_STORAGE, key.value);
      $("send").disabled = true;
      result.textContent = "";
      try {
        const response = await fetch(`${config.apiBaseUrl}/messages`, {
          method: "POST",
          headers: { "Content-Type": "application/json", "x-functions-key": key.value },
          body: JSON.stringify({ text, author: $("author").value || null }),
        });
        if (response.status === 202) {
          result.dataset.kind = "ok";
          result.textContent = "Sent.";
          $("text").value = "";
        } else if (response.status === 401) {
          result.dataset.kind = "error";
          result.textContent = "The function key was refused.";
        } else {
          const body = await response.json().catch(() => null);
          result.dataset.kind = "error";
          result.textContent = body?.error?.message || `The API answered ${response.status}.`;
        }
      } catch (error) {
        result.dataset.kind = "error";
        result.textContent = `Could not reach the API: ${error.message}`;
      } finally {
        $("send").disabled = false;
      }
    });
  }

  async function main() {
    setStatus("connecting");
    setupPublisher();
    const response = await fetch("config.json", { cache: "no-cache" });
    config = await response.json();
    config.apiBaseUrl = config.apiBaseUrl.replace(/\/$/, "");
    try {
      // First visit: the most recent page of history, then everything newer as it arrives.
      lastId = Math.max(0, (await newestId()) - PAGE);
      await catchUp();
    } catch (error) {
      console.warn("history failed:", error);
    }
    await connect();
  }

  main();
})();
