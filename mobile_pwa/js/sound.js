// The audible alarm: a WebAudio two-tone pulse while unacknowledged critical alarms exist, unless muted.
// Browsers start audio only after a user gesture; callers call unlock() on the first click.

const MUTE_KEY = "ehs.muted";
let ctx = null;
let timer = null;

export const isMuted = () => localStorage.getItem(MUTE_KEY) === "1";
export function setMuted(muted) {
  localStorage.setItem(MUTE_KEY, muted ? "1" : "0");
  if (muted) stop();
}

export function unlock() {
  const AC = window.AudioContext || window.webkitAudioContext;
  if (!AC) return;
  if (!ctx) {
    ctx = new AC();
    ctx.onstatechange = () => window.dispatchEvent(new Event("ehs:audio"));
  }
  if (ctx.state === "suspended") ctx.resume().catch(() => {});
}

export const audioBlocked = () => !ctx || ctx.state !== "running";

function beep(freq, at, length) {
  const osc = ctx.createOscillator();
  const gain = ctx.createGain();
  osc.type = "square";
  osc.frequency.value = freq;
  gain.gain.setValueAtTime(0.0001, at);
  gain.gain.exponentialRampToValueAtTime(0.2, at + 0.02);
  gain.gain.exponentialRampToValueAtTime(0.0001, at + length);
  osc.connect(gain).connect(ctx.destination);
  osc.start(at);
  osc.stop(at + length + 0.05);
}

function pulse() {
  if (!ctx || ctx.state !== "running") return;
  const now = ctx.currentTime;
  beep(880, now, 0.18);
  beep(660, now + 0.25, 0.18);
}

/** Sound (or stop) the critical-alarm tone. */
export function alarm(on) {
  if (on && !isMuted()) {
    if (!timer) { pulse(); timer = setInterval(pulse, 1500); }
  } else stop();
}

function stop() {
  if (timer) clearInterval(timer);
  timer = null;
}
