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
//   rate nudged, a seek ahead when far behind, a pause on the matched frame where the mapping
//   holds (slope near 0). Seeking on every frame cannot keep up with large files, which
//   decode from a keyframe on each seek.
// - Where the mapping jumps ahead (a cut: DTW skips a stretch of the follower, as it must
//   many times a second when the follower is much longer than the leader), playing through
//   would leave the follower behind and a seek would freeze it. So each video has a second,
//   hidden element: it waits at the frame after the next cut, seeked in advance, and takes
//   over at the cut (it is shown and plays on, the other hides and becomes the spare).
// Each video can show the body pose the model read (a canvas over it, letterboxed like the
// video). Python hears the position when playback rests (debounced), tagged with the pair it
// belongs to, and media errors, so it can serve a proxy file.

const SPEEDS = [0.1, 0.25, 0.5, 1, 1.5, 2];
// Icons drawn, not typed: Debian's Chromium has no font with the pause sign (U+23F8).
const ICON_PLAY = '<svg class="cp-icon" viewBox="0 0 16 16" aria-hidden="true"><path d="M4 2.5v11l9-5.5z"/></svg>';
const ICON_PAUSE =
  '<svg class="cp-icon" viewBox="0 0 16 16" aria-hidden="true"><path d="M3.5 2.5h3v11h-3zM9.5 2.5h3v11h-3z"/></svg>';
const stage = (k) => `
    <figure class="cp-fig"><div class="cp-tag cp-tag-${k}">${k.toUpperCase()}</div>
      <div class="cp-stage">
        <video class="cp-${k} cp-shown" muted playsinline preload="auto"></video>
        <video class="cp-${k}-spare cp-spare" muted playsinline preload="auto"></video>
        <canvas class="cp-skel cp-skel-${k}"></canvas>
      </div>
      <figcaption class="cp-cap-${k}"></figcaption></figure>`;
const HTML = `
  <div class="cp-videos">${stage("a")}${stage("b")}</div>
  <canvas class="cp-strip" height="34" title="Match confidence (estimated probability that the match is right) along the leader's timeline; grey: no match, dark: blank frames; click to jump"></canvas>
  <input class="cp-scrub" type="range" min="0" max="0" step="1" value="0" aria-label="Position">
  <div class="cp-bar">
    <button class="cp-back" title="Previous frame (Left arrow)">◀ Frame</button>
    <button class="cp-play" title="Play / pause (Space)">${ICON_PLAY}<span>Play</span></button>
    <button class="cp-next" title="Next frame (Right arrow)">Frame ▶</button>
    <label>Speed <select class="cp-speed"></select></label>
    <button class="cp-swap" title="Swap which video leads (S)">⇄ B leads</button>
    <label class="cp-skel-toggle" title="Draw the body pose the model read: solid where found, dashed where filled in between"><input type="checkbox" class="cp-skel-on"> Skeleton</label>
    <span class="cp-conf"></span>
    <span class="cp-msg"></span>
  </div>`;

