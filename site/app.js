// The broadcast web app: loads config.json, shows the newest page of history, listens on the
// SignalR hub, and after every (re)connect asks the API for what it missed, so each message is
// shown exactly once, in order. User-supplied text is always rendered as text (links are built
// with DOM calls, http and https only), never as HTML.
"use strict";

(() => {
  // ---- every text the page shows, in one table: a translation replaces this table ----------
  // index.html carries the same English texts (for a page without script); elements marked
  // `data-text` take theirs from here. Dates and times are not in it: they are formatted in the
  // reader's own locale (the browser's languages, in its order of preference), relative ones too
  // ("vor 5 Minuten", "gestern"), with the browser's own data.
  const TIME_LOCALES = navigator.languages?.length ? [...navigator.languages] : [navigator.language || "en"];
  const T = {
    title: "Broadcast",
    skip: "Skip to messages",
    publish: "Publish",
    reconnect: "Reconnect now",
    publisherTitle: "Publish a message",
    keyLabel: "Publish key",
    keyHint: "(from whoever runs this feed; kept in this tab only)",
    nameLabel: "Name",
    nameHint: "(optional, up to 64 characters)",
    textLabel: "Message",
    enterSends: "sends",
    shiftEnterLine: "adds a line",
    send: "Send",
    feedTitle: "Live feed",
    anonymous: "anonymous",
    showMore: "Show more",
    showLess: "Show less",
    copyLink: "Copy link",
    linkCopied: "Link copied.",
    linkInAddressBar: "Copying is not allowed here: the link is in the address bar.",
    linkGone: "That message is no longer here: it was removed, or the link is wrong.",
    dismiss: "Dismiss",
    newSince: "New since your last visit",
    newCount: (n) => (n === 1 ? "1 new message" : `${n} new messages`),
    newOne: (author, text) => `New message from ${author}: ${text}`,
    newMany: (n, from) => `${n} new messages from ${from}`,
    twoAuthors: (a, b) => `${a} and ${b}`,
    moreAuthors: (a, others) => `${a} and ${others} others`,
    connecting: "Connecting…",
    live: "Live",
    reconnecting: "Reconnecting…",
    offline: "Offline: waiting for the network",
    saidLive: "Live.",
    saidLiveAgain: "Live again.",
    saidNotYet: "Not connected yet. Retrying…",
    saidLost: "Connection lost. Reconnecting…",
    online: "online",
    lastKnown: "(last known)",
    lastKnownTitle: "The count when the connection was lost; it is updated once reconnected.",
    loading: "Loading messages…",
    empty: "No messages yet. New ones appear here as they are published.",
    historyFailed: "Earlier messages could not be loaded; trying again shortly. New messages still appear here.",
    historyRetrying: "Loading earlier messages again…",
    retry: "Retry",
    older: "Show older messages",
    olderFailed: "Show older messages (failed: try again)",
    beginning: "The beginning of the feed.",
    enterKey: "Enter the publish key first.",
    writeFirst: "Write a message first.",
    invalidAuthor:
      "The name contains invisible, direction-changing or control characters: remove them or leave the name empty.",
    disguisedAuthor: (how) => `The name could pass for another one (${how}): write it in one script.`,
    keyRefused: "The publish key was refused.",
    apiAnswered: (status) => `The API answered ${status}.`,
    unreachable: "Could not reach the API. Try again once the feed is live.",
    sent: "Sent.",
    count: (n, max) => `${n} / ${max}`,
    codePoint: (hex) => `U+${hex}`,
    nameMixes: (scripts) => `mixes ${scripts.join(" and ")}`,
    nameLooksLatin: "Cyrillic that looks Latin",
    disguisedTitle: "This name could pass for another one: read it with care.",
    opens: (host) => `Opens ${host}`,
  };

  const PAGE = 100; // the API's largest page
  const KEEP = 500; // messages kept on screen before the oldest make way (still reachable)
  const KEY_STORAGE = "broadcast.functionKey";
  const SEEN_STORAGE = "broadcast.lastSeenId";
  const MAX_TEXT = 2000;
  // A visible page must be live again within seconds of the service coming back; a hidden one
  // retries rarely and catches up at once when shown. Jitter keeps thousands of pages from
  // retrying in step.
  const RETRY_CAP_VISIBLE_MS = 3000;
  const RETRY_CAP_HIDDEN_MS = 30000;
  const HISTORY_RETRY_CAP_MS = 30000;
  // The service pings an idle client every 15 s; the client gives up on a silent server after
  // this long (the SignalR client's serverTimeoutInMilliseconds, 30 s by default), and only then
  // does the page say "Reconnecting…". 20 s leaves 5 s for a late ping.
  const SERVER_TIMEOUT_MS = 20000;
  // Screen readers get one summary per burst: after a quiet moment, or at most this late.
  const ANNOUNCE_QUIET_MS = 1000;
  const ANNOUNCE_MAX_WAIT_MS = 3000;
  const SPOKEN_CHARS = 140;
  // A connection state is read out only once it has lasted this long (no flapping read out).
  const SETTLE_MS = { live: 1000, down: 3000 };
  // Messages added per animation frame (see `flush`): the first slice of a burst about fills a
  // phone's screen, the next ones go below it.
  const SLICE_FIRST = 10;
  const SLICE_MIN = 20;
  const SLICE_MAX = 100;
  const FRAME_BUDGET_MS = 120;
  const COLLAPSE_CHARS = 600;
  const COLLAPSE_LINES = 8;
  const SENT_VISIBLE_MS = 4000;
  const COPIED_VISIBLE_MS = 2000;
  // What a name may not contain, exactly as the API refuses it (functions/contract.py:
  // CONTROL_RANGES, BIDI_RANGES, INVISIBLE_RANGES, in that order): controls, bidi controls, and
  // Unicode's Default_Ignorable_Code_Point with the other format characters and blanks. Generated
  // from the Unicode Character Database by `python -m artifacts.unicode_sets --write`, as explicit
  // ranges so that every browser holds the same set whatever Unicode version it knows; a test
  // compares it with the contract and the property over every code point.
  // A text made only of these, white space and combining marks is empty (contract.py, `visible`).
  const INVISIBLE =
    /[\u0000-\u001f\u007f-\u009f\u061c\u200e-\u200f\u202a-\u202e\u2066-\u2069\u00ad\u034f\u115f-\u1160\u17b4-\u17b5\u180b-\u180f\u200b-\u200d\u2028-\u2029\u2060-\u2065\u206a-\u206f\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb\u{13430}-\u{13438}\u{1bca0}-\u{1bca3}\u{1d173}-\u{1d17a}\u{e0000}-\u{e0fff}]/gu;
  const hasInvisible = (value) => value.search(INVISIBLE) !== -1;
  // In a message's text, the characters that reorder what follows them (embeddings, overrides,
  // isolates and their ends) are shown as their code points: "invoice_\u202efdp.exe" must not
  // read "invoice_exe.pdf". Marks (U+200E, U+200F, U+061C) stay: they reorder no letters.
  const REORDERING = /[\u202a-\u202e\u2066-\u2069]/gu;

  // Names that could pass for others, by the rule of functions/names.py (UTS #39 mixed-script
  // detection at its "Highly Restrictive" level, and Chromium's Cyrillic letters that look Latin),
  // which the API applies to every new name; the page marks those stored before. The scripts are
  // those of scripts/unicode_scripts.js; the browser's own Unicode data says which a character is in.
  const SCRIPTS = `
    Adlam Ahom Anatolian_Hieroglyphs Arabic Armenian Avestan Balinese Bamum Bassa_Vah Batak Bengali
    Beria_Erfe Bhaiksuki Bopomofo Brahmi Braille Buginese Buhid Canadian_Aboriginal Carian
    Caucasian_Albanian Chakma Cham Cherokee Chorasmian Coptic Cuneiform Cypriot Cypro_Minoan
    Cyrillic Deseret Devanagari Dives_Akuru Dogra Duployan Egyptian_Hieroglyphs Elbasan Elymaic
    Ethiopic Garay Georgian Glagolitic Gothic Grantha Greek Gujarati Gunjala_Gondi Gurmukhi
    Gurung_Khema Han Hangul Hanifi_Rohingya Hanunoo Hatran Hebrew Hiragana Imperial_Aramaic
    Inscriptional_Pahlavi Inscriptional_Parthian Javanese Kaithi Kannada Katakana Kawi Kayah_Li
    Kharoshthi Khitan_Small_Script Khmer Khojki Khudawadi Kirat_Rai Lao Latin Lepcha Limbu Linear_A
    Linear_B Lisu Lycian Lydian Mahajani Makasar Malayalam Mandaic Manichaean Marchen Masaram_Gondi
    Medefaidrin Meetei_Mayek Mende_Kikakui Meroitic_Cursive Meroitic_Hieroglyphs Miao Modi Mongolian
    Mro Multani Myanmar Nabataean Nag_Mundari Nandinagari New_Tai_Lue Newa Nko Nushu
    Nyiakeng_Puachue_Hmong Ogham Ol_Chiki Ol_Onal Old_Hungarian Old_Italic Old_North_Arabian
    Old_Permic Old_Persian Old_Sogdian Old_South_Arabian Old_Turkic Old_Uyghur Oriya Osage Osmanya
    Pahawh_Hmong Palmyrene Pau_Cin_Hau Phags_Pa Phoenician Psalter_Pahlavi Rejang Runic Samaritan
    Saurashtra Sharada Shavian Siddham Sidetic SignWriting Sinhala Sogdian Sora_Sompeng Soyombo
    Sundanese Sunuwar Syloti_Nagri Syriac Tagalog Tagbanwa Tai_Le Tai_Tham Tai_Viet Tai_Yo Takri
    Tamil Tangsa Tangut Telugu Thaana Thai Tibetan Tifinagh Tirhuta Todhri Tolong_Siki Toto
    Tulu_Tigalari Ugaritic Vai Vithkuqi Wancho Warang_Citi Yezidi Yi Zanabazar_Square
  `.trim().split(/\s+/);
  const AUGMENT = { Han: ["Hanb", "Jpan", "Kore"], Hiragana: ["Jpan"], Katakana: ["Jpan"], Hangul: ["Kore"], Bopomofo: ["Hanb"] };
  const LATIN_ALIKE_CYRILLIC = "асԁеһіјӏорԛѕԝхуъьҽпгѵѡ";

  const $ = (id) => document.getElementById(id);
  const feed = $("feed");
  const baseTitle = document.title;
  const messages = new Map(); // id -> message
  const parts = new WeakMap(); // article -> { date, label, day, ago }: what the refreshes update
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
  let readerAway = false; // the top of the feed (the newest message) is scrolled out of view
  let current = null; // the article in the tab order (roving tabindex: one stop for the feed)

  // ---- rendering ---------------------------------------------------------------------------

  const dayFormat = new Intl.DateTimeFormat(TIME_LOCALES, { weekday: "long", month: "long", day: "numeric" });
  const yearFormat = new Intl.DateTimeFormat(TIME_LOCALES, { dateStyle: "long" });
  const exactFormat = new Intl.DateTimeFormat(TIME_LOCALES, { dateStyle: "medium", timeStyle: "medium" });
  const clockFormat = new Intl.DateTimeFormat(TIME_LOCALES, { timeStyle: "short" });
  const relative = new Intl.RelativeTimeFormat(TIME_LOCALES, { numeric: "auto", style: "long" });
  // The locale those formats chose: the language of the times on the page (a screen reader reads
  // "gestern" as German, in an English page).
  const TIME_LANG = relative.resolvedOptions().locale;
  const capitalized = (text) => text.charAt(0).toLocaleUpperCase(TIME_LANG) + text.slice(1);

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  const authorOf = (message) => message.author || T.anonymous;

  // "just now", "5 minutes ago", "3 hours ago"; older ones show the time of day, since the day
  // separator above them gives the date.
  function ago(date, now) {
    const seconds = (date - now) / 1000;
    if (seconds > -45) return relative.format(0, "second");
    const minutes = Math.round(seconds / 60);
    if (minutes > -60) return relative.format(minutes, "minute");
    const hours = Math.round(minutes / 60);
    if (hours > -24) return relative.format(hours, "hour");
    return clockFormat.format(date);
  }

  function dayLabel(date, now) {
    const midnight = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
    const days = Math.round((midnight(now) - midnight(date)) / 86400000);
    if (days === 0 || days === 1) return capitalized(relative.format(-days, "day"));
    return date.getFullYear() === now.getFullYear() ? dayFormat.format(date) : yearFormat.format(date);
  }

  // A name as it is, except that what would hide (zero-width characters, controls) or reorder it
  // (bidi controls) is shown as its code point: "adm\u200bin" must not pass for "admin".
  function nameNode(name) {
    const node = element("bdi", "who");
    let last = 0;
    for (const match of name.matchAll(INVISIBLE)) {
      node.append(name.slice(last, match.index), codePoint(match[0]));
      last = match.index + match[0].length;
    }
    node.append(name.slice(last));
    const how = disguise(name);
    if (how) {
      const mark = element("span", "disguised", how);
      mark.title = T.disguisedTitle;
      node.append(" ", mark);
    }
    return node;
  }

  let scriptTests = null; // built at the first character outside ASCII
  const scriptCache = new Map();

  // A character's Script_Extensions, as the rule counts them: Common and Inherited are none, and
  // Han, kana, Hangul and Bopomofo also count as the writing systems they belong to (UTS #39 5.1).
  function scriptsOf(character) {
    if (character < "\u0080") return /[A-Za-z]/.test(character) ? ["Latin"] : [];
    let scripts = scriptCache.get(character);
    if (scripts) return scripts;
    // A script this browser does not know (newer Unicode) is left out rather than breaking the page.
    scriptTests ??= SCRIPTS.flatMap((name) => {
      try {
        return [[name, new RegExp(`^\\p{scx=${name}}$`, "u")]];
      } catch {
        return [];
      }
    });
    scripts = scriptTests.filter(([, test]) => test.test(character)).map(([name]) => name);
    scripts = [...scripts, ...scripts.flatMap((name) => AUGMENT[name] || [])];
    scriptCache.set(character, scripts);
    return scripts;
  }

  // How a name could pass for another (the words of the mark), or null.
  function disguise(name) {
    const characters = [...name];
    const sets = characters.map(scriptsOf).filter((scripts) => scripts.length > 0);
    if (sets.length === 0) return null;
    const common = sets.reduce((shared, scripts) => shared.filter((s) => scripts.includes(s)));
    if (common.length > 0) {
      const letters = characters.filter((c) => scriptsOf(c).length > 0).map((c) => c.toLowerCase());
      const looksLatin = common.includes("Cyrillic") && letters.every((c) => LATIN_ALIKE_CYRILLIC.includes(c));
      return looksLatin ? T.nameLooksLatin : null;
    }
    for (const marker of ["Jpan", "Kore", "Hanb"]) {
      if (sets.every((scripts) => scripts.includes("Latin") || scripts.includes(marker))) return null;
    }
    const named = sets.map((scripts) => scripts.filter((s) => !["Hanb", "Jpan", "Kore"].includes(s)).sort()[0]);
    return T.nameMixes([...new Set(named)].sort());
  }

  // Text as text nodes, with the reordering characters shown as their code points.
  function shown(text) {
    const fragment = document.createDocumentFragment();
    let last = 0;
    for (const match of text.matchAll(REORDERING)) {
      fragment.append(text.slice(last, match.index), codePoint(match[0]));
      last = match.index + match[0].length;
    }
    fragment.append(text.slice(last));
    return fragment;
  }

  function codePoint(character) {
    const hex = character.codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
    return element("span", "code-point", T.codePoint(hex));
  }

  // Only http and https become links: `javascript:`, `data:` and the like stay plain text.
  function safeUrl(candidate) {
    try {
      const url = new URL(candidate);
      return url.protocol === "http:" || url.protocol === "https:" ? url : null;
    } catch {
      return null;
    }
  }

  // The address as written, ending where the sentence does: trailing punctuation, and closing
  // parentheses that have no opening one inside it ("(see https://x.y/Foo_(bar))").
  function trimAddress(raw) {
    let candidate = raw;
    for (;;) {
      const before = candidate;
      candidate = candidate.replace(/[.,;:!?'"]+$/, "");
      const opened = candidate.split("(").length;
      if (candidate.endsWith(")") && candidate.split(")").length > opened) candidate = candidate.slice(0, -1);
      if (candidate === before) return candidate;
    }
  }

  // What a link says: the address as written, unless its host is not what the browser will visit
  // (a non-ASCII host, "аpple.com" in Cyrillic, goes to its punycode "xn--pple-43d.com"; user
  // information before an "@" hides the real host): then the host the browser will visit.
  // The host stands apart from the rest (in bold, as browsers' address bars set it off): a label
  // such as "https://example.com/https://bank.com" shows that it leads to example.com.
  function linkLabel(candidate, url) {
    const [, scheme, authority, rest] = /^(https?:\/\/)([^/?#]*)(.*)$/is.exec(candidate);
    const host = authority.toLowerCase() === url.host ? authority : url.host;
    const label = document.createDocumentFragment();
    label.append(scheme, element("span", "host", host), shown(rest));
    return label;
  }

  // The text as text nodes, with http(s) URLs as links that cannot reach back into this page.
  function linkify(text) {
    const fragment = document.createDocumentFragment();
    let last = 0;
    for (const match of text.matchAll(/\bhttps?:\/\/[^\s<>"]+/gi)) {
      const candidate = trimAddress(match[0]);
      const url = safeUrl(candidate);
      if (!url) continue;
      fragment.append(shown(text.slice(last, match.index)));
      const link = element("a");
      link.append(linkLabel(candidate, url));
      link.title = T.opens(url.host);
      link.href = url.href;
      link.rel = "noopener noreferrer";
      link.target = "_blank";
      link.tabIndex = -1; // in the tab order only while its article is (see `makeCurrent`)
      fragment.append(link);
      last = match.index + candidate.length;
    }
    fragment.append(shown(text.slice(last)));
    return fragment;
  }

  // Long texts are collapsed behind "Show more". Length and line count pick the candidates
  // without measuring every message; `unfoldShort` then measures only those.
  function collapsible(card, text, message) {
    if (message.text.length <= COLLAPSE_CHARS && message.text.split("\n").length <= COLLAPSE_LINES) return;
    text.classList.add("collapsed");
    const more = element("button", "quiet more", T.showMore);
    more.type = "button";
    more.tabIndex = -1;
    more.setAttribute("aria-expanded", "false");
    more.setAttribute("aria-controls", text.id);
    card.append(more);
  }

  // A candidate that fits in the collapsed height anyway (a wide screen) needs no button. All
  // reads first, then all writes: one layout for the whole batch.
  function unfoldShort(articles) {
    const texts = articles.map((article) => article.querySelector(".text.collapsed")).filter(Boolean);
    const fits = texts.filter((text) => text.scrollHeight <= text.clientHeight);
    for (const text of fits) {
      text.classList.remove("collapsed");
      text.parentElement.querySelector(".more").remove();
    }
  }

  // One message as an article of the feed, reachable at #m<id>. Author and text are isolated
  // (<bdi>, dir="auto") so a right-to-left name cannot reorder the time beside it.
  function render(message, fresh, now) {
    const id = `m${message.id}`;
    const article = element("article", fresh ? "message fresh" : "message");
    article.id = id;
    article.dataset.id = String(message.id);
    article.tabIndex = -1;
    article.setAttribute("aria-labelledby", `${id}-who ${id}-when`);
    article.setAttribute("aria-describedby", `${id}-text`);
    const day = element("p", "day");
    day.lang = TIME_LANG;
    day.hidden = true;
    const card = element("div", "card");
    const head = element("p", "head");
    const who = nameNode(authorOf(message));
    who.id = `${id}-who`;
    const when = element("time");
    when.lang = TIME_LANG;
    when.id = `${id}-when`;
    when.dateTime = message.createdAt;
    const date = new Date(message.createdAt);
    when.title = exactFormat.format(date);
    when.append(element("span", "ago", ago(date, now)), element("span", "exact", when.title));
    const copy = element("button", "quiet copy", T.copyLink);
    copy.type = "button";
    copy.tabIndex = -1;
    head.append(who, " ", when, copy);
    const text = element("p", "text");
    text.id = `${id}-text`;
    text.dir = "auto";
    text.append(linkify(message.text));
    card.append(head, text);
    collapsible(card, text, message);
    article.append(day, card);
    parts.set(article, { date, label: dayLabel(date, now), day, ago: when.firstChild });
    return article;
  }

  // The day separator above `article`: shown when its day differs from the article above it.
  function placeDay(article) {
    if (!article) return;
    const { label, day } = parts.get(article);
    const above = article.previousElementSibling;
    setText(day, label);
    const hidden = above !== null && parts.get(above).label === label;
    if (day.hidden !== hidden) day.hidden = hidden;
  }

  // Positions in the feed (the ARIA feed pattern's aria-posinset/aria-setsize): writes only.
  function numberArticles() {
    const size = $("older").hidden ? String(feed.children.length) : "-1";
    let position = 0;
    for (const article of feed.children) {
      article.setAttribute("aria-posinset", String(++position));
      if (article.getAttribute("aria-setsize") !== size) article.setAttribute("aria-setsize", size);
    }
  }

  // Relative times and day labels age: every half minute, and when the page is shown again.
  function refreshTimes() {
    const now = new Date();
    for (const article of feed.children) {
      const entry = parts.get(article);
      entry.label = dayLabel(entry.date, now);
      setText(entry.ago, ago(entry.date, now));
    }
    for (const article of feed.children) placeDay(article);
  }

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

  // The article the reader is looking at (the first one whose bottom is below the top of the
  // window) and where it is: a binary search, reading a few positions after one layout.
  function readingPlace() {
    const articles = feed.children;
    let low = 0;
    let high = articles.length - 1;
    if (high < 0) return null;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (articles[middle].getBoundingClientRect().bottom > 0) high = middle;
      else low = middle + 1;
    }
    return { article: articles[low], top: articles[low].getBoundingClientRect().top };
  }

  // Keeps what the reader looks at where it was, in code: browsers without scroll anchoring
  // (Safari) would otherwise push it down by every message added above. Where the browser anchors
  // too, it has done so by the time the layout is read here, and the shift read is 0.
  // Scrolling moves by whole pixels while messages are fractions of one high: what a correction
  // could not apply is carried to the next one, so a long stream does not drift.
  let scrollResidue = 0;

  function keepPlace(place) {
    if (!place?.article.isConnected) return;
    const shift = place.article.getBoundingClientRect().top - place.top + scrollResidue;
    const before = window.scrollY;
    window.scrollBy(0, shift);
    scrollResidue = Math.max(-1, Math.min(1, shift - (window.scrollY - before)));
  }

  // The oldest make way once more than `limit` are shown, but never what the reader may be
  // looking at: while they are away from the newest, only articles far below the window go.
  function trim() {
    const excess = feed.children.length - limit;
    if (excess <= 0) return;
    const doomed = [];
    const far = 2 * window.innerHeight;
    for (let article = feed.lastElementChild; article && doomed.length < excess; ) {
      if (readerAway && article.getBoundingClientRect().top < far) break;
      doomed.push(article);
      article = article.previousElementSibling;
    }
    for (const article of doomed) {
      messages.delete(Number(article.dataset.id));
      if (article === current) current = null;
      article.remove();
    }
    if (doomed.length > 0) setHasOlder(true);
  }

  // Adds messages not seen before; keeps the feed newest first whatever order they arrive in.
  // `kind` is "history" (shown, not new to the reader), "new" (announced, highlighted, counted) or
  // "burst" (new, not highlighted).
  // Everything newer than all shown goes in with one insertion; older ones are placed in one walk
  // down the feed (both sorted, no per-message search). The layout is read once before (where the
  // reader is) and once after (to keep them there).
  function merge(batch, kind) {
    const fresh = batch
      .filter((m) => Number.isInteger(m.id) && !messages.has(m.id))
      .sort((a, b) => a.id - b.id);
    if (fresh.length === 0) return;
    // Where the reader is now, not where the observer last saw them: its callback runs after the
    // frame in which a scroll happened, and a message added in that frame would otherwise go in
    // above a reader taken to be at the top, uncounted. One read, on a layout that is clean here.
    readerAway = awayFromTop();
    const place = readerAway ? readingPlace() : null;
    const above = fresh.filter((m) => m.id > lastId).length; // they go in above everything shown
    const now = new Date();
    const added = [];
    const top = document.createDocumentFragment();
    const older = [];
    for (const message of fresh) {
      if (kind === "history" || message.id === caughtUp + 1) caughtUp = Math.max(caughtUp, message.id);
      messages.set(message.id, message);
      const article = render(message, kind === "new", now);
      if (kind === "history" || readerAway) drawn.observe(article);
      else article.classList.add("skippable");
      added.push(article);
      if (message.id > lastId) {
        top.prepend(article);
        lastId = message.id;
      } else {
        older.push(article);
      }
    }
    placeOlder(older);
    const formerTop = feed.firstElementChild;
    feed.insertBefore(top, formerTop);
    for (const article of added) placeDay(article);
    for (const article of added) placeDay(article.nextElementSibling);
    placeDay(formerTop);
    unfoldShort(added);
    keepPlace(place);
    trim();
    if (!current || !current.isConnected) makeCurrent(feed.firstElementChild, false);
    $("empty").hidden = true;
    $("loading").hidden = true;
    if (kind !== "history") noticeNew(fresh);
    else if (above > 0) noticeAbove(above);
    // Positions change for every article below the new ones, and the newest seen is stored
    // (synchronously): both once a burst is all in, not at every slice.
    if (incoming.length > 0) return;
    numberArticles();
    rememberSeen();
  }

  // Articles far from the window may be skipped (`.skippable`: content-visibility: auto in
  // styles.css). Skipped before it was ever drawn, an article has a guessed height, which becomes
  // real once it nears the window: harmless below the window, but above it (without scroll
  // anchoring, as in Safari) it would move what is read. So live messages that arrive while the
  // reader is at the newest are skippable at once (they go in at the top or just below what is in
  // view, and are drawn before the reader reaches them), while history and messages arriving above
  // a reader who scrolled away become skippable only once drawn, with the height they were drawn
  // at. ResizeObserver reports that height after the browser's own layout: nothing is measured
  // here.
  // An article in view is never made skippable: the browser decides whether a newly skippable
  // element is near the window only at the next frame, and skips its content until then, so a
  // card in view would vanish for a frame and come back, a layout shift (0.6 on a phone's first
  // load). The intersection observer hands over only those at least a window away.
  const drawn = new ResizeObserver((entries) => {
    for (const { target, contentBoxSize } of entries) {
      const height = contentBoxSize[0]?.blockSize;
      if (!height || !target.isConnected) continue; // not laid out (yet): reported again once it is
      target.style.setProperty("contain-intrinsic-block-size", `auto ${height}px`);
      drawn.unobserve(target);
      far.observe(target);
    }
  });
  const far = new IntersectionObserver(
    (entries) => {
      for (const { target, isIntersecting } of entries) {
        if (isIntersecting) continue; // near the window: observed until it is not
        far.unobserve(target);
        if (target.isConnected) target.classList.add("skippable");
      }
    },
    { rootMargin: "100% 0px" },
  );

  // Articles older than the newest shown, in ascending id order, each put above the first shown
  // article older than it: one walk down the feed, from the bottom of the batch up.
  function placeOlder(articles) {
    let below = feed.firstElementChild;
    for (let index = articles.length - 1; index >= 0; index--) {
      const article = articles[index];
      const id = Number(article.dataset.id);
      while (below && Number(below.dataset.id) > id) below = below.nextElementSibling;
      feed.insertBefore(article, below);
    }
  }

  // Live messages are added once per animation frame, a slice at a time, so that a burst never
  // freezes a slow phone (a hidden page gets no frames: a timer stands in). The newest slice goes
  // first: the top of the feed is final after one frame, and later slices go in below it, out of
  // view of a reader at the top, where `content-visibility: auto` skips their layout and paint.
  // A slice starts at SLICE_MIN and grows while frames stay under FRAME_BUDGET_MS, so that a fast
  // device needs fewer frames; it never shrinks below SLICE_MIN, which would only add frames.
  const incoming = [];
  let flushScheduled = false;
  let slice = SLICE_MIN;
  let previousFrame = 0; // when the previous slice's frame began, while a burst is being added

  function scheduleFlush() {
    if (flushScheduled) return;
    flushScheduled = true;
    if (document.hidden) setTimeout(() => flush(performance.now()), 100);
    else requestAnimationFrame(flush);
  }

  // Only a slice that brings a message newer than all shown is highlighted: hundreds of cards
  // fading at once cost every frame a repaint, and only the newest are in view.
  function flush(frameStart) {
    flushScheduled = false;
    if (previousFrame > 0) {
      const took = Math.max(1, frameStart - previousFrame);
      const fits = Math.min(2 * slice, Math.round((slice * FRAME_BUDGET_MS) / took));
      slice = Math.max(SLICE_MIN, Math.min(SLICE_MAX, fits));
    } else {
      slice = SLICE_FIRST;
    }
    incoming.sort((a, b) => a.id - b.id);
    const batch = incoming.splice(Math.max(0, incoming.length - slice));
    merge(batch, batch.some((message) => message.id > lastId) ? "new" : "burst");
    previousFrame = incoming.length > 0 ? frameStart : 0;
    if (incoming.length > 0) scheduleFlush();
  }

  // Every message up to `caughtUp` counts as received once it is queued (a catch-up need not ask
  // for it again), though it is shown only when its slice is added.
  function receive(message) {
    if (message.id === caughtUp + 1) caughtUp = message.id;
    incoming.push(message);
    if (document.hidden && !messages.has(message.id)) countUnread([message]);
    scheduleFlush();
  }

  // ---- the feed pattern's keyboard: one tab stop, Page Up/Down, Ctrl+Home/End ---------------

  function controlsOf(article) {
    return article.querySelectorAll("a, button");
  }

  // The one article in the tab order (and its links and buttons); the others are reached with
  // Page Up/Down, so Tab leaves the feed at once whatever its length.
  function makeCurrent(article, focus) {
    if (!article) return;
    if (current !== article) {
      if (current) {
        current.tabIndex = -1;
        for (const control of controlsOf(current)) control.tabIndex = -1;
      }
      current = article;
      article.tabIndex = 0;
      for (const control of controlsOf(article)) control.tabIndex = 0;
    }
    if (focus) article.focus();
  }

  // The nearest element that takes focus before (or after) the feed, in document order.
  function focusableBeside(after) {
    const focusables = [
      ...document.querySelectorAll("a[href], button:not([disabled]), input, textarea, [tabindex='0']"),
    ].filter((node) => !feed.contains(node) && node.getClientRects().length > 0);
    const beside = (node) => feed.compareDocumentPosition(node) & Node.DOCUMENT_POSITION_FOLLOWING;
    return after ? focusables.find(beside) : focusables.filter((node) => !beside(node)).pop();
  }

  function onFeedKey(event) {
    const article = event.target.closest?.("article");
    if (!article) return;
    let target = null;
    if (event.key === "PageDown") target = article.nextElementSibling;
    else if (event.key === "PageUp") target = article.previousElementSibling;
    else if (event.ctrlKey && (event.key === "End" || event.key === "Home")) {
      target = focusableBeside(event.key === "End");
      if (target) {
        event.preventDefault();
        target.focus();
      }
      return;
    } else return;
    if (target) {
      event.preventDefault();
      makeCurrent(target, true);
    }
  }

  function onFeedClick(event) {
    const button = event.target.closest("button");
    const article = event.target.closest("article");
    if (!button || !article) return;
    if (button.classList.contains("copy")) copyLink(article);
    else if (button.classList.contains("more")) {
      const text = article.querySelector(".text");
      const collapsed = text.classList.toggle("collapsed");
      button.textContent = collapsed ? T.showMore : T.showLess;
      button.setAttribute("aria-expanded", String(!collapsed));
    }
  }

  // ---- links to a message -------------------------------------------------------------------

  let copiedTimer = 0;

  async function copyLink(article) {
    const url = new URL(`#${article.id}`, location.href).href;
    const button = article.querySelector(".copy");
    let said = T.linkCopied;
    try {
      await navigator.clipboard.writeText(url);
    } catch {
      history.replaceState(null, "", `#${article.id}`);
      said = T.linkInAddressBar;
    }
    speak($("copy-status"), said);
    button.textContent = said === T.linkCopied ? said : T.copyLink;
    clearTimeout(copiedTimer);
    copiedTimer = setTimeout(() => (button.textContent = T.copyLink), COPIED_VISIBLE_MS);
  }

  const linkedId = () => Number(/^#m(\d+)$/.exec(location.hash)?.[1] || 0);

  // Opens #m<id>: older pages are read until the message is there, then it is shown and marked.
  async function showLinked() {
    const id = linkedId();
    if (!id || !loaded) return;
    while (!$(`m${id}`) && !$("older").hidden && Number(feed.lastElementChild?.dataset.id) > id) {
      if (!(await loadOlder())) return;
    }
    const article = $(`m${id}`);
    if (!article) {
      showNotice(T.linkGone);
      return;
    }
    $("notice").hidden = true;
    for (const marked of feed.querySelectorAll(".linked")) marked.classList.remove("linked");
    article.classList.add("linked");
    makeCurrent(article, false);
    article.scrollIntoView({ block: "center" });
    article.focus({ preventScroll: true });
  }

  // A notice over the feed (fixed, like the pill: it moves nothing) until dismissed or another
  // link is followed; a screen reader hears it through the status region.
  function showNotice(text) {
    $("notice-text").textContent = text;
    $("notice").hidden = false;
    speak($("copy-status"), text);
  }

  // ---- "new since your last visit" ---------------------------------------------------------

  const storage = (action) => {
    try {
      return action(localStorage);
    } catch {
      return null; // storage refused (a private window, a policy): no line, nothing lost
    }
  };
  const seenBefore = Number(storage((store) => store.getItem(SEEN_STORAGE))) || 0;

  // The newest message the reader has had in view: not while the page is hidden, nor while they
  // are scrolled away from the newest (what arrived meanwhile is above them, unseen).
  function rememberSeen() {
    if (!document.hidden && !readerAway && lastId > 0) {
      storage((store) => store.setItem(SEEN_STORAGE, String(lastId)));
    }
  }

  // A line under the oldest message published since this device last showed the feed: above the
  // newest one seen then, or under the oldest shown when all shown are new (more arrived than a
  // page holds; it moves down as older pages are read).
  function markSince() {
    if (!seenBefore) return;
    const articles = [...feed.children];
    const seen = articles.find((article) => Number(article.dataset.id) <= seenBefore);
    const oldestNew = seen ? seen.previousElementSibling : articles[articles.length - 1];
    const line = feed.querySelector(".since");
    if (!oldestNew || line?.parentElement === oldestNew) return;
    line?.remove();
    oldestNew.append(element("p", "since", T.newSince));
  }

  // ---- what is new: announcements, the "new messages" pill, the title ---------------------

  let pending = [];
  let firstPendingAt = 0;
  let announceTimer = 0;
  const unread = new Set(); // ids of new messages the reader has not been shown: the title's count
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
    if (batch.length === 1) return T.newOne(authorOf(newest), clip(newest.text));
    const authors = [...new Set(batch.map(authorOf).reverse())];
    const from =
      authors.length === 1
        ? authors[0]
        : authors.length === 2
          ? T.twoAuthors(authors[0], authors[1])
          : T.moreAuthors(authors[0], authors.length - 1);
    return T.newMany(batch.length, from);
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

  // The title counts what a hidden page has not shown, on arrival rather than when drawn: a hidden
  // page gets no animation frames, so a message waiting for one would go uncounted until shown.
  function countUnread(batch) {
    for (const message of batch) unread.add(message.id);
    if (unread.size > 0) document.title = `(${unread.size}) ${baseTitle}`;
  }

  function showPill() {
    const pill = $("new-pill");
    pill.hidden = unseen === 0;
    setText(pill, T.newCount(unseen));
  }

  function noticeNew(batch) {
    announce(batch);
    if (document.hidden) countUnread(batch);
    if (readerAway) {
      unseen += batch.length;
      showPill();
    }
  }

  // History that goes in above a reader who scrolled away (a catch-up that read what was also on
  // its way live) is not announced, but it is above them, unseen: the pill counts it.
  function noticeAbove(count) {
    if (!readerAway) return;
    unseen += count;
    showPill();
  }

  // Whether the top of the feed (the newest message) is scrolled out of view, above the window.
  function awayFromTop() {
    return $("feed-top").getBoundingClientRect().top < 0;
  }

  // The reader coming back to the newest message, seen by an observer of the feed's top edge:
  // the pill goes and what was kept for them may be trimmed. (Leaving is read at each insertion,
  // in `merge`.)
  function watchReader() {
    new IntersectionObserver(([entry]) => {
      readerAway = !entry.isIntersecting && entry.boundingClientRect.top < 0;
      if (readerAway) return;
      if (unseen > 0) {
        unseen = 0;
        showPill();
      }
      trim(); // what was kept while the reader was away may go now
      rememberSeen(); // what arrived while they were away is in view now
    }).observe($("feed-top"));
  }

  function setupNewMessageCues() {
    $("new-pill").addEventListener("click", () => {
      unseen = 0;
      showPill();
      window.scrollTo({ top: 0, behavior: reducedMotion.matches ? "auto" : "smooth" });
      makeCurrent(feed.firstElementChild, false);
      feed.firstElementChild?.focus({ preventScroll: true });
    });
    watchReader();
    // The header wraps on narrow screens; the pill sits just under it.
    new ResizeObserver(() => {
      document.body.style.setProperty("--bar-height", `${document.querySelector(".bar").offsetHeight}px`);
    }).observe(document.querySelector(".bar"));
    feed.addEventListener("keydown", onFeedKey);
    feed.addEventListener("click", onFeedClick);
    feed.addEventListener("focusin", (event) => {
      const article = event.target.closest?.("article");
      if (article) makeCurrent(article, false);
    });
    setInterval(refreshTimes, 30000);
  }

  // ---- history ------------------------------------------------------------------------------

  async function getMessages(query) {
    const response = await fetch(`${config.apiBaseUrl}/messages${query}`, {
      headers: { Accept: "application/json" },
    });
    if (!response.ok) throw new Error(`history answered ${response.status}`);
    return (await response.json()).messages;
  }

  // The route forms the query forms redirect to (README, the API), called directly: one round trip
  // fewer. "latest" is the largest id, as `/messages/page?before=latest` means it.
  const LATEST = "9223372036854775807";
  const page = (before) => getMessages(`/before/${before === "latest" ? LATEST : before}/take/${PAGE}`);

  let historyAttempt = 0;
  let historyTimer = 0;

  // A failed first page is tried again on its own, with growing jittered pauses (and at once
  // with "Retry"), whatever the connection does: live messages keep arriving meanwhile.
  function historyFailed() {
    $("load-error-text").textContent = T.historyFailed;
    $("load-error").hidden = false;
    clearTimeout(historyTimer);
    const delay = Math.min(HISTORY_RETRY_CAP_MS, 1000 * 2 ** historyAttempt++);
    historyTimer = setTimeout(retryHistory, delay / 2 + (Math.random() * delay) / 2);
  }

  function retryHistory() {
    clearTimeout(historyTimer);
    if (loaded) return;
    $("load-error-text").textContent = T.historyRetrying;
    loadNewest().catch((error) => console.warn("history failed:", error));
  }

  async function loadNewestOnce() {
    setBusy(true);
    try {
      const newest = await page("latest");
      merge(newest, "history");
      loaded = true;
      clearTimeout(historyTimer);
      setHasOlder(newest.length === PAGE);
      numberArticles();
      $("empty").hidden = feed.children.length > 0; // a message may have arrived live meanwhile
      $("load-error").hidden = true;
      markSince();
      showLinked();
    } catch (error) {
      historyFailed();
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
        const batch = await getMessages(`/after/${caughtUp}/take/${PAGE}`);
        merge(batch, kind);
        caughtUp = Math.max(caughtUp, ...batch.map((m) => m.id));
        if (batch.length < PAGE) return;
      }
    } finally {
      setBusy(false);
    }
  }

  // The page before the oldest shown; true once it is shown.
  async function loadOlder() {
    const button = $("older");
    const oldest = Number(feed.lastElementChild?.dataset.id);
    button.disabled = true;
    setBusy(true);
    try {
      const older = await page(oldest);
      limit = Math.max(limit, messages.size + older.length); // what the reader asked for stays
      merge(older, "history");
      button.textContent = T.older;
      setHasOlder(older.length === PAGE);
      numberArticles();
      markSince();
      return true;
    } catch (error) {
      console.warn("older messages failed:", error);
      button.textContent = T.olderFailed;
      return false;
    } finally {
      button.disabled = false;
      setBusy(false);
    }
  }

  // ---- connection -----------------------------------------------------------------------------

  const STATES = { connecting: T.connecting, live: T.live, reconnecting: T.reconnecting, offline: T.offline };
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
    $("status").title = STATES[state]; // the whole text where a narrow header cuts it
    document.body.dataset.connection = state;
    $("reconnect").hidden = !waiting;
    const group = state === "live" ? "live" : "down";
    if (group === settling) return; // the same state again: let it settle
    settling = group;
    clearTimeout(settleTimer);
    settleTimer = setTimeout(() => {
      if (group === spoken) return;
      let text = T.saidNotYet;
      if (group === "live") text = spoken === "down" ? T.saidLiveAgain : T.saidLive;
      else if (everLive) text = T.saidLost;
      spoken = group;
      speak($("status-announce"), text);
    }, SETTLE_MS[group]);
  }

  // The count the hub last sent; while disconnected it stays, marked as the last known one.
  function setPresence(online) {
    const presence = $("presence");
    const stale = online === null;
    presence.dataset.stale = String(stale);
    $("presence-stale").hidden = !stale;
    presence.title = stale ? T.lastKnownTitle : "";
    if (stale) return;
    presence.hidden = false;
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

  // What a page that is not live says while it tries: the browser's word on the network first.
  function downState() {
    if (!navigator.onLine) return "offline";
    return everLive ? "reconnecting" : "connecting";
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
      setStatus(downState(), attempt > 0);
      try {
        await connection.start();
        retrying = false;
        hurry = false;
        await onLive();
        return;
      } catch (error) {
        if (!warned) console.warn("not connected, retrying:", error?.message || error);
        warned = true;
        setStatus(downState(), true);
        if (hurry) hurry = false;
        else await pause(retryDelay(attempt));
      }
    }
  }

  // The browser knows the network is gone: say so at once rather than when the silent socket times
  // out (SERVER_TIMEOUT_MS), and start over, so that the next attempt is the one `online` hurries.
  // A connection that needs no network (the local mode on loopback) is live again at once.
  function wentOffline() {
    setStatus("offline", true);
    if (connection.state === signalR.HubConnectionState.Connected) {
      connection.stop().catch(() => {}); // its onclose starts keepConnected
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
      .withServerTimeout(SERVER_TIMEOUT_MS)
      .configureLogging(quietLogger)
      .build();
    connection.on("newMessage", receive);
    connection.on("presence", (presence) => setPresence(presence.online));
    connection.onclose(() => {
      setPresence(null);
      keepConnected();
    });
    $("reconnect").addEventListener("click", retryNow);
    window.addEventListener("online", retryNow);
    window.addEventListener("offline", wentOffline);
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) {
        // Arrived while shown, still waiting for a frame that will not come while hidden.
        countUnread(incoming.filter((m) => !messages.has(m.id)));
        return;
      }
      unread.clear();
      document.title = baseTitle;
      refreshTimes();
      rememberSeen();
      retryNow();
    });
    return keepConnected();
  }

  // ---- publisher ----------------------------------------------------------------------------

  const FIELD_OF_ERROR = { invalid_text: "text", text_too_long: "text", invalid_author: "author" };
  const NEXT_FIELD = { "publish-key": "author", author: "text" };
  let sentTimer = 0;

  function openPublisher(open, focus) {
    $("publisher").hidden = !open;
    $("publish-toggle").setAttribute("aria-expanded", String(open));
    if (open !== (location.hash === "#publish")) {
      history.replaceState(null, "", open ? "#publish" : location.pathname + location.search);
    }
    if (open && focus) $($("publish-key").value ? "text" : "publish-key").focus();
  }

  // `field`: the input the message is about; typing there again clears it.
  function report(kind, message, field = null, stale = false) {
    const result = $("publish-result");
    clearTimeout(sentTimer);
    result.dataset.kind = kind;
    result.dataset.stale = String(stale);
    result.dataset.field = field || "";
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
    counter.textContent = T.count(count, MAX_TEXT);
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

  // What the API would refuse, refused here first with the same rules (see INVISIBLE).
  function problem(key, author, text) {
    if (!key.trim()) return [T.enterKey, "publish-key"];
    if (hasInvisible(author) || /^\p{M}/u.test(author)) return [T.invalidAuthor, "author"];
    const how = disguise(author);
    if (how) return [T.disguisedAuthor(how), "author"];
    if (!/[^\p{M}\s]/u.test(text.replace(INVISIBLE, ""))) return [T.writeFirst, "text"];
    return null;
  }

  async function send() {
    const key = $("publish-key");
    const text = $("text").value;
    const author = $("author").value.trim();
    const refused = problem(key.value, author, text);
    if (refused) return report("error", refused[0], refused[1]);
    sessionStorage.setItem(KEY_STORAGE, key.value);
    const body = JSON.stringify({ text, author: author || null });
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
        report("ok", T.sent);
      } else if (response.status === 401) {
        report("error", T.keyRefused, "publish-key");
      } else {
        const answer = await response.json().catch(() => null);
        const message = answer?.error?.message || T.apiAnswered(response.status);
        report("error", message, FIELD_OF_ERROR[answer?.error?.code] || null);
      }
    } catch {
      report("error", T.unreachable, null, true);
    } finally {
      $("send").disabled = false;
    }
  }

  // Enter sends from the message box (Shift+Enter: a new line; Ctrl+Enter anywhere), moves on
  // from the key and the name, and Escape closes the panel, back on "Publish".
  function onPublisherKey(event) {
    const form = $("publish-form");
    if (event.key === "Escape") {
      event.preventDefault();
      openPublisher(false);
      $("publish-toggle").focus();
    } else if (event.key !== "Enter" || event.isComposing) {
      return;
    } else if (event.ctrlKey || event.metaKey || (event.target.id === "text" && !event.shiftKey)) {
      event.preventDefault();
      form.requestSubmit();
    } else if (NEXT_FIELD[event.target.id]) {
      event.preventDefault();
      $(NEXT_FIELD[event.target.id]).focus();
    }
  }

  function setupPublisher() {
    const form = $("publish-form");
    $("publish-key").value = sessionStorage.getItem(KEY_STORAGE) || "";
    $("publish-toggle").addEventListener("click", () => openPublisher($("publisher").hidden, true));
    window.addEventListener("hashchange", () => {
      if (location.hash === "#publish") openPublisher(true, true);
      else showLinked();
    });
    if (location.hash === "#publish") openPublisher(true, false);
    form.addEventListener("input", (event) => {
      event.target.removeAttribute("aria-invalid");
      const result = $("publish-result");
      if (result.dataset.field === event.target.id) report("", "");
      if (event.target.id === "text") countCharacters();
    });
    $("publisher").addEventListener("keydown", onPublisherKey);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      send();
    });
  }

  // ---- start ----------------------------------------------------------------------------------

  function applyTexts() {
    for (const node of document.querySelectorAll("[data-text]")) node.textContent = T[node.dataset.text];
  }

  async function main() {
    applyTexts();
    setStatus("connecting");
    setupPublisher();
    setupNewMessageCues();
    $("older").addEventListener("click", () => loadOlder());
    $("notice-dismiss").addEventListener("click", () => ($("notice").hidden = true));
    $("load-retry").addEventListener("click", () => {
      historyAttempt = 0;
      retryHistory();
    });
    window.addEventListener("pagehide", rememberSeen);
    const response = await fetch("config.json", { cache: "no-cache" });
    config = await response.json();
    config.apiBaseUrl = config.apiBaseUrl.replace(/\/$/, "");
    // The first screen and the connection at once; the first live moment waits for the screen.
    loadNewest().catch((error) => console.warn("history failed:", error));
    await connect();
  }

  main();
})();
