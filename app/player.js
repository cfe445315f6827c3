// CARL Studio's synchronised player: video B follows video A frame by frame through the DTW
// mapping (or A follows B). Mounted by app/player.py as a Streamlit components.v2 component.
//
// Everything is indexed by embedding samples: leader time -> the leader's sample i (the last
// sample at or before that time) -> the follower's matched sample j (mapping[i]) -> the
// follower's media time of j. sync() runs on every frame the leader presents
// (requestVideoFrameCallback) and on every seek, step or scrub:
// - at rest (paused, stepped, scrubbed), the follower is placed: an exact seek to the matched
//   frame, so a still shows matched frames;
// - while the leader plays, the follower plays too, at the mapping's local slope times the
//   leader's rate, steered against its drift from where the mapping says it should be: its
//   rate nudged, a seek ahead (by what a seek takes) when far behind or far off, a pause on
//   the matched frame where the mapping holds (slope near 0). Seeking on every frame cannot
//   keep up with large files, which decode from a keyframe on each seek.
// Python hears the position when playback rests (debounced), and media errors, so it can serve
// a proxy file.

const SPEEDS = [0.1, 0.25, 0.5, 1, 1.5, 2];
const HTML = `
  <div class="cp-videos">
    <figure class="cp-fig"><div class="cp-tag cp-tag-a">A</div><video class="cp-a" muted playsinline preload="auto"></video>
      <figcaption class="cp-cap-a"></figcaption></figure>
    <figure class="cp-fig"><div class="cp-tag cp-tag-b">B</div><video class="cp-b" muted playsinline preload="auto"></video>
      <figcaption class="cp-cap-b"></figcaption></figure>
  </div>
  <canvas class="cp-strip" height="34" title="Match confidence (estimated probability that the match is right) along the leader's timeline; grey: no match, dark: blank frames; click to jump"></canvas>
  <input class="cp-scrub" type="range" min="0" max="0" step="1" value="0" aria-label="Position">
  <div class="cp-bar">
    <button class="cp-back" title="Previous frame (Left arrow)">◀ Frame</button>
    <button class="cp-play" title="Play / pause (Space)">▶ Play</button>
    <button class="cp-next" title="Next frame (Right arrow)">Frame ▶</button>
    <label>Speed <select class="cp-speed"></select></label>
    <button class="cp-swap" title="Swap which video leads (S)">⇄ B leads</button>
    <span class="cp-conf"></span>
    <span class="cp-msg"></span>
  </div>`;

function lastAtOrBefore(times, t) {
  // Largest i with times[i] <= t (+ a hair for rounding); 0 before the first sample.
  let lo = 0, hi = times.length - 1;
  if (!(t >= times[0])) return 0;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (times[mid] <= t + 1e-4) lo = mid; else hi = mid - 1;
  }
  return lo;
}

function fmt(t) {
  const m = Math.floor(t / 60), s = t - 60 * m;
  return `${m}:${s.toFixed(2).padStart(5, "0")}`;
}

function confColour(c) {
  // red (likely wrong) -> amber (a coin toss) -> green (likely right): the calibrated
  // probability that the match is right (carl_core.confidence), not a similarity
  const x = Math.max(0, Math.min(1, c));
  const hue = 120 * x;
  return `hsl(${hue}, 70%, 42%)`;
}

function confText(S, i) {
  const k = S.leader;
  if (S.data[`blank_${k}`][i]) return ["blank frame: nothing to match", "#777"];
  if (!S.data[`covered_${k}`][i]) return ["no match (left out by the open ends)", "#777"];
  const c = conf(S)[i];
  return [`match confidence ${Math.round(100 * c)}%`, confColour(c)];
}

