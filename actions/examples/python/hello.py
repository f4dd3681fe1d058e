#!/usr/bin/python3
"""An action plugin in Python: the action "hello-py" greets the job's target.

It speaks the plugin protocol (docs/plugin-protocol.md) with Debian's
python3-grpcio and stubs generated from actions/sdk/proto/v1/action.proto:

    protoc -I actions/sdk/proto/v1 --python_out=DIR --grpc_python_out=DIR \
        --plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin action.proto

Install this file as an executable in the plugin directory and the stubs
in a directory next to it named after it with ".d" (hello-py.d): the
executor ignores subdirectories of its plugin directory.
"""

import json
import os
import sys
import tempfile
import threading
import time
from concurrent import futures

# The executor runs the file it checked through /proc/self/fd/N: the real
# path of this file is where that descriptor points.
sys.path.insert(0, os.path.realpath(sys.argv[0]) + ".d")

import grpc  # noqa: E402
import action_pb2  # noqa: E402
import action_pb2_grpc  # noqa: E402

COOKIE_KEY = "JOBENGINE_ACTION_PLUGIN"
COOKIE_VALUE = "6a0b3c1e-jobengine-action-plugin"
CORE_PROTOCOL_VERSION = 1  # go-plugin's
APP_PROTOCOL_VERSION = 1  # jobengine's, action.proto's v1
VERSION = "0.1.0"


def log(level, message):
    """Logs on stderr as go-plugin's JSON lines, which the executor reads
    with their level."""
    print(json.dumps({"@level": level, "@message": message}), file=sys.stderr, flush=True)


class ActionPlugin(action_pb2_grpc.ActionPluginServicer):
    def __init__(self):
        self.lock = threading.Lock()
        self.runs = {}  # run id -> threading.Event set on cancel

    def Describe(self, request, context):
        return action_pb2.DescribeResponse(
            plugin_version=VERSION,
            sdk_version="python-example/1",
            actions=[action_pb2.ActionInfo(
                name="hello-py",
                description="greets the target, from Python",
                default_timeout_ms=60_000,
            )],
        )

    def Cancel(self, request, context):
        with self.lock:
            cancelled = self.runs.get(request.run_id)
        if cancelled is not None:
            cancelled.set()
        return action_pb2.CancelResponse(found=cancelled is not None)

    def Run(self, request, context):
        cancelled = threading.Event()
        with self.lock:
            self.runs[request.run_id] = cancelled
        try:
            yield from self.hello(request, cancelled)
        finally:
            with self.lock:
                del self.runs[request.run_id]

    def hello(self, request, cancelled):
        args = json.loads(request.payload or b"{}")
        name = args.get("name", "")
        if not name:
            # An error with a return code: the job fails with code 2.
            yield result(return_code=2, error='the payload needs a name, e.g. {"name": "Alice"}')
            return
        yield event(log=action_pb2.LogLine(level="info", message="greeting", fields=[
            action_pb2.Field(key="name", value=name),
            action_pb2.Field(key="target", value=request.target),
        ]))
        for step in (1, 2):
            if cancelled.wait(0.05):  # the job timed out or was cancelled
                yield result(error="cancelled")
                return
            yield event(progress=action_pb2.Progress(percent=step * 50))
            yield event(status=action_pb2.Status(message=f"step {step} of 2"))
        if request.target:
            yield event(affected=action_pb2.Affected(hrefs=[request.target]))
        yield result(message=f"Hello, {name}! (from Python, {request.target})")


def event(**kw):
    return action_pb2.RunEvent(**kw)


def result(**kw):
    return action_pb2.RunEvent(result=action_pb2.Result(**kw))


def raw_method(handler):
    """A unary method whose messages stay bytes: the two small go-plugin
    services are written by hand rather than generated."""
    return grpc.unary_unary_rpc_method_handler(
        handler, request_deserializer=lambda b: b, response_serializer=lambda b: b)


def main():
    if os.environ.get(COOKIE_KEY) != COOKIE_VALUE:
        print("This is a jobengine action plugin: the executor starts it from its plugin directory.",
              file=sys.stderr)
        sys.exit(1)
    if str(APP_PROTOCOL_VERSION) not in os.environ.get("PLUGIN_PROTOCOL_VERSIONS", "").split(","):
        print(f"the executor does not speak protocol {APP_PROTOCOL_VERSION}", file=sys.stderr)
        sys.exit(1)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    action_pb2_grpc.add_ActionPluginServicer_to_server(ActionPlugin(), server)
    stopping = threading.Event()

    def health_check(request, context):
        return b"\x08\x01"  # HealthCheckResponse{status: SERVING}

    def shutdown(request, context):
        stopping.set()
        return b""  # plugin.Empty

    server.add_generic_rpc_handlers((
        grpc.method_handlers_generic_handler("grpc.health.v1.Health", {"Check": raw_method(health_check)}),
        grpc.method_handlers_generic_handler("plugin.GRPCController", {"Shutdown": raw_method(shutdown)}),
    ))
    sock = os.path.join(tempfile.mkdtemp(prefix="hello-py-"), "plugin.sock")
    server.add_insecure_port("unix:" + sock)
    server.start()
    # The handshake: the only line on stdout.
    print(f"{CORE_PROTOCOL_VERSION}|{APP_PROTOCOL_VERSION}|unix|{sock}|grpc", flush=True)

    # Exit when the executor asks to, or is gone (this process was
    # reparented), even if it was killed.
    host = int(os.environ.get("JOBENGINE_HOST_PID") or os.getppid())
    while not stopping.wait(0.5):
        if os.getppid() != host:
            log("warn", f"executor (pid {host}) is gone, exiting")
            break
    server.stop(grace=1).wait()
    os.unlink(sock)
    os.rmdir(os.path.dirname(sock))


if __name__ == "__main__":
    main()