// The bones drawn (carl_core.skeleton.CONNECTIONS, sent by Python as data.bones).
const SKELETON_COLOUR = { a: "#7fdbff", b: "#ffb3b3" };

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
  // Two elements a video: the one shown and a spare (see the header). S.a and S.b are the shown ones.
  const S = {
    root, leader: "a", data: null, seekNonce: null, lastReport: "", reportTimer: null,
    el: {
      a: [root.querySelector(".cp-a"), root.querySelector(".cp-a-spare")],
      b: [root.querySelector(".cp-b"), root.querySelector(".cp-b-spare")],
    },
    shown: { a: 0, b: 0 }, rvfc: null, pendingSeek: null, spareFor: null, spareReady: false,
    skeletonOn: null, skelDrawn: { a: null, b: null }, poses: { a: null, b: null },
    setStateValue: component.setStateValue, setTriggerValue: component.setTriggerValue,
  };
  Object.defineProperty(S, "a", { get: () => S.el.a[S.shown.a] });
  Object.defineProperty(S, "b", { get: () => S.el.b[S.shown.b] });
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
  const label = (playing) => { play.innerHTML = playing ? `${ICON_PAUSE}<span>Pause</span>` : `${ICON_PLAY}<span>Play</span>`; };
  play.onclick = toggle;
  root.querySelector(".cp-back").onclick = () => step(S, -1);
  root.querySelector(".cp-next").onclick = () => step(S, +1);
  speed.onchange = () => { L().playbackRate = Number(speed.value); };
  root.querySelector(".cp-swap").onclick = () => swap(S);
  const skel = root.querySelector(".cp-skel-on");
  skel.onchange = () => { S.skeletonOn = skel.checked; drawSkeletons(S); };
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
  for (const name of ["a", "b"]) {
    for (const v of S.el[name]) {
      v.onclick = () => { if (S.leader === name) toggle(); };
      v.addEventListener("play", () => {
        if (v !== L()) return;
        label(true);
        follow(S);
      });
      // "playing", not "play": the leader's frames really move now, so the follower starts with them.
      v.addEventListener("playing", () => { if (v === L()) startFollower(S); });
      v.addEventListener("pause", () => { if (v === L()) { label(false); sync(S, true); } });
      v.addEventListener("seeked", () => {
        if (v === L()) { sync(S, L().paused); return; }
        if (v !== F()) { // the spare, landed where the next cut goes
          S.spareReady = S.spareTarget !== undefined && Math.abs(v.currentTime - S.spareTarget) < 2e-3;
          return;
        }
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
      v.addEventListener("loadedmetadata", () => {
        if (v !== S[name]) return;
        applyPendingSeek(S);
        sync(S, true);
      });
      v.addEventListener("error", () => {
        if (v !== S[name]) return;
        const code = v.error ? v.error.code : 0;
        root.querySelector(".cp-msg").textContent = `Video ${name.toUpperCase()} cannot play here (code ${code}); preparing a copy…`;
        S.setTriggerValue("media_error", name);
      });
    }
  }
  window.addEventListener("resize", () => { drawStrip(S); drawSkeletons(S); });
  window.carlPlayer = S; // for the browser tests and for the curious
  return S;
}

function leaderTimes(S) { return S.data[S.leader].times; }
function followerKey(S) { return S.leader === "a" ? "b" : "a"; }
function mapping(S) { return S.leader === "a" ? S.data.a_to_b : S.data.b_to_a; }
function conf(S) { return S.leader === "a" ? S.data.conf_a : S.data.conf_b; }
function spare(S, k) { return S.el[k][1 - S.shown[k]]; }

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
  for (const k of ["a", "b"]) for (const v of S.el[k]) v.pause();
  S.spareFor = null;
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
// A jump in the mapping (a cut) is taken by the spare element, seeked there in advance.
const BEHIND_SEEK = 0.6, AHEAD_HOLD = 0.2, AHEAD_MAX = 3, HORIZON = 0.5, MIN_RATE = 0.0625, MAX_RATE = 16;
const CUT = 0.25; // s of the follower skipped beyond the mapping's pace: a cut, not a stretch to play through
const PREPARE = 2.5; // s of the leader's time: how far ahead of a cut its spare is placed

// The follower's media time of every leader sample, and the cuts: samples where it jumps
// ahead of the mapping's overall pace by more than CUT. Made again when the leader or data change.
function plan(S) {
  if (S.plan && S.plan.data === S.data && S.plan.leader === S.leader) return S.plan;
  const lt = leaderTimes(S), ft = S.data[followerKey(S)].times, map = mapping(S), n = lt.length;
  const f = new Float64Array(n), cuts = [];
  for (let i = 0; i < n; i++) f[i] = ft[map[i]];
  const pace = n > 1 && lt[n - 1] > lt[0] ? (f[n - 1] - f[0]) / (lt[n - 1] - lt[0]) : 0;
  for (let i = 1; i < n; i++) if (f[i] - f[i - 1] - pace * (lt[i] - lt[i - 1]) > CUT) cuts.push(i);
  S.plan = { data: S.data, leader: S.leader, f, cuts };
  return S.plan;
}

// The first cut after sample i (Infinity: none), and the last one at or before it (0: none).
function nextCut(P, i) {
  let lo = 0, hi = P.cuts.length;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (P.cuts[mid] > i) hi = mid; else lo = mid + 1; }
  return [lo < P.cuts.length ? P.cuts[lo] : Infinity, lo > 0 ? P.cuts[lo - 1] : 0];
}