function setup(root, component) {
  root.innerHTML = HTML;
  const S = {
    root, leader: "a", data: null, seekNonce: null, lastReport: "", reportTimer: null,
    a: root.querySelector(".cp-a"), b: root.querySelector(".cp-b"), rvfc: null, pendingSeek: null,
    setStateValue: component.setStateValue, setTriggerValue: component.setTriggerValue,
  };
  root.__carl = S;
  const speed = root.querySelector(".cp-speed");
  for (const s of SPEEDS) {
    const o = document.createElement("option");
    o.value = String(s); o.textContent = `${s}×`; if (s === 1) o.selected = true;
    speed.appendChild(o);
  }
  const L = () => (S.leader === "a" ? S.a : S.b);
  const F = () => (S.leader === "a" ? S.b : S.a);
  S.L = L; S.F = F;

  const play = root.querySelector(".cp-play");
  const toggle = () => { const v = L(); if (v.paused) v.play().catch(() => {}); else v.pause(); };
  play.onclick = toggle;
  S.a.onclick = () => { if (S.leader === "a") toggle(); };
  S.b.onclick = () => { if (S.leader === "b") toggle(); };
  root.querySelector(".cp-back").onclick = () => step(S, -1);
  root.querySelector(".cp-next").onclick = () => step(S, +1);
  speed.onchange = () => { L().playbackRate = Number(speed.value); };
  root.querySelector(".cp-swap").onclick = () => swap(S);
  const scrub = root.querySelector(".cp-scrub");
  scrub.oninput = () => { L().pause(); seekLeader(S, Number(scrub.value)); };
  const strip = root.querySelector(".cp-strip");
  strip.onclick = (ev) => {
    const r = strip.getBoundingClientRect(), n = leaderTimes(S).length;
    L().pause(); seekLeader(S, Math.round(((ev.clientX - r.left) / r.width) * (n - 1)));
  };
  root.tabIndex = 0;
  root.onkeydown = (ev) => {
    if (ev.target && ev.target.tagName === "SELECT") return;
    if (ev.key === " ") { ev.preventDefault(); toggle(); }
    else if (ev.key === "ArrowLeft") { ev.preventDefault(); step(S, -1); }
    else if (ev.key === "ArrowRight") { ev.preventDefault(); step(S, +1); }
    else if (ev.key === "s" || ev.key === "S") swap(S);
  };
  for (const [v, name] of [[S.a, "a"], [S.b, "b"]]) {
    v.addEventListener("play", () => {
      if (v !== L()) return;
      play.textContent = "⏸ Pause";
      follow(S);
    });
    // "playing", not "play": the leader's frames really move now, so the follower starts with them.
    v.addEventListener("playing", () => { if (v === L()) startFollower(S); });
    v.addEventListener("pause", () => { if (v === L()) { play.textContent = "▶ Play"; sync(S, true); } });
    v.addEventListener("seeked", () => {
      if (v === L()) { sync(S, L().paused); return; }
      if (S.seekStart !== undefined) {
        const took = (performance.now() - S.seekStart) / 1000;
        S.seekLatency = S.seekLatency === undefined ? took : 0.7 * S.seekLatency + 0.3 * took;
        S.seekStart = undefined;
      }
      const want = S.wantTarget;
      S.wantTarget = undefined;
      if (want !== undefined && Math.abs(v.currentTime - want) > 1e-3) v.currentTime = want;
      else show(S);
    });
    v.addEventListener("loadedmetadata", () => { applyPendingSeek(S); sync(S, true); });
    v.addEventListener("error", () => {
      const code = v.error ? v.error.code : 0;
      root.querySelector(".cp-msg").textContent = `Video ${name.toUpperCase()} cannot play here (code ${code}); preparing a copy…`;
      S.setTriggerValue("media_error", name);
    });
  }
  window.addEventListener("resize", () => drawStrip(S));
  window.carlPlayer = S; // for the browser tests and for the curious
  return S;
}

function leaderTimes(S) { return S.data[S.leader].times; }
function followerKey(S) { return S.leader === "a" ? "b" : "a"; }
function mapping(S) { return S.leader === "a" ? S.data.a_to_b : S.data.b_to_a; }
function conf(S) { return S.leader === "a" ? S.data.conf_a : S.data.conf_b; }

// A hair into the frame, so the browser shows that frame and not the one before it.
function inside(S, key, j) {
  const d = S.data[key];
  return d.times[j] + Math.min(0.25 / Math.max(d.fps, 1), 0.004);
}

function seekLeader(S, i) {
  const n = leaderTimes(S).length;
  i = Math.max(0, Math.min(n - 1, i));
  S.L().currentTime = inside(S, S.leader, i);
  sync(S, true, i);
}

function step(S, delta) {
  const v = S.L();
  v.pause();
  const i = lastAtOrBefore(leaderTimes(S), v.currentTime);
  seekLeader(S, i + delta);
}

function swap(S) {
  S.a.pause();
  S.b.pause();
  S.leader = followerKey(S);
  S.root.querySelector(".cp-swap").textContent = S.leader === "a" ? "⇄ B leads" : "⇄ A leads";
  S.root.querySelector(".cp-scrub").max = String(leaderTimes(S).length - 1);
  S.L().playbackRate = Number(S.root.querySelector(".cp-speed").value);
  S.F().playbackRate = 1;
  sync(S, true);
  drawStrip(S);
}

