"""Runs inside a sandbox (standard library only; exec-svc pushes this file in): serves the
npm registry exec-svc prepared in a directory on 127.0.0.1, runs npm against it, and
exits with npm's status.

    python3 registry.py DIR npm install --prefix /workspace PACKAGE...

DIR holds `packuments/<name>.json` (tarball URLs start with the placeholder, replaced by
this server's URL) and `tarballs/<n>.tgz`. `--registry=<url>` is appended to the command.
"""

import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

PLACEHOLDER = b"@@REGISTRY@@"  # npm.REGISTRY_PLACEHOLDER


def serve(root: Path) -> ThreadingHTTPServer:
    base = b""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = unquote(urlsplit(self.path).path)
            if path.startswith("/-/"):
                name, media = path[3:], "application/octet-stream"
                file = root / "tarballs" / name.replace("/", "_").lstrip(".")
            else:
                name, media = path.lstrip("/"), "application/json"
                file = root / "packuments" / (quote(name, safe="@") + ".json")
            if not name or not file.is_file():
                self.send_error(404)
                return
            body = file.read_bytes()
            if media == "application/json":
                body = body.replace(PLACEHOLDER, base)
            self.send_response(200)
            self.send_header("Content-Type", media)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{server.server_port}".encode()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main(argv: list[str]) -> int:
    root, command = Path(argv[1]), argv[2:]
    server = serve(root)
    try:
        url = f"http://127.0.0.1:{server.server_port}/"
        return subprocess.call([*command, f"--registry={url}"])
    finally:
        server.shutdown()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
