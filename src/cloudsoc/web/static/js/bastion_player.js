// A bastion session: its facts, its commands, and a replay player drawn from server-side frames
// (GET /api/v1/bastion/sessions/<id>/frames?from=&to=), a window of session time at a time. The screen is plain
// DOM: one div a row, spans with colour classes, text through textContent only (no xterm.js: it injects styles
// the CSP forbids, and a recording's bytes must never become markup).
"use strict";

(function () {
  const X = window.cloudsocExplore;
  const root = document.getElementById("bastion-session");
  if (!root) { return; }
  const zone = root.dataset.zone;
  const S = X.strings(root);
  const id = root.dataset.session;
  const api = "/api/v1/bastion/sessions/" + encodeURIComponent(id);
  const WINDOW = 60;      // seconds of session time a request asks for
  const PREFETCH = 15;    // ask for the next window when this close to the loaded end
  const IDLE = 2;         // pauses longer than this play as this long (asciinema's idle_time_limit)
  const TICK = 40;
  const term = document.getElementById("bs-term");
  const seek = document.getElementById("bs-seek");
  const clock = document.getElementById("bs-clock");
  const playButton = document.getElementById("bs-play");

  let frames = [];        // the loaded window; its first frame is a full screen
  let winUntil = -1;
  let winEnd = false;     // the window reaches the end of the recording
  let pos = 0;            // frames[0..pos) are drawn
  let t = 0;
  let duration = 0;
  let speed = 1;
  let playing = false;
  let timer = null;
  let playedFrom = null;
  let lastTick = 0;
  let loading = null;
  let generation = 0;
  let commands = [];
  let rows = [];

  function showError(err) {
    const node = document.getElementById("bs-error");
    node.textContent = err ? err.message : "";
    node.hidden = !err;
  }

  function mmss(secs) {
    const s = Math.max(0, Math.floor(secs));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const rest = String(s % 60).padStart(2, "0");
    return h ? h + ":" + String(m).padStart(2, "0") + ":" + rest : m + ":" + rest;
  }

  // -- drawing -------------------------------------------------------------------------------------------------
  function resize(cols, lines) {
    term.replaceChildren();
    rows = [];
    for (let y = 0; y < lines; y++) {
      const row = X.el("div", "bs-row");
      rows.push(row);
      term.appendChild(row);
    }
    term.dataset.cols = String(cols);
    term.style.width = cols + "ch";  // CSSOM, not a style attribute: the CSP allows it
  }

  function drawFrame(f) {
    if (f.size) { resize(f.size[0], f.size[1]); }
    f.rows.forEach(function (r) {
      const row = rows[r[0]];
      if (!row) { return; }
      const spans = r[1].map(function (run) {
        const span = X.el("span", run[1] || null);
        span.textContent = run[0];
        return span;
      });
      row.replaceChildren.apply(row, spans);
    });
  }

  function show() {
    seek.value = String(t);
    clock.textContent = mmss(t) + " / " + mmss(duration);
    root.dataset.t = t.toFixed(3);
    let current = -1;
    commands.forEach(function (c, i) { if (c.offset !== null && c.offset <= t + 0.001) { current = i; } });
    document.querySelectorAll("#tbl-commands tr[data-index]").forEach(function (tr) {
      tr.classList.toggle("bs-current", Number(tr.dataset.index) === current);
    });
  }

  function drawTo(target) {
    while (pos < frames.length && frames[pos].t <= target + 1e-6) {
      drawFrame(frames[pos]);
      pos += 1;
    }
  }

  // -- loading -------------------------------------------------------------------------------------------------
  function fetchWindow(from) {
    const to = from + WINDOW;
    return X.get(api + "/frames?from=" + from.toFixed(3) + "&to=" + to.toFixed(3));
  }

  // Replace the loaded window by one starting at `from` (a seek outside what is loaded).
  function load(from) {
    const mine = ++generation;
    loading = fetchWindow(from).then(function (data) {
      if (mine !== generation) { return; }
      frames = data.frames;
      winUntil = data.until;
      winEnd = data.end;
      duration = Math.max(duration, data.duration);
      seek.max = String(duration);
      pos = 0;
      loading = null;
    }).catch(function (err) {
      // A failed load must not leave playback waiting on it for good.
      if (mine === generation) { loading = null; }
      throw err;
    });
    return loading;
  }

  // Append the window after the loaded one (its first frame, a full screen at winUntil, is what is drawn).
  function extend() {
    if (loading || winEnd) { return loading; }
    const mine = generation;
    loading = fetchWindow(winUntil).then(function (data) {
      loading = null;
      if (mine !== generation) { return; }
      // Keep what is left to draw; forget the frames already drawn (a long replay stays small in memory).
      const rest = frames.slice(pos);
      frames = rest.concat(data.frames.slice(1));
      pos = 0;
      winUntil = data.until;
      winEnd = data.end;
      duration = Math.max(duration, data.duration);
      seek.max = String(duration);
    }).catch(function (err) { loading = null; showError(err); });
    return loading;
  }

  function seekTo(target) {
    target = Math.max(0, Math.min(target, duration || target));
    const inside = frames.length && target >= t && target <= winUntil + 1e-6;
    if (inside) {
      t = target;
      drawTo(t);
      show();
      return Promise.resolve();
    }
    return load(target).then(function () {
      t = target;
      drawTo(t);
      show();
    }).catch(showError);
  }

  // -- playing -------------------------------------------------------------------------------------------------
  function setPlaying(on) {
    playing = on;
    playButton.textContent = on ? S.pause : S.play;
    root.dataset.state = on ? "playing" : (t >= duration && winEnd ? "ended" : "paused");
    if (timer) { window.clearInterval(timer); timer = null; }
    if (on) {
      lastTick = performance.now();
      playedFrom = { wall: lastTick, t: t };
      timer = window.setInterval(tick, TICK);
    } else if (playedFrom) {
      // How long the last run took, in wall seconds, for the session time it covered (idle gaps shortened).
      root.dataset.played = ((performance.now() - playedFrom.wall) / 1000).toFixed(3) + "/" + (t - playedFrom.t).toFixed(3);
      playedFrom = null;
    }
  }

  function tick() {
    const now = performance.now();
    const dt = (now - lastTick) / 1000 * speed;
    lastTick = now;
    if (loading) { return; }  // wait for the frames (the clock does not run ahead of the screen)
    let next = t + dt;
    const upcoming = frames[pos];
    if (upcoming && upcoming.t - t > IDLE) {
      next = Math.max(next, upcoming.t - IDLE);
    } else if (!upcoming && winEnd && duration - t > IDLE) {
      next = Math.max(next, duration - IDLE);
    }
    if (!winEnd && winUntil - next < PREFETCH) { extend(); }
    if (!winEnd && next > winUntil) { next = winUntil; }
    t = winEnd ? Math.min(next, duration) : next;
    drawTo(t);
    show();
    if (winEnd && t >= duration && pos >= frames.length) {
      setPlaying(false);
    }
  }

  function togglePlay() {
    if (playing) { setPlaying(false); return; }
    if (winEnd && t >= duration) {
      seekTo(0).then(function () { setPlaying(true); });
      return;
    }
    setPlaying(true);
  }

  // -- the session and its commands -----------------------------------------------------------------------------
  function fact(dl, name, value) {
    dl.appendChild(X.el("dt", null, name));
    dl.appendChild(X.el("dd", null, value));
  }

  function jump(c) {
    const p = new URLSearchParams(window.location.search);
    p.set("t", String(c.offset));
    window.history.replaceState(null, "", window.location.pathname + "?" + p.toString());
    seekTo(c.offset);
  }

  function commandTable(list) {
    const table = document.getElementById("tbl-commands");
    table.replaceChildren();
    const tr0 = X.el("tr");
    [S.offset, S.time, S.command, S.cwd, S.verdict, S.risk].forEach(function (n) { tr0.appendChild(X.el("th", null, n)); });
    table.appendChild(tr0);
    if (!list.length) {
      const tr = X.el("tr");
      const td = X.el("td", "muted", S.none);
      td.colSpan = 6;
      tr.appendChild(td);
      table.appendChild(tr);
      return;
    }
    list.forEach(function (c, i) {
      const tr = X.el("tr", c.high_risk ? "bs-high" : null);
      tr.dataset.index = String(i);
      tr.appendChild(X.el("td", "bs-n", c.offset === null ? "" : mmss(c.offset)));
      tr.appendChild(X.el("td", "bs-time", X.fmtTime(c.time, zone)));
      const td = X.el("td", "bs-cmd");
      const code = X.el("code", null, c.command_line === null ? S.missing : c.command_line);
      if (c.offset !== null) {
        const a = X.el("a", "bs-jump");
        a.href = "?t=" + c.offset;
        a.appendChild(code);
        a.addEventListener("click", function (ev) { ev.preventDefault(); jump(c); });
        td.appendChild(a);
      } else {
        td.appendChild(code);
      }
      tr.appendChild(td);
      tr.appendChild(X.el("td", null, c.cwd || ""));
      tr.appendChild(X.el("td", c.verdict ? "bs-verdict" : null, c.verdict || ""));
      tr.appendChild(X.el("td", "bs-n", c.risk_score === null ? "" : c.risk_score));
      table.appendChild(tr);
    });
  }

  function nextCommand() {
    const c = commands.find(function (x) { return x.offset !== null && x.offset > t + 0.05; });
    if (c) { jump(c); }
  }

  function killSession(button) {
    if (!window.confirm(S.confirm_kill)) { return; }
    button.disabled = true;
    window.cloudsoc.api("POST", api + "/kill").then(function () {
      button.textContent = S.kill_sent;
    }).catch(function (err) { button.disabled = false; showError(err); });
  }

  X.get(api).then(function (data) {
    const s = data.session;
    const dl = document.getElementById("bs-facts");
    fact(dl, S.user, s.user);
    fact(dl, S.target, s.system_user + "@" + s.target);
    fact(dl, S.source_ip, s.source_ip);
    fact(dl, S.kind, s.kind);
    fact(dl, S.started, X.fmtTime(s.started, zone));
    fact(dl, S.ended, s.ended ? X.fmtTime(s.ended, zone) : S.live);
    fact(dl, S.status, s.live ? S.live : s.status);
    fact(dl, S.duration, data.duration === null ? "" : mmss(data.duration));
    fact(dl, S.session_commands, String(s.commands));
    fact(dl, S.bytes, s.bytes_in.toLocaleString() + " / " + s.bytes_out.toLocaleString());
    const kill = document.getElementById("bs-kill");
    if (kill && s.live) {
      kill.hidden = false;
      kill.addEventListener("click", function () { killSession(kill); });
    }
    commands = data.commands;
    commandTable(commands);
    if (data.duration === null) {
      showError(new Error(S.no_recording));
      document.getElementById("bs-player").hidden = true;
      root.dataset.state = "none";
      return null;
    }
    duration = data.duration;
    seek.max = String(duration);
    const start = Number(new URLSearchParams(window.location.search).get("t") || "0");
    return seekTo(isFinite(start) ? start : 0).then(function () { setPlaying(false); root.dataset.ready = "true"; });
  }).catch(showError);

  playButton.addEventListener("click", togglePlay);
  document.querySelectorAll(".bs-speed").forEach(function (b) {
    b.addEventListener("click", function () {
      speed = Number(b.dataset.speed);
      document.querySelectorAll(".bs-speed").forEach(function (o) { o.setAttribute("aria-pressed", String(o === b)); });
    });
  });
  seek.addEventListener("input", function () { seekTo(Number(seek.value)); });
  document.getElementById("bs-next-cmd").addEventListener("click", nextCommand);
})();