// Place the follower at the frame matched to the leader's current one; update the read-outs.
// At rest (paused, stepped, scrubbed): an exact seek. While the leader plays, per-frame seeks
// cannot keep up with large files (a seek decodes from a keyframe: tenths of a second at 720p),
// so the follower plays too, at the local slope of the mapping times the leader's rate, and is
// steered: its rate is nudged against the drift; far behind, it seeks ahead by what a seek
// takes and waits there; a hold in the mapping (slope near 0) pauses it on the matched frame.
const BEHIND_SEEK = 0.6, AHEAD_HOLD = 0.2, AHEAD_MAX = 3, HORIZON = 0.5, MIN_RATE = 0.0625, MAX_RATE = 16;

function slopeAt(S, i) {
  const lt = leaderTimes(S), ft = S.data[followerKey(S)].times, map = mapping(S);
  let k = i;
  while (k + 1 < lt.length && lt[k] - lt[i] < HORIZON) k++;
  if (k === i) return 0;
  return (ft[map[k]] - ft[map[i]]) / (lt[k] - lt[i]);
}

function place(S, F, target) {
  if (F.seeking) {
    // A new seek would abort the one under way; the follower goes to the latest target when
    // this one lands (see "seeked").
    S.wantTarget = target;
  } else if (Math.abs(F.currentTime - target) > 1e-3) {
    S.wantTarget = undefined;
    S.seekStart = performance.now();
    F.currentTime = target;
  }
}

// Seconds a seek of the follower takes (moving average): while playing, a seek aims that far ahead.
function seekLatency(S) { return S.seekLatency === undefined ? 0.15 : S.seekLatency; }

// The leader starts: start the follower with it, at the mapping's pace, rather than wait for
// the leader's first frame (by then the follower would be behind and need a seek).
function startFollower(S) {
  const L = S.L(), F = S.F();
  const i = lastAtOrBefore(leaderTimes(S), L.currentTime);
  const base = slopeAt(S, i) * L.playbackRate;
  if (base >= MIN_RATE && !F.seeking) {
    F.playbackRate = Math.min(MAX_RATE, base);
    F.play().catch(() => {});
  }
}

function sync(S, settled, knownIndex) {
  if (!S.data) return;
  const L = S.L(), F = S.F();
  const lt = leaderTimes(S);
  const playing = !L.paused && !L.ended;
  const t = playing && S.mediaTime !== undefined ? S.mediaTime : L.currentTime;
  const i = knownIndex !== undefined ? knownIndex : lastAtOrBefore(lt, t);
  const j = mapping(S)[i];
  const fk = followerKey(S);
  const target = inside(S, fk, j);
  if (!playing) {
    if (!F.paused) F.pause();
    place(S, F, target);
  } else {
    // Where the follower should be now, between matched samples, and how fast it should go.
    const slope = slopeAt(S, i);
    const exact = S.data[fk].times[j] + slope * Math.max(0, t - lt[i]);
    const drift = F.currentTime - exact;
    const base = slope * L.playbackRate;
    if (base < MIN_RATE) {
      if (!F.paused) F.pause();
      place(S, F, target);
    } else if (F.seeking) {
      // landing: nothing to steer yet
    } else if (drift < -Math.max(BEHIND_SEEK, 0.4 * base) || drift > AHEAD_MAX) {
      // Far behind (steering would take too long) or far off: seek ahead by what a seek takes,
      // then wait there for the leader.
      if (!F.paused) F.pause();
      place(S, F, exact + Math.min(AHEAD_MAX, base * Math.min(0.5, seekLatency(S))));
    } else if (drift > AHEAD_HOLD && F.paused) {
      // Landed ahead: hold still until the leader catches up.
    } else {
      const rate = base * (1 - Math.max(-0.5, Math.min(0.5, drift / HORIZON)));
      F.playbackRate = Math.max(MIN_RATE, Math.min(MAX_RATE, rate));
      if (F.paused && !F.seeking) F.play().catch(() => {});
    }
  }
  S.pos = { leader: S.leader, [S.leader]: i, [fk]: j };
  show(S);
  if (settled) report(S);
}