// The follower's pace (its seconds per leader second) at sample i, within i's stretch between cuts.
function slopeAt(S, i) {
  const lt = leaderTimes(S), P = plan(S), [after, from] = nextCut(P, i);
  const end = Math.min(lt.length - 1, after - 1);
  let k = i;
  while (k < end && lt[k] - lt[i] < HORIZON) k++;
  if (k > i) return (P.f[k] - P.f[i]) / (lt[k] - lt[i]);
  if (i > from) return (P.f[i] - P.f[from]) / (lt[i] - lt[from]); // the stretch's last sample
  return 0; // a stretch of one sample: hold it until the next cut
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

// While playing: the spare waits at the next cut; past a cut it is ready for, it takes over.
function cutOver(S, i) {
  const P = plan(S), fk = followerKey(S), [after, from] = nextCut(P, i);
  if (S.spareFor !== null && S.spareFor === from && i >= from && S.spareReady) {
    const old = S.F(), next = spare(S, fk);
    S.shown[fk] = 1 - S.shown[fk];
    next.classList.replace("cp-spare", "cp-shown");
    old.classList.replace("cp-shown", "cp-spare");
    old.pause();
    S.spareFor = null;
    S.cuts = (S.cuts || 0) + 1;
  }
  const lt = leaderTimes(S);
  if (after !== Infinity && S.spareFor !== after && lt[after] - lt[i] < PREPARE) {
    const sp = spare(S, fk);
    S.spareFor = after;
    S.spareReady = false;
    S.spareTarget = inside(S, fk, mapping(S)[after]);
    if (!sp.paused) sp.pause();
    sp.currentTime = S.spareTarget;
  }
}

function sync(S, settled, knownIndex) {
  if (!S.data) return;
  const L = S.L();
  const lt = leaderTimes(S);
  const playing = !L.paused && !L.ended;
  const t = playing && S.mediaTime !== undefined ? S.mediaTime : L.currentTime;
  const i = knownIndex !== undefined ? knownIndex : lastAtOrBefore(lt, t);
  const j = mapping(S)[i];
  const fk = followerKey(S);
  const target = inside(S, fk, j);
  if (playing) cutOver(S, i);
  else S.spareFor = null;
  const F = S.F();
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
  S.pos = { leader: S.leader, [S.leader]: i, [fk]: j, pair: S.data.pair };
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
  drawSkeletons(S);
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

// --------------------------------------------------------------------------- the skeleton

// Landmarks of one video, decoded once per data: x, y (relative to the frame) as int16 / 8192,
// -32768 where unknown, base64; status per sample (0 missing, 1 found, 2 filled in).
function poseOf(S, k) {
  const p = S.data[k].pose;
  if (!p) return null;
  const cached = S.poses[k];
  if (cached && cached.src === p) return cached;
  const bytes = Uint8Array.from(atob(p.xy), (c) => c.charCodeAt(0));
  const xy = new Int16Array(bytes.buffer, 0, bytes.length >> 1);
  S.poses[k] = { src: p, xy, status: p.status, n: p.landmarks };
  return S.poses[k];
}

// The sample each video shows now: where playback rests, or, while playing, its own clock.
function shownSample(S, k) {
  const v = S[k], playing = !S.L().paused;
  if (!playing && S.pos) return S.pos[k];
  const t = k === S.leader && S.mediaTime !== undefined ? S.mediaTime : v.currentTime;
  return lastAtOrBefore(S.data[k].times, t);
}

function drawSkeletons(S) {
  if (!S.data) return;
  for (const k of ["a", "b"]) drawSkeleton(S, k);
}

function drawSkeleton(S, k) {
  const cv = S.root.querySelector(`.cp-skel-${k}`);
  const w = cv.clientWidth, h = cv.clientHeight, dpr = window.devicePixelRatio || 1;
  if (cv.width !== Math.round(w * dpr) || cv.height !== Math.round(h * dpr)) {
    cv.width = Math.round(w * dpr); cv.height = Math.round(h * dpr);
  }
  const g = cv.getContext("2d");
  g.setTransform(1, 0, 0, 1, 0, 0);
  g.clearRect(0, 0, cv.width, cv.height);
  S.skelDrawn[k] = null;
  const pose = poseOf(S, k);
  if (!pose || !S.skeletonOn || !S.pos) return;
  const i = shownSample(S, k), status = pose.status[i];
  S.skelDrawn[k] = { sample: i, bones: 0, dashed: status === 2 };
  if (!status) return; // nobody found in this frame: nothing drawn
  // Letterboxed like the video (object-fit: contain).
  const v = S[k], vw = v.videoWidth || S.data[k].pose.width, vh = v.videoHeight || S.data[k].pose.height;
  const scale = Math.min(w / vw, h / vh), ox = (w - vw * scale) / 2, oy = (h - vh * scale) / 2;
  const base = i * pose.n * 2, xy = pose.xy;
  const at = (m) => {
    const x = xy[base + 2 * m], y = xy[base + 2 * m + 1];
    return x === -32768 || y === -32768 ? null : [ox + (x / 8192) * vw * scale, oy + (y / 8192) * vh * scale];
  };
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.lineCap = "round";
  g.globalAlpha = status === 2 ? 0.6 : 1;
  g.setLineDash(status === 2 ? [5, 4] : []);
  let bones = 0;
  for (const [pass, colour, width] of [[0, "rgba(0,0,0,0.7)", 5], [1, SKELETON_COLOUR[k], 2.5]]) {
    g.strokeStyle = colour; g.lineWidth = width;
    g.beginPath();
    for (const [m, n] of S.data.bones) {
      const p = at(m), q = at(n);
      if (!p || !q) continue;
      g.moveTo(p[0], p[1]); g.lineTo(q[0], q[1]);
      if (pass) bones++;
    }
    g.stroke();
  }
  g.setLineDash([]);
  g.fillStyle = SKELETON_COLOUR[k];
  for (let m = 0; m < pose.n; m++) {
    const p = at(m);
    if (p) { g.beginPath(); g.arc(p[0], p[1], 2.5, 0, 2 * Math.PI); g.fill(); }
  }
  g.globalAlpha = 1;
  S.skelDrawn[k].bones = bones;
}

// --------------------------------------------------------------------------- the strip

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
  const newPair = !S.data || S.data.pair !== data.pair;
  S.data = data;
  let changed = false;
  for (const k of ["a", "b"]) {
    if (S[k].getAttribute("src") !== data[k].url) {
      for (const v of S.el[k]) {
        v.pause();
        v.setAttribute("src", data[k].url);
        v.load();
      }
      changed = true;
    }
  }
  if (changed && S.leader !== "a") swap(S); // new videos: A leads again, from the start
  if (newPair) {
    // New videos, model or crop: the old position means nothing here; report the new one.
    S.lastReport = "";
    S.spareFor = null;
    S.pendingSeek = null; // a jump asked of the pair shown before
    S.skeletonOn = data.skeleton;
  }
  const toggle = root.querySelector(".cp-skel-toggle");
  toggle.style.display = data.a.pose || data.b.pose ? "" : "none";
  root.querySelector(".cp-skel-on").checked = !!S.skeletonOn;
  if (data.seek && data.seek.nonce !== S.seekNonce) {
    S.seekNonce = data.seek.nonce;
    S.pendingSeek = data.seek;
    applyPendingSeek(S);
  }
  root.querySelector(".cp-msg").textContent = data.note || "";
  sync(S, newPair && S.L().paused);
  drawStrip(S);
}
