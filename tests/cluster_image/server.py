"""GET any path: 200 and JSON naming the app, the pod (hostname) and the user it runs as."""
import json, os, signal, socket, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Hello(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"app": "shipcheck-clustertest", "pod": socket.gethostname(), "uid": os.getuid()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # PID 1 ignores SIGTERM without a handler
ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8080"))), Hello).serve_forever()
