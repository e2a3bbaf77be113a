/* Earshot reviewer page: waveform player, transcript diff, grading, flags, skip, keyboard shortcuts.
 *
 * No external requests and no inline script (CSP). The audio is fetched once per page through a
 * single-use URL (POST .../media), kept only as an in-memory blob for replay, and dropped when the
 * task ends. The server decides whether the snippet was heard (POST .../played is refused before the
 * audio could have been played through); the page also requires ~90 % of it to have actually played.
 */
(function () {
  "use strict";

  const root = document.getElementById("task");
  if (!root) return;

  const id = root.dataset.assignment;
  const duration = parseFloat(root.dataset.duration) || 0;
  const csrf = root.dataset.csrf;
  const pollMs = parseInt(root.dataset.pollMs, 10) || 3000;
  const maxSpeed = parseFloat(root.dataset.maxSpeed) || 2;
  const SPEEDS = [0.5, 0.75, 1, 1.25, 1.5, 2].filter((s) => s <= maxSpeed);
  const BUCKET = 0.1; // seconds per coverage bucket
  const COVERAGE = 0.9; // share of the snippet that must actually have played

  const $ = (sel) => document.getElementById(sel);
  const statusEl = $("status");
  const textarea = $("transcript");
  const original = textarea.dataset.original || "";
  const submitBtn = $("submit");
  const confirmBox = $("confirm");

  let speedIdx = SPEEDS.indexOf(1);
  let player = null; // {play, pause, isPlaying, seekTo(s), time(), setRate(r), destroy()}
  let loading = null;
  let blobUrl = null;
  let played = root.dataset.played === "true";
  let reporting = false;
  let gone = false;
  let busy = false;
  let lastT = null;
  const heard = new Set();
  let span = [];
  let pendingConfirm = null;
  let skipMode = false;

  function say(text, kind) {
    statusEl.textContent = text;
    statusEl.className = "status" + (kind ? " " + kind : "");
  }

  function post(path, body) {
    return fetch(path, {
      method: "POST",
      credentials: "same-origin",
      cache: "no-store",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body || {}),
    });
  }

  async function detail(resp) {
    try {
      const data = await resp.json();
      return typeof data.detail === "string" ? data.detail : resp.statusText;
    } catch (_e) {
      return resp.statusText || String(resp.status);
    }
  }

  // -- audio -------------------------------------------------------------------------------------
  function adopt(shadow, css) {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(css);
    shadow.adoptedStyleSheets = [...shadow.adoptedStyleSheets, sheet];
  }

  function createWaveSurfer(options) {
    // wavesurfer renders into a shadow root whose markup starts with an inline <style>, which the CSP
    // (no inline styles) would block. While it builds its DOM, shadow roots strip that element and adopt
    // the same rules as a constructable style sheet, which is not an inline style.
    const proto = Element.prototype;
    const original = proto.attachShadow;
    const inner = Object.getOwnPropertyDescriptor(ShadowRoot.prototype, "innerHTML");
    if (!inner || !("adoptedStyleSheets" in ShadowRoot.prototype)) return window.WaveSurfer.create(options);
    proto.attachShadow = function (init) {
      const shadow = original.call(this, init);
      Object.defineProperty(shadow, "innerHTML", {
        configurable: true,
        get: () => inner.get.call(shadow),
        set: (html) => {
          const markup = String(html).replace(/<style[^>]*>([\s\S]*?)<\/style>/g, (_m, css) => {
            adopt(shadow, css);
            return "";
          });
          inner.set.call(shadow, markup);
        },
      });
      return shadow;
    };
    try {
      return window.WaveSurfer.create(options);
    } finally {
      proto.attachShadow = original;
    }
  }

  async function peaksOf(buffer) {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return null;
    const ctx = new Ctx();
    try {
      const decoded = await ctx.decodeAudioData(buffer);
      return { peaks: [decoded.getChannelData(0)], duration: decoded.duration };
    } catch (_e) {
      return null;
    } finally {
      if (ctx.close) ctx.close();
    }
  }

  function makePlayer(url, decoded) {
    if (window.WaveSurfer) {
      const ws = createWaveSurfer({
        container: $("waveform"),
        height: 96,
        waveColor: "#8aa9c9",
        progressColor: "#0b5cad",
        cursorColor: "#1b1b1b",
        normalize: true,
        dragToSeek: true,
      });
      const ready = decoded ? ws.load(url, decoded.peaks, decoded.duration) : ws.load(url);
      ws.on("timeupdate", (t) => onTime(t, ws.isPlaying()));
      ws.on("finish", onFinish);
      ws.on("play", () => ($("play").firstChild.textContent = "Pause "));
      ws.on("pause", () => ($("play").firstChild.textContent = "Play "));
      ws.on("interaction", () => (lastT = null));
      return ready.then(() => ({
        play: () => ws.play(),
        pause: () => ws.pause(),
        isPlaying: () => ws.isPlaying(),
        seekTo: (s) => ws.setTime(Math.max(0, Math.min(s, ws.getDuration()))),
        time: () => ws.getCurrentTime(),
        setRate: (r) => ws.setPlaybackRate(r, true),
        destroy: () => ws.destroy(),
      }));
    }
    const audio = new Audio();
    audio.preload = "auto";
    audio.src = url;
    audio.addEventListener("timeupdate", () => onTime(audio.currentTime, !audio.paused));
    audio.addEventListener("ended", onFinish);
    return Promise.resolve({
      play: () => audio.play(),
      pause: () => audio.pause(),
      isPlaying: () => !audio.paused,
      seekTo: (s) => (audio.currentTime = Math.max(0, s)),
      time: () => audio.currentTime,
      setRate: (r) => (audio.playbackRate = r),
      destroy: () => audio.removeAttribute("src"),
    });
  }

  async function ensurePlayer() {
    if (player) return player;
    if (loading) return loading;
    loading = (async () => {
      say("Loading audio…");
      const issued = await post(`/api/v1/tasks/${id}/media`);
      if (!issued.ok) throw new Error(await detail(issued));
      const { url } = await issued.json();
      const resp = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (!resp.ok) throw new Error(await detail(resp));
      const buffer = await resp.arrayBuffer();
      blobUrl = URL.createObjectURL(new Blob([buffer], { type: "audio/wav" }));
      const decoded = await peaksOf(buffer.slice(0));
      player = await makePlayer(blobUrl, decoded);
      player.setRate(SPEEDS[speedIdx]);
      return player;
    })();
    try {
      return await loading;
    } catch (e) {
      loading = null;
      say("Audio unavailable: " + e.message, "bad");
      throw e;
    }
  }

  function onTime(t, playing) {
    $("time").textContent = `${t.toFixed(1)} / ${duration.toFixed(1)} s`;
    if (playing && lastT !== null && t > lastT && t - lastT < 0.75) {
      for (let b = Math.floor(lastT / BUCKET); b <= Math.floor(t / BUCKET); b++) heard.add(b);
    }
    lastT = playing ? t : null;
  }

  function coverage() {
    const buckets = Math.max(1, Math.ceil(duration / BUCKET));
    return Math.min(1, heard.size / buckets);
  }

  async function onFinish() {
    lastT = null;
    if (played || gone) return;
    if (coverage() < COVERAGE) {
      say("Parts were skipped: play the snippet through once before submitting.", "bad");
      return;
    }
    await reportPlayed(3);
  }

  async function reportPlayed(tries) {
    if (reporting) return;
    reporting = true;
    try {
      for (let i = 0; i < tries; i++) {
        const r = await post(`/api/v1/tasks/${id}/played`);
        if (r.status === 204) {
          markPlayed();
          return;
        }
        if (r.status === 404) return withdrawn();
        await new Promise((ok) => setTimeout(ok, 1000));
      }
      say("The server has not accepted the playback yet; play it again.", "bad");
    } finally {
      reporting = false;
    }
  }

  function markPlayed() {
    played = true;
    submitBtn.disabled = false;
    $("heard").textContent = "heard to the end ✓";
    $("heard").classList.add("ok");
    $("submit-hint").textContent = "";
    say("Heard to the end. Correct the transcript, grade, and submit (Ctrl+Enter).");
  }

  async function togglePlay() {
    if (gone) return;
    const p = await ensurePlayer();
    if (p.isPlaying()) {
      p.pause();
      say("Paused.");
    } else {
      lastT = null;
      await p.play();
      say("Playing…");
    }
  }

  async function replay() {
    if (gone) return;
    const p = await ensurePlayer();
    lastT = null;
    p.seekTo(0);
    await p.play();
    say("Playing from the start…");
  }

  async function seekBy(delta) {
    if (!player) return;
    lastT = null;
    player.seekTo(player.time() + delta);
  }

  function setSpeed(step) {
    speedIdx = Math.max(0, Math.min(SPEEDS.length - 1, speedIdx + step));
    $("speed").textContent = SPEEDS[speedIdx] + "×";
    if (player) player.setRate(SPEEDS[speedIdx]);
  }

  // -- transcript diff ---------------------------------------------------------------------------
  function diffWords(a, b) {
    const n = a.length;
    const m = b.length;
    const lcs = Array.from({ length: n + 1 }, () => new Uint16Array(m + 1));
    for (let i = n - 1; i >= 0; i--)
      for (let j = m - 1; j >= 0; j--)
        lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    const ops = [];
    let i = 0;
    let j = 0;
    while (i < n && j < m) {
      if (a[i] === b[j]) {
        ops.push(["same", a[i]]);
        i++;
        j++;
      } else if (lcs[i + 1][j] >= lcs[i][j + 1]) ops.push(["del", a[i++]]);
      else ops.push(["ins", b[j++]]);
    }
    while (i < n) ops.push(["del", a[i++]]);
    while (j < m) ops.push(["ins", b[j++]]);
    return ops;
  }

  function renderDiff() {
    const box = $("diff");
    const words = (s) => s.split(/\s+/).filter(Boolean);
    const ops = diffWords(words(original), words(textarea.value));
    box.replaceChildren();
    let changes = 0;
    for (const [op, word] of ops) {
      const el = document.createElement(op === "same" ? "span" : op);
      el.textContent = word;
      if (op !== "same") changes++;
      box.append(el, " ");
    }
    box.dataset.changes = String(changes);
    if (!ops.length) box.textContent = "(empty)";
  }

  // -- grade, flags, skip ------------------------------------------------------------------------
  function radio(name, value) {
    const el = document.querySelector(`input[name="${name}"][value="${value}"]`);
    if (el) el.checked = true;
  }

  function chosen(name) {
    const el = document.querySelector(`input[name="${name}"]:checked`);
    return el ? el.value : null;
  }

  function leave(message) {
    busy = true;
    if (player) player.pause();
    say(message);
    setTimeout(() => window.location.assign("/review"), 600);
  }

  async function submit() {
    if (busy || gone) return;
    if (!played) {
      say("Play the snippet to the end first.", "bad");
      return;
    }
    const accuracy = chosen("accuracy");
    if (!accuracy) {
      say("Choose an accuracy grade (1–5).", "bad");
      return;
    }
    const intent = chosen("intent_correct");
    const flags = ["flag-unintelligible", "flag-other-language"].filter((f) => $(f).checked).map((f) => $(f).value);
    busy = true;
    const r = await post(`/api/v1/tasks/${id}/grade`, {
      transcript: textarea.value,
      accuracy: parseInt(accuracy, 10),
      intent_correct: intent === null ? null : intent === "yes",
      flags,
    });
    busy = false;
    if (r.status === 201) return leave("Submitted. Next snippet…");
    if (r.status === 404) return withdrawn();
    say("Not submitted: " + (await detail(r)), "bad");
  }

  function ask(text, action) {
    pendingConfirm = action;
    $("confirm-text").textContent = text;
    confirmBox.hidden = false;
    $("confirm-yes").focus();
  }

  function answer(yes) {
    const action = pendingConfirm;
    pendingConfirm = null;
    confirmBox.hidden = true;
    if (yes && action) action();
  }

  async function flag(kind, body) {
    if (busy || gone) return;
    if (!player && !played) {
      say("Listen to the snippet before flagging it.", "bad");
      return;
    }
    busy = true;
    const r = await post(`/api/v1/tasks/${id}/flag`, Object.assign({ kind }, body || {}));
    busy = false;
    if (r.ok) {
      const out = await r.json();
      return leave(`Flagged (${out.outcome.replace(/_/g, " ")}). Next snippet…`);
    }
    if (r.status === 404) return withdrawn();
    say("Not flagged: " + (await detail(r)), "bad");
  }

  function markSpan() {
    if (!player) return say("Play the snippet first, then mark where the personal data is.", "bad");
    const t = Math.round(player.time() * 100) / 100;
    span = span.length === 1 ? [Math.min(span[0], t), Math.max(span[0], t)] : [t];
    $("span").textContent =
      span.length === 1 ? `start ${span[0].toFixed(2)} s — press M again at the end` : `span ${span[0].toFixed(2)}–${span[1].toFixed(2)} s`;
  }

  function flagPersonal() {
    if (span.length !== 2 || span[1] <= span[0]) {
      say("Mark the span first: M at its start, M at its end.", "bad");
      return;
    }
    const edited = textarea.value.trim() !== original.trim();
    const body = { start_s: span[0], end_s: span[1] };
    if (edited) body.masked_transcript = textarea.value; // only mask tokens such as [OTHER] may differ
    ask(`Report personal data between ${span[0].toFixed(2)} and ${span[1].toFixed(2)} s? It is bleeped before anyone else hears it` +
      (edited ? ", and the transcript is replaced by your masked version." : "."),
      () => flag("personal_data", body));
  }

  async function skip() {
    const reason = $("skip-reason").value;
    if (!reason) {
      say("Choose a reason to skip (K, then its number).", "bad");
      return;
    }
    if (busy || gone) return;
    busy = true;
    const r = await post(`/api/v1/tasks/${id}/skip`, { reason });
    busy = false;
    if (r.status === 204) return leave("Skipped. Next snippet…");
    if (r.status === 404) return withdrawn();
    say("Not skipped: " + (await detail(r)), "bad");
  }

  function askSkip() {
    const sel = $("skip-reason");
    if (!sel.value) return say("Choose a reason to skip (K, then its number).", "bad");
    ask(`Skip this snippet (${sel.options[sel.selectedIndex].text})?`, skip);
  }

  // -- withdrawal --------------------------------------------------------------------------------
  function withdrawn() {
    if (gone) return;
    gone = true;
    if (player) {
      player.pause();
      player.destroy();
    }
    if (blobUrl) URL.revokeObjectURL(blobUrl);
    player = null;
    root.classList.add("withdrawn");
    submitBtn.disabled = true;
    say("This snippet was withdrawn (flagged by another reviewer, or the lease ended). Loading the next one…", "bad");
    setTimeout(() => window.location.assign("/review"), 2500);
  }

  async function poll() {
    if (gone || busy) return;
    try {
      const r = await fetch(`/api/v1/tasks/${id}`, { credentials: "same-origin", cache: "no-store" });
      if (r.ok && (await r.json()).state !== "active") withdrawn();
    } catch (_e) {
      /* offline for a moment: try again at the next tick */
    }
  }

  // -- keyboard ----------------------------------------------------------------------------------
  function onKey(e) {
    if (gone) return;
    if (!confirmBox.hidden) {
      if (e.key === "Enter") answer(true);
      else if (e.key === "Escape") answer(false);
      else return;
      e.preventDefault();
      return;
    }
    if ((e.ctrlKey || e.metaKey) && e.key === "Enter") {
      e.preventDefault();
      submit();
      return;
    }
    if (e.ctrlKey && (e.key === " " || e.code === "Space")) {
      e.preventDefault();
      togglePlay();
      return;
    }
    const t = e.target;
    const editing = t && (t.tagName === "TEXTAREA" || (t.tagName === "INPUT" && t.type === "text"));
    if (editing) {
      if (e.key === "Escape") {
        e.preventDefault();
        t.blur();
        root.focus();
      }
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (skipMode) {
      skipMode = false;
      const sel = $("skip-reason");
      const n = parseInt(e.key, 10);
      if (n >= 1 && n < sel.options.length) {
        e.preventDefault();
        sel.selectedIndex = n;
        askSkip();
      } else {
        say("Skip cancelled.");
      }
      return;
    }
    const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
    const actions = {
      " ": togglePlay,
      r: replay,
      ArrowLeft: () => seekBy(-1),
      ArrowRight: () => seekBy(1),
      "[": () => setSpeed(-1),
      "]": () => setSpeed(1),
      e: () => {
        textarea.focus();
        textarea.setSelectionRange(textarea.value.length, textarea.value.length);
      },
      y: () => radio("intent_correct", "yes"),
      n: () => radio("intent_correct", "no"),
      u: () => ($("flag-unintelligible").checked = !$("flag-unintelligible").checked),
      l: () => ($("flag-other-language").checked = !$("flag-other-language").checked),
      s: () => ask("Flag SENSITIVE content? The snippet leaves every reviewer's queue at once and goes to a lead.",
        () => flag("sensitive")),
      a: () => ask("Flag as an accidental activation? It is deleted once a second grader or a lead confirms.",
        () => flag("accidental")),
      m: markSpan,
      p: flagPersonal,
      k: () => {
        skipMode = true;
        say("Skip: press the number of the reason (1–5), any other key cancels.");
      },
      "?": () => ($("help").hidden = !$("help").hidden),
    };
    if (/^[1-5]$/.test(key)) {
      e.preventDefault();
      radio("accuracy", key);
      return;
    }
    const action = actions[key];
    if (action) {
      e.preventDefault();
      action();
    }
  }

  // -- wiring ------------------------------------------------------------------------------------
  root.tabIndex = -1;
  document.addEventListener("keydown", onKey);
  textarea.addEventListener("input", renderDiff);
  $("play").addEventListener("click", togglePlay);
  $("replay").addEventListener("click", replay);
  $("slower").addEventListener("click", () => setSpeed(-1));
  $("faster").addEventListener("click", () => setSpeed(1));
  $("grade-form").addEventListener("submit", (e) => {
    e.preventDefault();
    submit();
  });
  $("flag-sensitive").addEventListener("click", () =>
    ask("Flag SENSITIVE content? The snippet leaves every reviewer's queue at once and goes to a lead.", () => flag("sensitive")));
  $("flag-accidental").addEventListener("click", () =>
    ask("Flag as an accidental activation? It is deleted once a second grader or a lead confirms.", () => flag("accidental")));
  $("mark-span").addEventListener("click", markSpan);
  $("flag-personal").addEventListener("click", flagPersonal);
  $("skip").addEventListener("click", askSkip);
  $("confirm-yes").addEventListener("click", () => answer(true));
  $("confirm-no").addEventListener("click", () => answer(false));
  renderDiff();
  if (played) markPlayed();
  setInterval(poll, pollMs);
})();
