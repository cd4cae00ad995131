"""With OTEL_EXPORTER_OTLP_ENDPOINT set, a service's spans reach an OTLP/HTTP receiver (here a stub one).

Run in a child process: the tracer provider is process-wide and can be installed once.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

CHILD = """
from opentelemetry import trace
from dx_shared.tracing import configure_tracing, shutdown_tracing
assert configure_tracing("training") is not None
with trace.get_tracer("test").start_as_current_span("POST /webhooks/elearning"):
    pass
shutdown_tracing()
"""


def test_spans_are_exported_over_otlp_http_to_the_configured_endpoint() -> None:
    received: list[tuple[str, bytes]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append((self.path, self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {
            "PATH": "/usr/bin:/bin",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{server.server_port}",
            "PYTHONPATH": str(ROOT),
        }
        done = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    finally:
        server.shutdown()
    assert [path for path, _ in received] == ["/v1/traces"]
    body = received[0][1]
    assert b"POST /webhooks/elearning" in body and b"dx-training" in body, "the span, named by its service"


def test_no_exporter_when_the_sdk_is_disabled() -> None:
    env = {"PATH": "/usr/bin:/bin", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_SDK_DISABLED": "true"}
    code = "from dx_shared.tracing import configure_tracing; assert configure_tracing('training') is None"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
