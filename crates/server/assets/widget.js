/*
 * agentbase chat widget. Vanilla JS, no build step, no framework, no requests to
 * anything but the agentbase server this script was loaded from.
 *
 *   <script src="https://HOST/widget.js" data-agent-id="AGENT_ID" defer></script>
 *
 * Chatbase's embed forms work too: `chatbotId="AGENT_ID"` on the script tag, or
 * `window.embeddedChatbotConfig = { chatbotId: "AGENT_ID" }` before it.
 *
 * Endpoints (no API key): GET  /widget/v1/agents/{id}/config
 *                         POST /widget/v1/agents/{id}/chat  (UI Message Stream v1)
 *                         POST /widget/v1/agents/{id}/leads (the lead form's answers)
 *                         POST /widget/v1/agents/{id}/handoff (ask for a person)
 *                         GET  /widget/v1/agents/{id}/live (long poll: people's replies)
 * The conversation id and the transcript are kept in localStorage per agent, so a
 * reload shows the conversation and continues it.
 *
 * Identity verification, as Chatbase's: `window.chatbaseUserConfig = {user_id,
 * user_hash, user_metadata}` before the script, or `window.chatbase("identify",
 * {user_id, user_hash, user_metadata})` at any time (calls queued by Chatbase's
 * snippet before the script loaded count too). `user_hash` is the hex HMAC-SHA256
 * of `user_id` under the agent's secret, computed by the page's server. Each chat
 * message carries them; a wrong hash leaves the visitor anonymous.
 */