function show(S) {
  if (!S.pos || !S.data) return;
  const root = S.root, d = S.data;
  for (const k of ["a", "b"]) {
    const idx = S.pos[k];
    const frame = d[k].frames[idx];
    const lead = S.leader === k ? " · leads" : "";
    root.querySelector(`.cp-cap-${k}`).textContent =
      `${k.toUpperCase()} · ${d[k].name} — frame ${frame} / ${d[k].num_frames - 1} · ${fmt(d[k].times[idx])}${lead}`;
  }
  const [text, colour] = confText(S, S.pos[S.leader]);
  const el = root.querySelector(".cp-conf");
  el.textContent = text;
  el.style.color = colour;
  const scrub = root.querySelector(".cp-scrub");
  scrub.max = String(leaderTimes(S).length - 1);
  scrub.value = String(S.pos[S.leader]);
  drawCursor(S);
}

// While the leader plays: follow every frame it presents.
function follow(S) {
  const L = S.L();
  if (L.requestVideoFrameCallback) {
    const tick = (now, meta) => {
      if (L !== S.L()) return;
      S.mediaTime = meta.mediaTime;
      sync(S, false);
      if (!L.paused) L.requestVideoFrameCallback(tick);
      else S.mediaTime = undefined;
    };
    L.requestVideoFrameCallback(tick);
  } else {
    const tick = () => { if (L === S.L() && !L.paused) { sync(S, false); requestAnimationFrame(tick); } };
    requestAnimationFrame(tick);
  }
}

// Tell Python where playback rests (for the heatmap marker and "use the player's frame").
function report(S) {
  clearTimeout(S.reportTimer);
  S.reportTimer = setTimeout(() => {
    if (!S.L().paused || !S.pos) return;
    const msg = JSON.stringify(S.pos);
    if (msg === S.lastReport) return;
    S.lastReport = msg;
    S.setStateValue("position", S.pos);
  }, 400);
}

function drawStrip(S) {
  const cv = S.root.querySelector(".cp-strip");
  if (!S.data) return;
  const w = (cv.width = Math.max(100, Math.floor(cv.clientWidth || 600)));
  const h = cv.height;
  const g = cv.getContext("2d");
  g.clearRect(0, 0, w, h);
  const c = conf(S), cov = S.data[`covered_${S.leader}`], blank = S.data[`blank_${S.leader}`], n = c.length;
  for (let x = 0; x < w; x++) {
    const i = Math.min(n - 1, Math.floor((x / w) * n));
    const v = Math.max(0, Math.min(1, c[i]));
    if (blank[i]) {
      g.fillStyle = "#333"; // blank frames: a dark band the full height
      g.fillRect(x, 0, 1, h);
      continue;
    }
    g.fillStyle = cov[i] ? confColour(v) : "#bbb";
    const bar = Math.max(2, Math.round(v * (h - 4)));
    g.fillRect(x, h - bar, 1, bar);
  }
  S.stripImage = g.getImageData(0, 0, w, h);
  drawCursor(S);
}

function drawCursor(S) {
  const cv = S.root.querySelector(".cp-strip");
  if (!S.stripImage || !S.pos) return;
  const g = cv.getContext("2d");
  g.putImageData(S.stripImage, 0, 0);
  const n = leaderTimes(S).length;
  const x = Math.round((S.pos[S.leader] / Math.max(1, n - 1)) * (cv.width - 1));
  g.fillStyle = "#111";
  g.fillRect(x - 1, 0, 3, cv.height);
}

function applyPendingSeek(S) {
  const s = S.pendingSeek;
  if (!s) return;
  const v = s.video === "a" ? S.a : S.b;
  if (v.readyState < 1) return; // metadata not there yet: loadedmetadata retries
  S.pendingSeek = null;
  if (S.leader !== s.video) swap(S);
  S.L().pause();
  seekLeader(S, s.index);
}

export default function (component) {
  const { data, parentElement } = component;
  let root = parentElement.querySelector(".carl-player");
  if (!root) {
    root = document.createElement("div");
    root.className = "carl-player";
    parentElement.appendChild(root);
  }
  const S = root.__carl || setup(root, component);
  S.setStateValue = component.setStateValue;
  S.setTriggerValue = component.setTriggerValue;
  S.data = data;
  let changed = false;
  for (const k of ["a", "b"]) {
    const v = S[k];
    if (v.getAttribute("src") !== data[k].url) {
      v.setAttribute("src", data[k].url);
      v.load();
      changed = true;
    }
  }
  if (changed && S.leader !== "a") swap(S); // new videos: A leads again, from the start
  if (changed) S.lastReport = "";
  if (data.seek && data.seek.nonce !== S.seekNonce) {
    S.seekNonce = data.seek.nonce;
    S.pendingSeek = data.seek;
    applyPendingSeek(S);
  }
  root.querySelector(".cp-msg").textContent = data.note || "";
  sync(S, false);
  drawStrip(S);
}
