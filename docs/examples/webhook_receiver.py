# A webhook receiver that checks LeadFlow's signature (Standard Webhooks), with Python's standard
# library only. WEBHOOK_SECRET is the whsec_… secret POST /api/webhooks answered; PORT its port.
import base64, hashlib, hmac, os, time
from http.server import BaseHTTPRequestHandler, HTTPServer

def verify(secret, headers, body, tolerance_s=300):
    msg_id, ts, sigs = headers["webhook-id"], headers["webhook-timestamp"], headers["webhook-signature"]
    if abs(time.time() - int(ts)) > tolerance_s:
        return False  # too old, or from the future: a replayed request
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    expected = base64.b64encode(mac).decode()
    return any(hmac.compare_digest(s[3:], expected) for s in sigs.split() if s.startswith("v1,"))

class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        ok = verify(os.environ["WEBHOOK_SECRET"], {k.lower(): v for k, v in self.headers.items()}, body)
        print(("verified" if ok else "refused"), self.headers["webhook-id"], flush=True)  # dedupe by this id
        self.send_response(204 if ok else 400)
        self.end_headers()

server = HTTPServer(("127.0.0.1", int(os.environ.get("PORT", "9000"))), Receiver)
print("listening on port", server.server_port, flush=True)
server.serve_forever()
