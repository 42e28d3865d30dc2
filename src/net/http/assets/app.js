// The mailctl web inbox: a list of messages that grows live (server-sent
// events), a message view and the session log. Message content is only ever
// put into the page as text, or into a sandboxed frame.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { messages: [], selected: -1, open: null, mailbox: "", subject: "" };

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props || {});
  for (const c of children) node.append(c);
  return node;
}

function size(n) {
  if (n < 1024) return n + " B";
  if (n < 1024 * 1024) return (n / 1024).toFixed(1) + " KB";
  return (n / 1024 / 1024).toFixed(1) + " MB";
}

function when(iso) {
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString();
}

async function api(path, options) {
  const r = await fetch(path, options);
  if (!r.ok) throw new Error(path + ": " + r.status);
  return r.json();
}

function query() {
  const q = new URLSearchParams({ limit: "500" });
  if (state.mailbox) q.set("mailbox", state.mailbox);
  if (state.subject) q.set("subject", state.subject);
  return q;
}

function matches(m) {
  return (!state.mailbox || m.mailbox === state.mailbox) &&
    (!state.subject || (m.subject || "").toLowerCase().includes(state.subject.toLowerCase()));
}

function row(m, fresh) {
  const li = el("li", { role: "option", className: fresh ? "new" : "" },
    el("span", { className: "subject" },
      ...(m.attachments ? [el("span", { className: "badge", textContent: m.attachments + " att." })] : []),
      m.subject || "(no subject)"),
    el("span", { className: "when", textContent: when(m.received) }),
    el("span", { className: "who", textContent: (m.from || "") + " → " + (m.to || m.mailbox) }),
    el("span", { className: "when", textContent: size(m.size) }));
  li.dataset.id = m.id;
  li.title = m.attachments ? m.attachments + " attachment(s)" : "";
  li.addEventListener("click", () => select(state.messages.findIndex((x) => x.id === m.id), true));
  return li;
}

function render() {
  const list = $("list");
  list.replaceChildren(...state.messages.map((m) => row(m, false)));
  $("count").textContent = state.messages.length + " message(s)";
  highlight();
}

function highlight() {
  [...$("list").children].forEach((li, i) => {
    li.classList.toggle("selected", i === state.selected);
    li.setAttribute("aria-selected", i === state.selected);
    if (i === state.selected) li.scrollIntoView({ block: "nearest" });
  });
}

async function load() {
  const data = await api("/api/messages?" + query());
  state.messages = data.messages;
  state.selected = Math.min(state.selected, state.messages.length - 1);
  render();
}

async function loadMailboxes() {
  const { mailboxes } = await api("/api/mailboxes");
  const select = $("mailbox");
  select.replaceChildren(el("option", { value: "", textContent: "All mailboxes" }),
    ...mailboxes.map((b) => el("option", { value: b, textContent: b })));
  select.value = state.mailbox;
  select.hidden = mailboxes.length < 2;
}

function select(i, show) {
  if (i < 0 || i >= state.messages.length) return;
  state.selected = i;
  highlight();
  if (show) openMessage(state.messages[i]);
}

function headerRows(m) {
  const h = m.headers || {};
  const rows = [["From", h.from], ["To", h.to], ["Cc", h.cc], ["Date", h.date], ["Subject", h.subject],
    ["Mailbox", m.mailbox], ["Received", when(m.received)], ["Size", size(m.size)]];
  return rows.filter(([, v]) => v).map(([k, v]) =>
    el("tr", {}, el("th", { textContent: k }), el("td", { textContent: v })));
}

function attachmentList(m) {
  const base = "/api/messages/" + encodeURIComponent(m.id) + "/parts/";
  const items = (m.parts || []).filter((p) => ["attachment", "inline", "message"].includes(p.role)).map((p) => {
    const name = p.original_name || "part " + p.part;
    const link = el("a", { href: base + p.part + "?download=1", textContent: name, download: name });
    const li = el("li", {}, link, el("div", { className: "muted", textContent: p.content_type + ", " + size(p.size) }));
    if (p.content_type.startsWith("image/")) li.append(el("img", { src: base + p.part, alt: name }));
    return li;
  });
  return items.length ? [el("strong", { textContent: "Attachments" }), el("ul", {}, ...items)] : [];
}

