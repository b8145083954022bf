// The WebSocket to `kaocap serve`: JSON results arrive as text, the frame with its overlay as a
// JPEG binary message. The page's own query (?token=...) is passed on. Reconnects on its own.

const FIRST_RETRY_MS = 250;
const LAST_RETRY_MS = 5000;

export function connect({ onResult, onImage, onStatus }) {
  let retryMs = FIRST_RETRY_MS;
  const open = () => {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const ws = new WebSocket(`${scheme}://${location.host}/ws${location.search}`);
    ws.binaryType = 'blob';
    ws.onopen = () => {
      retryMs = FIRST_RETRY_MS;
      onStatus(true);
    };
    ws.onmessage = (event) => {
      if (typeof event.data !== 'string') {
        onImage(event.data);
        return;
      }
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message && Array.isArray(message.faces)) onResult(message);
    };
    ws.onclose = () => {
      onStatus(false);
      setTimeout(open, retryMs);
      retryMs = Math.min(retryMs * 2, LAST_RETRY_MS);
    };
  };
  open();
}
