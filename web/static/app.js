// Slipway dashboard: a little progressive enhancement. The pages work without it.
// - follows a running deployment's log over server-sent events (resumes by line id);
// - keeps "3 min ago" current.
(function () {
  "use strict";

  var MAX_LINES = 5000; // lines kept on the page while tailing; the full log is at log.txt

  function rel(iso) {
    var t = Date.parse(iso);
    if (isNaN(t)) return null;
    var s = (Date.now() - t) / 1000;
    if (s < 45) return "just now";
    if (s < 3600) return Math.max(1, Math.round(s / 60)) + " min ago";
    if (s < 86400) return Math.floor(s / 3600) + " h ago";
    if (s < 30 * 86400) return Math.floor(s / 86400) + " d ago";
    return null; // older: the server's date stays
  }

  function refreshTimes() {
    var els = document.querySelectorAll("time[data-rel]");
    for (var i = 0; i < els.length; i++) {
      var r = rel(els[i].getAttribute("datetime"));
      if (r) els[i].textContent = r;
    }
  }

  function tail(log) {
    var url = log.getAttribute("data-stream");
    var after = log.getAttribute("data-after") || "0";
    var state = document.getElementById("log-state");
    var es = new EventSource(url + "?after=" + encodeURIComponent(after));

    function atBottom() {
      return log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    }

    es.onmessage = function (ev) {
      var d;
      try { d = JSON.parse(ev.data); } catch (e) { return; }
      var stick = atBottom();
      var empty = document.getElementById("log-empty");
      if (empty) empty.remove();
      var line = document.createElement("span");
      line.className = "ln s-" + String(d.s).replace(/[^a-z]/g, "");
      if (ev.lastEventId) line.id = "L" + ev.lastEventId;
      var t = document.createElement("span");
      t.className = "t";
      t.textContent = d.t;
      line.appendChild(t);
      line.appendChild(document.createTextNode(" " + d.l));
      log.appendChild(line);
      log.appendChild(document.createTextNode("\n"));
      while (log.childNodes.length > 2 * MAX_LINES) log.removeChild(log.firstChild);
      if (stick) log.scrollTop = log.scrollHeight;
    };

    es.addEventListener("end", function (ev) {
      es.close();
      if (state) {
        state.textContent = "";
        var done = document.createElement("span");
        done.textContent = "finished (" + String(ev.data).replace(/_/g, " ") + ") · ";
        var a = document.createElement("a");
        a.href = window.location.pathname;
        a.textContent = "reload for the result";
        state.appendChild(done);
        state.appendChild(a);
      }
    });

    es.onerror = function () {
      // EventSource reconnects by itself, sending the last line id it got.
      if (state && es.readyState === EventSource.CONNECTING) state.textContent = "reconnecting…";
    };
    es.onopen = function () {
      if (state && state.textContent === "reconnecting…") state.textContent = "live";
    };
    log.scrollTop = log.scrollHeight;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var log = document.getElementById("log");
    if (log) {
      log.scrollTop = log.scrollHeight;
      if (log.hasAttribute("data-stream") && window.EventSource) tail(log);
    }
    setInterval(refreshTimes, 30000);
  });
})();
