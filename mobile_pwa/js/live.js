// The live feed (WebSocket /api/v1/ws, protocol in api/ws.py): authenticates with its first message,
// subscribes, and reconnects by itself with exponential backoff (1 s doubling to 30 s, with jitter).

export function connectLive({ credentials, subscription, onMessage, onStatus = () => {} }) {
  let ws = null;
  let attempt = 0;
  let stopped = false;
  let retry = null;
  let ping = null;

  const schedule = () => {
    if (stopped) return;
    const delay = Math.min(30_000, 1000 * 2 ** attempt) * (0.75 + Math.random() * 0.5);
    attempt += 1;
    onStatus("reconnecting");
    retry = setTimeout(open, delay);
  };

  async function open() {
    if (stopped) return;
    let auth;
    try { auth = await credentials(); } catch { auth = null; }
    if (!auth) { onStatus("signed-out"); schedule(); return; }
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/v1/ws`;
    ws = new WebSocket(url);
    ws.onopen = () => ws.send(JSON.stringify(auth));
    ws.onmessage = (ev) => {
      const msg = JSON.parse(ev.data);
      if (msg.type === "welcome") {
        attempt = 0;
        onStatus("live");
        ws.send(JSON.stringify({ type: "subscribe", ...subscription() }));
      }
      onMessage(msg);
    };
    ws.onclose = () => {
      clearInterval(ping);
      ws = null;
      schedule();
    };
    ws.onerror = () => { /* onclose follows */ };
    clearInterval(ping);
    ping = setInterval(() => ws && ws.readyState === 1 && ws.send('{"type":"ping"}'), 25_000);
  }

  const onOnline = () => { if (!ws) { clearTimeout(retry); attempt = 0; open(); } };
  window.addEventListener("online", onOnline);
  open();
  return {
    send(msg) { if (ws && ws.readyState === 1) ws.send(JSON.stringify(msg)); },
    close() {
      stopped = true;
      clearTimeout(retry);
      clearInterval(ping);
      window.removeEventListener("online", onOnline);
      if (ws) ws.close();
    },
  };
}
