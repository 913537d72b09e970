// agentbase dashboard: progressive enhancement over working HTML forms.
// Copy buttons, confirmations, live training progress and the streaming
// playground. No framework, no build step.
(function () {
  "use strict";
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";

  // Copy buttons: data-copy="#id" copies that element's text.
  document.addEventListener("click", function (e) {
    var button = e.target.closest ? e.target.closest("[data-copy]") : null;
    if (!button) return;
    var target = document.querySelector(button.getAttribute("data-copy"));
    if (!target) return;
    var text = target.textContent;
    var done = function () {
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = "Copy"; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { selectText(target); });
    } else {
      selectText(target);
      button.textContent = "Press Ctrl+C";
    }
  });

  function selectText(el) {
    var range = document.createRange();
    range.selectNodeContents(el);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }

  // Forms that destroy something ask first.
  document.addEventListener("submit", function (e) {
    var message = e.target.getAttribute && e.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) e.preventDefault();
  });

  // Live training progress on the sources page.
  var training = document.getElementById("training");
  if (training && training.getAttribute("data-live") === "true") {
    var url = training.getAttribute("data-progress-url");
    var timer = setInterval(function () {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (p) {
          if (!p) return;
          document.getElementById("agent-status").textContent = p.agentStatus;
          p.sources.forEach(function (s) {
            var cell = document.querySelector('[data-source-status="' + s.id + '"]');
            if (cell) { cell.textContent = s.status; cell.className = "status " + s.status; }
          });
          var list = document.getElementById("training-progress");
          list.textContent = "";
          p.jobs.forEach(function (j) {
            var li = document.createElement("li");
            li.textContent = j.stage + " " + j.status + ": " + j.done + "/" + j.total;
            list.appendChild(li);
          });
          if (p.jobs.length === 0) clearInterval(timer);
        })
        .catch(function () { /* the next tick tries again */ });
    }, 1000);
  }

  // The playground: streams the UI Message Stream of a chat turn.
  var form = document.getElementById("playground-form");
  if (!form) return;
  var section = form.closest(".playground");
  var chatUrl = section.getAttribute("data-chat-url");
  var transcript = document.getElementById("transcript");
  var input = document.getElementById("playground-input");
  var conversationId = null;
  var busy = false;

  function bubble(role) {
    var li = document.createElement("div");
    li.className = "msg " + role;
    var who = document.createElement("div");
    who.className = "who";
    who.textContent = role;
    var text = document.createElement("div");
    text.className = "text";
    li.appendChild(who);
    li.appendChild(text);
    transcript.appendChild(li);
    transcript.scrollTop = transcript.scrollHeight;
    return li;
  }

  function addCitation(li, title, url) {
    var box = li.querySelector(".citations");
    if (!box) {
      box = document.createElement("div");
      box.className = "citations";
      box.innerHTML = "<strong>Sources</strong><ol></ol>";
      li.appendChild(box);
    }
    var item = document.createElement("li");
    if (url && /^https?:\/\//i.test(url)) {
      var a = document.createElement("a");
      a.href = url;
      a.rel = "noreferrer";
      a.textContent = title || url;
      item.appendChild(a);
    } else {
      // Anything but http(s) is shown, never linked.
      item.textContent = url ? (title || url) + " (" + url + ")" : title;
    }
    box.querySelector("ol").appendChild(item);
  }

  function fail(li, message) {
    li.classList.add("error");
    li.querySelector(".text").textContent = message;
  }

  function send(message) {
    if (busy || !message.trim()) return;
    busy = true;
    bubble("user").querySelector(".text").textContent = message;
    var answer = bubble("assistant");
    answer.setAttribute("aria-busy", "true");
    var text = answer.querySelector(".text");
    var body = { message: message, stream: true };
    if (conversationId) body.conversationId = conversationId;
    fetch(chatUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "x-csrf-token": csrf },
      body: JSON.stringify(body)
    }).then(function (r) {
      if (!r.ok) {
        return r.json().then(function (e) {
          fail(answer, (e && e.error && e.error.message) || ("Request failed (" + r.status + ")"));
        }, function () { fail(answer, "Request failed (" + r.status + ")"); });
      }
      var reader = r.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "";
      function handle(chunk) {
        if (chunk.type === "text-delta") {
          text.textContent += chunk.delta;
          transcript.scrollTop = transcript.scrollHeight;
        } else if (chunk.type === "source-url") {
          addCitation(answer, chunk.title, chunk.url);
        } else if (chunk.type === "source-document") {
          addCitation(answer, chunk.title, null);
        } else if (chunk.type === "tool-input-available") {
          var pre = document.createElement("pre");
          pre.textContent = "Tool call " + chunk.toolName + " " + JSON.stringify(chunk.input);
          answer.appendChild(pre);
        } else if (chunk.type === "error") {
          fail(answer, chunk.errorText || "The answer failed.");
        } else if (chunk.type === "finish" && chunk.messageMetadata) {
          conversationId = chunk.messageMetadata.conversationId;
        }
      }
      function pump() {
        return reader.read().then(function (step) {
          if (step.done) return;
          buffer += decoder.decode(step.value, { stream: true });
          var frames = buffer.split("\n\n");
          buffer = frames.pop();
          frames.forEach(function (frame) {
            frame.split("\n").forEach(function (line) {
              if (line.indexOf("data: ") !== 0) return;
              var data = line.slice(6);
              if (data === "[DONE]") return;
              try { handle(JSON.parse(data)); } catch (err) { /* not JSON: skip */ }
            });
          });
          return pump();
        });
      }
      return pump();
    }).catch(function () {
      fail(answer, "The connection failed. Check the server and try again.");
    }).then(function () {
      answer.removeAttribute("aria-busy");
      answer.setAttribute("data-done", "true");
      busy = false;
      input.focus();
    });
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var message = input.value;
    input.value = "";
    send(message);
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  document.getElementById("playground-reset").addEventListener("click", function () {
    conversationId = null;
    transcript.textContent = "";
    input.focus();
  });
})();

// A conversation's live feed: while the page is open, a long poll of live.json
// appends the messages that arrive (the visitor's, the AI's, a colleague's reply)
// and reloads when the conversation is taken over or handed back elsewhere.
(function () {
  var panel = document.getElementById("handoff");
  var thread = document.getElementById("thread");
  if (!panel || !thread) return;
  var url = panel.getAttribute("data-live-url");
  var status = panel.getAttribute("data-status");
  var after = parseInt(thread.getAttribute("data-after"), 10) || 0;
  function add(m) {
    var li = document.createElement("li");
    li.className = "msg " + m.role;
    li.setAttribute("data-live", "true");
    var who = document.createElement("div");
    who.className = "who";
    var by = m.answeredBy && m.answeredBy.type === "human" ? "person" : m.role;
    who.textContent = by + " \u00b7 just now";
    var text = document.createElement("div");
    text.className = "text";
    text.textContent = m.text;
    li.appendChild(who);
    li.appendChild(text);
    thread.appendChild(li);
  }
  function poll() {
    fetch(url + "?after=" + after + "&wait=20", {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (r) {
        if (!r.ok) throw new Error("live " + r.status);
        return r.json();
      })
      .then(function (body) {
        body.messages.forEach(function (m) {
          if (m.seq > after) {
            after = m.seq;
            add(m);
          }
        });
        if (body.status !== status) {
          window.location.reload();
          return;
        }
        poll();
      })
      .catch(function () {
        setTimeout(poll, 3000);
      });
  }
  poll();
})();
