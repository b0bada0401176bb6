"""A stand-in for the Kubeflow Pipelines API on 127.0.0.1 that records what the real kfp
client sends and answers like the v2beta1 API, so submit/schedule can be tested here."""

import http.server
import json
import threading
import urllib.parse

API = "/apis/v2beta1"


class RecordingKfpServer:
    """With `token` or `cookie`, answers 401 to a request without that credential and 403
    to one with another, as an authenticating proxy in front of a multi-user KFP does."""

    def __init__(self, token=None, cookie=None, multi_user=False):
        self.requests = []  # (method, path, query, json body or None)
        self.headers = []  # the headers of each request, names in lower case
        self._token, self._cookie, self._multi_user = token, cookie, multi_user
        self._experiments = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, method):
                url = urllib.parse.urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                server.requests.append((method, url.path, urllib.parse.parse_qs(url.query), body))
                server.headers.append({k.lower(): v for k, v in self.headers.items()})
                status, payload = server.authorize(self.headers) or server.respond(method, url.path, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._answer("GET")

            def do_POST(self):
                self._answer("POST")

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def authorize(self, headers):
        if self._token:
            sent = headers.get("Authorization")
            if not sent:
                return 401, {"error": "no credentials", "code": 16}
            if sent != f"Bearer {self._token}":
                return 403, {"error": "forbidden", "code": 7}
        if self._cookie and self._cookie not in (headers.get("Cookie") or ""):
            return 401, {"error": "no session", "code": 16}
        return None

    def respond(self, method, path, body):
        if (method, path) == ("GET", f"{API}/healthz"):
            return 200, {"multi_user": self._multi_user}
        if (method, path) == ("GET", f"{API}/experiments"):
            return 200, {"experiments": self._experiments, "total_size": len(self._experiments)}
        if (method, path) == ("POST", f"{API}/experiments"):
            experiment = {"experiment_id": f"exp-{len(self._experiments) + 1}", **body}
            self._experiments.append(experiment)
            return 200, experiment
        if (method, path) == ("POST", f"{API}/runs"):
            return 200, {"run_id": "run-1", "state": "PENDING", **body}
        if (method, path) == ("POST", f"{API}/recurringruns"):
            return 200, {"recurring_run_id": "recurring-1", "status": "ENABLED", **body}
        return 404, {"error": f"{method} {path} is not part of this stand-in", "code": 5}

    def posted(self, path):
        return [body for method, p, _, body in self.requests if method == "POST" and p == f"{API}/{path}"]

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._httpd.shutdown()
        self._httpd.server_close()
