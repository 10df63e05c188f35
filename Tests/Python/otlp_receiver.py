"""A small OTLP/HTTP trace receiver and webhook, on one loopback port, for TracingTests.

POST /v1/traces decodes the body with opentelemetry-proto (protobuf, or JSON by Content-Type)
and appends one JSON line per span to the output file:
{"span": {"trace_id", "span_id", "parent_span_id", "name", "kind", "status", "attributes"}}.
POST /hook answers as a webhook handler would ({"increment": {"count": 1}}) and appends
{"hook": {"traceparent": ...}} with the trace context it received.

Usage: otlp_receiver.py OUTPUT_FILE PORT_FILE. The chosen port is written to PORT_FILE once
the server listens. Runs until killed.
"""
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

output_path, port_path = sys.argv[1], sys.argv[2]
lock = threading.Lock()


def record(obj):
    with lock, open(output_path, "a", encoding="utf-8") as f:
        f.write(json.dumps(obj) + "\n")


def value_of(any_value):
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/v1/traces":
            request = ExportTraceServiceRequest()
            if "json" in (self.headers.get("Content-Type") or ""):
                json_format.Parse(body, request)
            else:
                request.ParseFromString(body)
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        record({"span": {
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent_span_id": span.parent_span_id.hex(),
                            "name": span.name,
                            "kind": span.kind,
                            "status": span.status.code,
                            "attributes": {a.key: value_of(a.value) for a in span.attributes},
                        }})
            reply = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)
        elif self.path == "/hook":
            record({"hook": {"traceparent": self.headers.get("traceparent")}})
            reply = json.dumps({"increment": {"count": 1}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(port_path + ".tmp", "w", encoding="utf-8") as f:
    f.write(str(server.server_address[1]))
os.replace(port_path + ".tmp", port_path)
server.serve_forever()