(function () {
  "use strict";

  if (window.__agentbaseWidget) return;

  var SCRIPT_NAMES = /\/(widget\.js|embed\.min\.js)(\?|#|$)/;

  function findScript() {
    var current = document.currentScript;
    if (current && current.src && SCRIPT_NAMES.test(current.src)) return current;
    var all = document.getElementsByTagName("script");
    for (var i = all.length - 1; i >= 0; i--) {
      if (all[i].src && SCRIPT_NAMES.test(all[i].src)) return all[i];
    }
    return null;
  }

  var script = findScript();
  var config = window.embeddedChatbotConfig || {};
  var agentId =
    (script &&
      (script.getAttribute("data-agent-id") ||
        script.getAttribute("chatbotid") ||
        script.getAttribute("data-chatbot-id"))) ||
    config.chatbotId ||
    config.agentId ||
    // Chatbase's newer snippet puts the id in the tag's `id`.
    (script && /embed\.min\.js/.test(script.src) && script.id) ||
    "";
  if (!script || !agentId) {
    // Nothing to render; say why once, as information rather than an error.
    if (window.console && console.info) {
      console.info("agentbase widget: no agent id (data-agent-id or chatbotId) on the script tag");
    }
    return;
  }
  window.__agentbaseWidget = true;

  var base = new URL(script.src, document.baseURI).origin;
  var api = base + "/widget/v1/agents/" + encodeURIComponent(agentId);

  // ---- storage (localStorage when allowed, memory otherwise) ---------------------

  var memory = {};
  function load(key) {
    try {
      var v = window.localStorage.getItem(key);
      return v === null ? null : JSON.parse(v);
    } catch (e) {
      return Object.prototype.hasOwnProperty.call(memory, key) ? memory[key] : null;
    }
  }
  function save(key, value) {
    memory[key] = value;
    try {
      window.localStorage.setItem(key, JSON.stringify(value));
    } catch (e) {
      /* storage full or disabled: memory keeps this page's state */
    }
  }

  function randomId() {
    var alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    var bytes = new Uint8Array(22);
    (window.crypto || window.msCrypto).getRandomValues(bytes);
    var out = "v_";
    for (var i = 0; i < bytes.length; i++) out += alphabet[bytes[i] % alphabet.length];
    return out;
  }

  var VISITOR_KEY = "agentbase-widget:visitor";
  var STATE_KEY = "agentbase-widget:" + agentId;
  var visitorId = load(VISITOR_KEY);
  if (typeof visitorId !== "string" || !/^[A-Za-z0-9_-]{8,64}$/.test(visitorId)) {
    visitorId = randomId();
    save(VISITOR_KEY, visitorId);
  }
  var state = load(STATE_KEY);
  if (!state || typeof state !== "object" || !Array.isArray(state.transcript)) {
    state = { conversationId: null, transcript: [] };
  }
  function persist() {
    save(STATE_KEY, state);
  }

  // ---- identity verification -------------------------------------------------------

  var identity = null;
  function identify(props) {
    if (!props || typeof props !== "object") return;
    if (typeof props.user_id !== "string" || typeof props.user_hash !== "string") {
      identity = null;
      return;
    }
    var metadata = props.user_metadata;
    identity = {
      userId: props.user_id,
      userHash: props.user_hash,
      userMetadata: metadata && typeof metadata === "object" && !Array.isArray(metadata) ? metadata : undefined,
    };
  }
  identify(window.chatbaseUserConfig);
  var queued = window.chatbase && Array.isArray(window.chatbase.q) ? window.chatbase.q : [];
  function command(name, props) {
    if (name === "identify") identify(props);
  }
  for (var qi = 0; qi < queued.length; qi++) {
    var queuedCall = queued[qi];
    if (queuedCall && queuedCall.length) command(queuedCall[0], queuedCall[1]);
  }
  window.chatbase = command;
  // The verified user on a request about a conversation (handoff): whose it is.
  function withUser(body) {
    if (identity) {
      body.userId = identity.userId;
      body.userHash = identity.userHash;
    }
    return body;
  }
  // The identity on a request body: a verified visitor's conversations are theirs.
  function withIdentity(body) {
    withUser(body);
    if (identity && identity.userMetadata) body.userMetadata = identity.userMetadata;
    return body;
  }

  // ---- DOM -------------------------------------------------------------------------

  var CSS =
    ":host{all:initial}" +
    "*{box-sizing:border-box;font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}" +
    ".bubble{position:fixed;right:20px;bottom:20px;width:56px;height:56px;border-radius:50%;border:0;" +
    "background:#1f2937;color:#fff;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);display:flex;" +
    "align-items:center;justify-content:center;z-index:2147483000;padding:0}" +
    ".bubble svg{width:26px;height:26px;fill:currentColor}" +
    "button:focus-visible,textarea:focus-visible,a:focus-visible{outline:3px solid #2563eb;outline-offset:2px}" +
    ".panel{position:fixed;right:20px;bottom:88px;width:380px;height:min(600px,calc(100vh - 120px));" +
    "background:#fff;color:#111827;border-radius:14px;box-shadow:0 10px 40px rgba(0,0,0,.25);display:flex;" +
    "flex-direction:column;overflow:hidden;z-index:2147483001;font-size:15px;line-height:1.45}" +
    ".panel[hidden]{display:none}" +
    "header{display:flex;align-items:center;justify-content:space-between;padding:12px 14px;" +
    "background:#1f2937;color:#fff}" +
    "h2{margin:0;font-size:16px;font-weight:600;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}" +
    ".close{background:transparent;border:0;color:#fff;font-size:24px;line-height:1;cursor:pointer;" +
    "width:36px;height:36px;border-radius:8px}" +
    ".log{flex:1;overflow-y:auto;padding:14px;display:flex;flex-direction:column;gap:10px}" +
    ".msg{max-width:85%;padding:9px 12px;border-radius:12px;white-space:pre-wrap;overflow-wrap:anywhere}" +
    ".assistant{align-self:flex-start;background:#f3f4f6}" +
    ".user{align-self:flex-end;background:#1f2937;color:#fff}" +
    ".msg.pending:empty::after{content:'\\2026';color:#6b7280}" +
    ".msg .failed{display:block;color:#b91c1c;margin-top:4px}" +
    ".sources{margin:6px 0 0;padding:6px 0 0;border-top:1px solid #d1d5db;list-style:none;font-size:13px}" +
    ".sources::before{content:'Sources';display:block;font-weight:600;color:#4b5563;margin-bottom:2px}" +
    ".sources li{margin:2px 0}" +
    ".sources a{color:#1d4ed8}" +
    ".suggestions{display:flex;flex-wrap:wrap;gap:6px;padding:0 14px 8px}" +
    ".suggestions[hidden]{display:none}" +
    ".suggestion{border:1px solid #d1d5db;background:#fff;color:#111827;border-radius:16px;padding:6px 12px;" +
    "font-size:14px;cursor:pointer}" +
    ".suggestion:hover{background:#f3f4f6}" +
    ".handoff{margin:0 14px 8px;align-self:flex-start}" +
    ".notice{margin:0 14px 8px;padding:8px 10px;border-radius:8px;background:#fef2f2;color:#991b1b;font-size:14px}" +
    ".notice[hidden]{display:none}" +
    "form{display:flex;gap:8px;padding:10px 14px 14px;border-top:1px solid #e5e7eb}" +
    "textarea{flex:1;resize:none;border:1px solid #d1d5db;border-radius:10px;padding:9px 10px;font-size:15px;" +
    "min-height:40px;max-height:120px;color:#111827;background:#fff}" +
    ".send{border:0;border-radius:10px;background:#1f2937;color:#fff;padding:0 16px;font-size:15px;cursor:pointer}" +
    ".send:disabled,textarea:disabled{opacity:.55;cursor:not-allowed}" +
    ".lead{align-self:stretch;border:1px solid #d1d5db;border-radius:12px;padding:10px 12px;display:flex;" +
    "flex-direction:column;gap:6px;background:#f9fafb}" +
    ".lead h3{margin:0 0 2px;font-size:15px;font-weight:600}" +
    ".lead label{font-size:13px;color:#374151;display:flex;flex-direction:column;gap:2px}" +
    ".lead input{border:1px solid #d1d5db;border-radius:8px;padding:7px 9px;font-size:15px;color:#111827;background:#fff}" +
    ".lead .send{align-self:flex-end;padding:7px 14px}" +
    ".lead .failed{color:#b91c1c;font-size:13px}" +
    ".sr-only{position:absolute;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;clip:rect(0,0,0,0);" +
    "white-space:nowrap;border:0}" +
    "@media (max-width:480px){.panel{inset:0;right:0;bottom:0;width:100%;height:100%;max-height:none;border-radius:0}}";

  var ICON =
    '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z"/></svg>';

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    if (attrs) {
      for (var k in attrs) {
        if (Object.prototype.hasOwnProperty.call(attrs, k)) node.setAttribute(k, attrs[k]);
      }
    }
    if (text !== undefined) node.textContent = text;
    return node;
  }

  var host, bubble, panel, title, log, suggestions, notice, form, input, send, styleOverrides;

  function build() {
    host = el("div", { id: "agentbase-widget", "data-testid": "agentbase-widget" });
    var root = host.attachShadow({ mode: "open" });
    var style = el("style");
    style.textContent = CSS;
    root.appendChild(style);
    styleOverrides = el("style", { "data-testid": "widget-styles" });
    root.appendChild(styleOverrides);

    bubble = el("button", {
      type: "button",
      class: "bubble",
      id: "agentbase-bubble",
      "data-testid": "widget-bubble",
      "aria-label": "Open chat",
      "aria-expanded": "false",
      "aria-controls": "agentbase-panel",
    });
    bubble.innerHTML = ICON;

    panel = el("div", {
      class: "panel",
      id: "agentbase-panel",
      "data-testid": "widget-panel",
      role: "dialog",
      "aria-labelledby": "agentbase-title",
      hidden: "",
    });
    var header = el("header");
    title = el("h2", { id: "agentbase-title", "data-testid": "widget-title" }, "Chat");
    var close = el(
      "button",
      { type: "button", class: "close", "data-testid": "widget-close", "aria-label": "Close chat" },
      "\u00d7"
    );
    header.appendChild(title);
    header.appendChild(close);

    log = el("div", {
      class: "log",
      id: "agentbase-log",
      "data-testid": "widget-messages",
      role: "log",
      "aria-live": "polite",
      "aria-label": "Messages",
    });
    suggestions = el("div", {
      class: "suggestions",
      "data-testid": "widget-suggestions",
      "aria-label": "Suggested messages",
      role: "group",
      hidden: "",
    });
    notice = el("div", { class: "notice", "data-testid": "widget-error", role: "alert", hidden: "" });

    form = el("form", { "data-testid": "widget-form" });
    var label = el("label", { for: "agentbase-input", class: "sr-only" }, "Your message");
    input = el("textarea", {
      id: "agentbase-input",
      name: "message",
      rows: "1",
      maxlength: "4000",
      placeholder: "Type a message\u2026",
      "data-testid": "widget-input",
    });
    send = el("button", { type: "submit", class: "send", "data-testid": "widget-send" }, "Send");
    form.appendChild(label);
    form.appendChild(input);
    form.appendChild(send);

    handoffButton = el(
      "button",
      { type: "button", class: "suggestion handoff", "data-testid": "widget-handoff", hidden: "" },
      "Talk to a person"
    );
    handoffButton.addEventListener("click", askForPerson);

    panel.appendChild(header);
    panel.appendChild(log);
    panel.appendChild(handoffButton);
    panel.appendChild(suggestions);
    panel.appendChild(notice);
    panel.appendChild(form);
    root.appendChild(panel);
    root.appendChild(bubble);
    document.body.appendChild(host);

    bubble.addEventListener("click", function () {
      if (panel.hidden) open();
      else closePanel();
    });
    close.addEventListener("click", closePanel);
    panel.addEventListener("keydown", function (e) {
      if (e.key === "Escape") {
        e.preventDefault();
        closePanel();
      }
    });
    input.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        submit();
      }
    });
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      submit();
    });
  }

  // ---- rendering ---------------------------------------------------------------------

  function scrollDown() {
    log.scrollTop = log.scrollHeight;
  }

  function messageNode(role, text, extra) {
    var node = el("div", {
      class: "msg " + role,
      "data-testid": "widget-message-" + role,
      "data-role": role,
    });
    if (extra) node.setAttribute("data-kind", extra);
    node.appendChild(document.createTextNode(text || ""));
    log.appendChild(node);
    scrollDown();
    return node;
  }

  function safeUrl(u) {
    try {
      var parsed = new URL(u);
      return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
    } catch (e) {
      return null;
    }
  }

  function renderSources(node, sources) {
    var old = node.querySelector(".sources");
    if (old) old.remove();
    if (!sources || !sources.length) return;
    var list = el("ul", { class: "sources", "data-testid": "widget-sources", "aria-label": "Sources" });
    sources.forEach(function (s) {
      var item = el("li", { "data-testid": "widget-source" });
      var href = s.url && safeUrl(s.url);
      if (href) {
        item.appendChild(el("a", { href: href, target: "_blank", rel: "noopener noreferrer" }, s.title || href));
      } else {
        item.appendChild(el("span", null, s.title || "Source"));
      }
      list.appendChild(item);
    });
    node.appendChild(list);
  }

  function showNotice(text) {
    notice.textContent = text;
    notice.hidden = false;
  }
  function clearNotice() {
    notice.textContent = "";
    notice.hidden = true;
  }

  function setBusy(busy) {
    input.disabled = busy;
    send.disabled = busy;
    Array.prototype.forEach.call(suggestions.querySelectorAll("button"), function (b) {
      b.disabled = busy;
    });
  }

  function suggestionTexts(value) {
    if (!Array.isArray(value)) return [];
    var byOrder = function (a, b) {
      return (a.order || 0) - (b.order || 0);
    };
    var out = [];
    value
      .slice()
      .sort(byOrder)
      .forEach(function (s) {
        if (typeof s === "string") out.push(s);
        else if (s && s.type === "nested" && Array.isArray(s.items)) {
          s.items
            .slice()
            .sort(byOrder)
            .forEach(function (i) {
              if (i && i.text) out.push(i.text);
            });
        } else if (s && s.text) out.push(s.text);
      });
    return out.filter(function (t) {
      return typeof t === "string" && t.trim();
    });
  }

  var agent = null; // the config, once loaded
  var blocked = false; // the page may not chat (refused, unknown agent, …)

  function renderSuggestions() {
    suggestions.textContent = "";
    var texts = agent && !state.transcript.length ? suggestionTexts(agent.suggestedMessages) : [];
    texts.forEach(function (text) {
      var b = el("button", { type: "button", class: "suggestion", "data-testid": "widget-suggestion" }, text);
      b.addEventListener("click", function () {
        ask(text);
      });
      suggestions.appendChild(b);
    });
    suggestions.hidden = !texts.length;
  }

  // ---- human handoff ------------------------------------------------------------------
  //
  // "Talk to a person" (POST …/handoff) turns the conversation into a ticket; the AI
  // then stays silent and a person answers. Their replies arrive through a long
  // poll of the conversation (GET …/live?after=N), which runs while there is a
  // conversation; only replies written by people are added here (the AI's come with
  // the chat stream).
  var handoffButton = null;
  var liveFor = null;
  function renderHandoff() {
    if (!handoffButton) return;
    handoffButton.hidden = !state.conversationId || state.takenOver === true;
  }
  function askForPerson() {
    if (!state.conversationId) return;
    handoffButton.disabled = true;
    fetch(api + "/handoff", {
      method: "POST",
      credentials: "omit",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(withUser({ visitorId: visitorId, conversationId: state.conversationId })),
    })
      .then(function (response) {
        if (!response.ok) {
          return envelope(response).then(function (error) {
            showNotice(refusalText(response.status, error));
          });
        }
        state.takenOver = true;
        var note = { role: "assistant", text: "A person will answer you here shortly.", kind: "handoff" };
        state.transcript.push(note);
        persist();
        messageNode("assistant", note.text, "handoff");
        renderHandoff();
      })
      .catch(function () {
        showNotice("Something went wrong. Please try again.");
      })
      .then(function () {
        handoffButton.disabled = false;
        follow();
      });
  }
  function follow() {
    var id = state.conversationId;
    if (!id || liveFor === id) return;
    liveFor = id;
    var after = null;
    function poll(wait) {
      if (state.conversationId !== id) {
        liveFor = null;
        return;
      }
      var q =
        "?visitorId=" + encodeURIComponent(visitorId) +
        "&conversationId=" + encodeURIComponent(id) +
        "&after=" + (after === null ? 0 : after) +
        "&wait=" + wait;
      if (identity) {
        q += "&userId=" + encodeURIComponent(identity.userId) +
          "&userHash=" + encodeURIComponent(identity.userHash);
      }
      fetch(api + "/live" + q, { credentials: "omit", cache: "no-store" })
        .then(function (response) {
          if (!response.ok) throw new Error("live " + response.status);
          return response.json();
        })
        .then(function (body) {
          var data = body.data || {};
          var first = after === null;
          (data.messages || []).forEach(function (m) {
            if (typeof m.seq === "number" && (after === null || m.seq > after)) after = m.seq;
            if (first || !m.answeredBy || m.answeredBy.type !== "human") return;
            var entry = { role: "assistant", text: m.text, by: "human" };
            state.transcript.push(entry);
            messageNode("assistant", m.text, "human");
          });
          if (after === null) after = 0;
          state.takenOver = data.status === "taken_over";
          persist();
          renderHandoff();
          poll(20);
        })
        .catch(function () {
          setTimeout(function () {
            poll(20);
          }, 3000);
        });
    }
    poll(0);
  }

  function renderAll() {
    log.textContent = "";
    leadNode = null;
    var initial = (agent && agent.initialMessages) || [];
    initial.forEach(function (text) {
      if (text) messageNode("assistant", text, "initial");
    });
    state.transcript.forEach(function (m) {
      var node = messageNode(m.role === "user" ? "user" : "assistant", m.text, m.by || m.kind);
      if (m.error) {
        node.appendChild(el("span", { class: "failed" }, m.error));
      }
      renderSources(node, m.sources);
    });
    renderSuggestions();
    maybeLeadForm();
    renderHandoff();
    follow();
  }

  // ---- lead form ---------------------------------------------------------------------

  // The agent's lead form (collectCustomerInformation) goes into the log once the
  // visitor has had `showAfterAnswers` answers, until it is sent.
  var leadNode = null;
  function maybeLeadForm() {
    var f = agent && agent.leadForm;
    if (!f || state.leadSent || leadNode) return;
    var answers = state.transcript.filter(function (m) {
      return m.role !== "user" && !m.error;
    }).length;
    if (answers < (f.showAfterAnswers || 0)) return;
    leadNode = el("div", { class: "lead", "data-testid": "widget-lead-form", role: "group" });
    leadNode.appendChild(el("h3", null, f.title || "Let us know how to contact you"));
    var inputs = {};
    [
      ["name", "text", "name"],
      ["email", "email", "email"],
      ["phone", "tel", "tel"],
    ].forEach(function (d) {
      var field = f[d[0]];
      if (!field || !field.active) return;
      var label = el("label", null, (field.label || d[0]) + (field.required ? " *" : ""));
      var box = el("input", {
        type: d[1],
        name: d[0],
        autocomplete: d[2],
        maxlength: d[0] === "email" ? "254" : d[0] === "phone" ? "32" : "100",
        "data-testid": "widget-lead-" + d[0],
      });
      if (field.required) box.setAttribute("required", "");
      label.appendChild(box);
      leadNode.appendChild(label);
      inputs[d[0]] = box;
    });
    var problem = el("span", { class: "failed", "data-testid": "widget-lead-error", role: "alert" });
    var submitLead = el("button", { type: "button", class: "send", "data-testid": "widget-lead-send" }, "Send");
    leadNode.appendChild(problem);
    leadNode.appendChild(submitLead);
    submitLead.addEventListener("click", function () {
      var body = withIdentity({ visitorId: visitorId });
      if (state.conversationId) body.conversationId = state.conversationId;
      Object.keys(inputs).forEach(function (k) {
        if (inputs[k].value.trim()) body[k] = inputs[k].value.trim();
      });
      submitLead.disabled = true;
      problem.textContent = "";
      fetch(api + "/leads", {
        method: "POST",
        credentials: "omit",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      })
        .then(function (response) {
          if (response.ok) {
            state.leadSent = true;
            persist();
            leadNode.textContent = "";
            leadNode.appendChild(el("span", { "data-testid": "widget-lead-done" }, "Thank you! We will be in touch."));
            return;
          }
          return envelope(response).then(function (error) {
            var details = error.details || {};
            var first = Object.keys(details)[0];
            problem.textContent = first ? first + ": " + details[first] : refusalText(response.status, error);
            submitLead.disabled = false;
          });
        })
        .catch(function () {
          problem.textContent = "Something went wrong. Please try again.";
          submitLead.disabled = false;
        });
    });
    log.appendChild(leadNode);
    scrollDown();
  }

  // ---- server ------------------------------------------------------------------------

  function envelope(response) {
    return response
      .json()
      .then(function (body) {
        return (body && body.error) || {};
      })
      .catch(function () {
        return {};
      });
  }

  function refusalText(status, error) {
    switch (error.code) {
      case "AGENT_NOT_PUBLIC":
      case "AGENT_NOT_FOUND":
        return "This chat is not available.";
      case "WIDGET_ORIGIN_NOT_ALLOWED":
        return "This website is not allowed to use this chat.";
      case "CHAT_CREDITS_EXHAUSTED":
      case "CHAT_AGENT_CREDITS_EXHAUSTED":
        return "This chat has reached its message limit. Please try again later.";
      case "RATE_LIMIT_TOO_MANY_REQUESTS":
        return error.message || "Too many messages. Please wait a moment and try again.";
      case "CHAT_CONVERSATION_BUSY":
        return "Your previous message is still being answered. Please wait a moment.";
      default:
        if (status === 429) return error.message || "Too many messages. Please wait a moment.";
        if (status >= 500) return "The chat is having trouble right now. Please try again later.";
        return error.message || "Your message could not be sent (error " + status + ").";
    }
  }

  // A fetch that fails outright is either a refused CORS check (the server answered,
  // but not to this page: its domain is not allowed) or no network. An opaque
  // no-cors request tells them apart: it succeeds whenever the server is reachable.
  function unreachableText() {
    return fetch(api + "/config", { mode: "no-cors", credentials: "omit", cache: "no-store" }).then(
      function () {
        return "This website is not allowed to use this chat.";
      },
      function () {
        return "Cannot reach the chat server. Check your connection and try again.";
      }
    );
  }

  // The agent's `styles.chat`: colours, theme, the button's side and icon and the
  // header's name. Colours are checked by the server (#RGB/#RRGGBB or
  // "transparent") before they get here, so they can go into CSS as they are.
  var COLOUR = /^(#[0-9a-fA-F]{3}|#[0-9a-fA-F]{6}|transparent)$/;
  function applyStyles(styles) {
    var chat = (styles && styles.chat) || {};
    var css = "";
    var colour = function (v) {
      return typeof v === "string" && COLOUR.test(v) ? v : null;
    };
    if (chat.theme === "dark") {
      css +=
        ".panel{background:#111827;color:#f9fafb}.assistant{background:#1f2937;color:#f9fafb}" +
        ".composer textarea,textarea{background:#1f2937;color:#f9fafb}";
    }
    if (colour(chat.buttonColor)) css += ".bubble{background:" + chat.buttonColor + "}";
    if (colour(chat.headerColor)) css += "header{background:" + chat.headerColor + "}";
    if (colour(chat.userMessageColor)) {
      css += ".user{background:" + chat.userMessageColor + "}.send{background:" + chat.userMessageColor + "}";
    }
    if (chat.alignChatButton === "left") css += ".bubble,.panel{right:auto;left:20px}";
    styleOverrides.textContent = css;
    if (typeof chat.displayName === "string" && chat.displayName) title.textContent = chat.displayName;
    if (typeof chat.messagePlaceholder === "string" && chat.messagePlaceholder) {
      input.setAttribute("placeholder", chat.messagePlaceholder);
    }
    if (typeof chat.icon === "string" && /^https?:\/\//.test(chat.icon)) {
      var img = el("img", { src: chat.icon, alt: "", "data-testid": "widget-icon" });
      img.style.cssText = "width:100%;height:100%;border-radius:50%;object-fit:cover";
      bubble.textContent = "";
      bubble.appendChild(img);
    }
  }

  var configLoading = null;
  function loadConfig() {
    if (agent) return Promise.resolve(agent);
    if (configLoading) return configLoading;
    configLoading = fetch(api + "/config", { credentials: "omit", cache: "no-store" })
      .then(
        function (response) {
          if (response.ok) {
            return response.json().then(function (body) {
              agent = body.data;
              title.textContent = agent.name || "Chat";
              applyStyles(agent.styles);
              blocked = false;
              clearNotice();
              renderAll();
              return agent;
            });
          }
          return envelope(response).then(function (error) {
            throw new Error(refusalText(response.status, error));
          });
        },
        function () {
          return unreachableText().then(function (text) {
            throw new Error(text);
          });
        }
      )
      .catch(function (e) {
        blocked = true;
        setBusy(true);
        showNotice(e.message);
        return null;
      })
      .then(function (a) {
        configLoading = null;
        return a;
      });
    return configLoading;
  }

  function parseFrames(buffer, onChunk) {
    var events = buffer.split("\n\n");
    var rest = events.pop();
    events.forEach(function (event) {
      event.split("\n").forEach(function (line) {
        if (line.indexOf("data: ") !== 0) return;
        var data = line.slice(6);
        if (data === "[DONE]") {
          onChunk({ type: "[DONE]" });
          return;
        }
        try {
          onChunk(JSON.parse(data));
        } catch (e) {
          /* a frame that is not JSON is skipped */
        }
      });
    });
    return rest;
  }

  var busy = false;

  function submit() {
    var text = input.value.trim();
    if (!text) return;
    ask(text);
  }

  function ask(text, retried) {
    if (busy || blocked || !text) return;
    if (!agent) {
      // The config's arrival re-renders the log from the transcript, which would
      // drop an answer still streaming into it: send once the config is here.
      busy = true;
      setBusy(true);
      loadConfig().then(function () {
        busy = false;
        if (blocked) return; // the notice says why; the text stays in the box
        setBusy(false);
        ask(text, retried);
      });
      return;
    }
    busy = true;
    setBusy(true);
    clearNotice();
    input.value = "";
    var userEntry = { role: "user", text: text };
    var userNode = messageNode("user", text);
    suggestions.hidden = true;

    var body = { message: text, visitorId: visitorId };
    if (state.conversationId) body.conversationId = state.conversationId;
    withIdentity(body);

    var answerNode = null;
    var answer = { role: "assistant", text: "", sources: [] };
    var textNode = null;

    function finish() {
      busy = false;
      setBusy(false);
      renderSuggestions();
      maybeLeadForm();
      renderHandoff();
      follow();
      input.focus();
    }
    function refused(message) {
      // Nothing was stored: take the message back so the visitor can send it again.
      userNode.remove();
      if (answerNode) answerNode.remove();
      input.value = text;
      showNotice(message);
      finish();
    }

    fetch(api + "/chat", {
      method: "POST",
      credentials: "omit",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    })
      .then(
        function (response) {
          if (!response.ok) {
            return envelope(response).then(function (error) {
              var gone =
                (response.status === 404 && error.code !== "AGENT_NOT_FOUND") ||
                error.code === "CHAT_CONVERSATION_NOT_ONGOING";
              if (gone && body.conversationId && !retried) {
                // The conversation is gone, ended or taken over: start a new one.
                state.conversationId = null;
                state.transcript = [];
                persist();
                busy = false;
                renderAll();
                return ask(text, true);
              }
              refused(refusalText(response.status, error));
            });
          }
          state.transcript.push(userEntry);
          persist();
          answerNode = messageNode("assistant", "");
          answerNode.classList.add("pending");
          answerNode.setAttribute("aria-busy", "true");
          textNode = answerNode.firstChild;
          var reader = response.body.getReader();
          var decoder = new TextDecoder();
          var buffer = "";
          var done = false;

          function onChunk(c) {
            switch (c.type) {
              case "text-delta":
                answer.text += c.delta || "";
                textNode.data = answer.text;
                scrollDown();
                break;
              case "source-url":
                answer.sources.push({ url: c.url, title: c.title || c.url });
                renderSources(answerNode, answer.sources);
                break;
              case "source-document":
                answer.sources.push({ title: c.title || "Source" });
                renderSources(answerNode, answer.sources);
                break;
              case "message-metadata":
              case "finish":
                var meta = c.messageMetadata;
                if (meta && meta.conversationId) state.conversationId = meta.conversationId;
                break;
              case "error":
                answer.error = c.errorText || "The answer could not be completed.";
                answerNode.appendChild(el("span", { class: "failed", "data-testid": "widget-answer-error" }, answer.error));
                break;
              case "[DONE]":
                done = true;
                break;
              default:
                break;
            }
          }

          function pump() {
            return reader.read().then(function (step) {
              if (step.value) buffer = parseFrames(buffer + decoder.decode(step.value, { stream: true }), onChunk);
              if (step.done || done) return;
              return pump();
            });
          }

          return pump()
            .catch(function () {
              answer.error = answer.error || "The connection was lost before the answer finished.";
              showNotice(answer.error);
            })
            .then(function () {
              if (done && !answer.text && !answer.error && !answer.sources.length) {
                // No answer: the conversation is paused or a person is answering it
                // (their reply comes through the live poll).
                answerNode.remove();
                finish();
                return;
              }
              if (!done && !answer.error) {
                answer.error = "The answer was interrupted.";
                showNotice(answer.error);
              }
              answerNode.classList.remove("pending");
              answerNode.removeAttribute("aria-busy");
              state.transcript.push(answer);
              persist();
              finish();
            });
        },
        function () {
          return unreachableText().then(refused);
        }
      )
      .catch(function () {
        refused("Something went wrong. Please try again.");
      });
  }

  // ---- open / close ------------------------------------------------------------------

  function open() {
    panel.hidden = false;
    bubble.setAttribute("aria-expanded", "true");
    bubble.setAttribute("aria-label", "Close chat");
    if (!agent) renderAll();
    loadConfig().then(function () {
      if (!panel.hidden && !input.disabled) input.focus();
    });
    if (!input.disabled) input.focus();
    scrollDown();
  }

  function closePanel() {
    panel.hidden = true;
    bubble.setAttribute("aria-expanded", "false");
    bubble.setAttribute("aria-label", "Open chat");
    bubble.focus();
  }

  function start() {
    build();
    // The button's look comes from the agent's styles: load them at once.
    loadConfig();
  }

  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