async function openMessage(summary) {
  const m = await api("/api/messages/" + encodeURIComponent(summary.id));
  state.open = m;
  $("view-pane").hidden = false;
  document.body.classList.add("viewing");
  $("headers").replaceChildren(...headerRows(m));
  $("attachments").replaceChildren(...attachmentList(m));
  const frame = $("html");
  frame.hidden = !m.html;
  frame.src = m.html ? "/api/messages/" + encodeURIComponent(m.id) + "/html" : "about:blank";
  $("text").textContent = m.text || (m.html ? "" : "(no text body)");
  $("text").hidden = !m.text && !!m.html;
  $("download-raw").href = "/api/messages/" + encodeURIComponent(m.id) + "/raw";
  $("download-raw").download = m.id + ".eml";
  showSource(false);
}

async function showSource(on) {
  $("source").hidden = !on;
  $("message").hidden = on;
  $("show-source").setAttribute("aria-pressed", on);
  $("show-message").setAttribute("aria-pressed", !on);
  if (on && state.open) {
    const r = await fetch("/api/messages/" + encodeURIComponent(state.open.id) + "/raw");
    $("source").textContent = await r.text();
  }
}

function closeMessage() {
  document.body.classList.remove("viewing");
  $("list").focus();
}

async function remove(all) {
  if (all) {
    if (!confirm("Delete " + state.messages.length + " message(s)?")) return;
    await fetch("/api/messages?" + query(), { method: "DELETE" });
  } else if (state.open) {
    await fetch("/api/messages/" + encodeURIComponent(state.open.id), { method: "DELETE" });
  }
  state.open = null;
  $("view-pane").hidden = true;
  closeMessage();
  await load();
}

function appendLog(line) {
  const log = $("log");
  log.append(line + "\n");
  while (log.childNodes.length > 1000) log.firstChild.remove();
  const pane = $("log-pane");
  pane.scrollTop = pane.scrollHeight;
}

function listen() {
  const events = new EventSource("/api/events");
  // A stream the server ended (it fell behind, or a restart) reconnects
  // by itself; the list is reloaded for what was missed meanwhile.
  let opened = false;
  events.addEventListener("open", () => {
    if (opened) load();
    opened = true;
  });
  events.addEventListener("message", (e) => {
    const m = JSON.parse(e.data);
    if (!state.mailbox && $("mailbox").querySelector('option[value="' + CSS.escape(m.mailbox) + '"]') === null) {
      loadMailboxes();
    }
    if (!matches(m) || state.messages.some((x) => x.id === m.id)) return;
    state.messages.unshift(m);
    if (state.selected >= 0) state.selected += 1;
    $("list").prepend(row(m, true));
    $("count").textContent = state.messages.length + " message(s)";
  });
  events.addEventListener("log", (e) => appendLog(e.data));
}

function keys(e) {
  if (e.target.matches("input, select, textarea") || e.ctrlKey || e.metaKey || e.altKey) return;
  const k = e.key;
  if (k === "j" || k === "ArrowDown") select(Math.max(state.selected + 1, 0), true);
  else if (k === "k" || k === "ArrowUp") select(Math.max(state.selected - 1, 0), true);
  else if (k === "Enter") select(state.selected, true);
  else if (k === "Escape") closeMessage();
  else if (k === "d" || k === "Delete") remove(false);
  else if (k === "s") showSource($("source").hidden);
  else if (k === "l") $("toggle-log").click();
  else if (k === "/") $("search").focus();
  else return;
  e.preventDefault();
}

function init() {
  $("mailbox").addEventListener("change", (e) => { state.mailbox = e.target.value; load(); });
  let timer;
  $("search").addEventListener("input", (e) => {
    clearTimeout(timer);
    timer = setTimeout(() => { state.subject = e.target.value; load(); }, 200);
  });
  $("delete-all").addEventListener("click", () => remove(true));
  $("delete-one").addEventListener("click", () => remove(false));
  $("back").addEventListener("click", closeMessage);
  $("show-message").addEventListener("click", () => showSource(false));
  $("show-source").addEventListener("click", () => showSource(true));
  $("toggle-log").addEventListener("click", (e) => {
    const hidden = document.body.classList.toggle("no-log");
    e.target.setAttribute("aria-pressed", !hidden);
  });
  document.addEventListener("keydown", keys);
  listen();
  loadMailboxes();
  load();
}

init();
