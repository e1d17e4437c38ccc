#!/usr/bin/env python3
"""A fault-injecting, latency-adding HTTP proxy in front of the emulator (or any AWS endpoint
URL), on 127.0.0.1. Point AWS_ENDPOINT_URL at the URL it prints.

    localstack/faults.py --upstream http://127.0.0.1:PORT [--port 0] [--seed 1]
        [--fault-rate 0.2] [--faults 503,throttle]
        [--latency-ms 100] [--log requests.jsonl]
        [--kill-pid PID --kill-after K] [--record answers.jsonl]
    localstack/faults.py --replay answers.jsonl [--latency-ms 100] [--log requests.jsonl]

- `--fault-rate R`: a share R of requests (drawn from a random generator seeded with `--seed`,
  in the order requests arrive) is answered without reaching the upstream, either HTTP 503 or
  the protocol's throttling error (`--faults` picks among 503, throttle, 503-empty; each
  faulted request draws one of the listed kinds; the default `503,throttle` is half and half).
  503 carries the service's own error (EC2 `Unavailable`, the others `ServiceUnavailable`);
  503-empty has no body. Throttling:
    EC2 (ec2 query)                                   503, <Response><Errors><Error>
                                                      <Code>RequestLimitExceeded</Code>...
    RDS, ElastiCache, ELBv2, Auto Scaling, IAM, STS   400, <ErrorResponse><Error><Type>Sender
      (awsquery)                                      </Type><Code>Throttling</Code>...
    Secrets Manager, SSM (JSON 1.1)                   400, {"__type": "ThrottlingException"}
                                                      and header x-amzn-ErrorType
    EFS, Backup (REST-JSON)                           429, {"ErrorCode": "ThrottlingException"}
                                                      and header x-amzn-ErrorType
    S3 (REST-XML)                                     503, <Error><Code>SlowDown</Code>...
- `--latency-ms N`: every request waits N ms before it is forwarded (a round trip to AWS).
- `--kill-pid PID --kill-after K`: SIGKILL to PID right after its K-th mutating request
  (any action not named Describe*, List*, Get*) has been forwarded and answered by the upstream,
  before the answer is sent back: AWS did the work, the client never heard.
- `--log FILE`: one JSON line per request: start and end (epoch seconds), service, action,
  mutating, status, fault.
- `--record FILE`: every answer the upstream gives is written to FILE (one JSON line: the
  request's key, status, headers, body).
- `--replay FILE` (no upstream): every request is answered from a recording made with `--record`,
  after `--latency-ms`, without any upstream: the time a request takes is then the delay alone,
  as with a service that answers at once (the emulator answers from one Python process and, with
  a hundred requests in flight, adds its own queue to every round). A request is matched by its
  method, path, host without the port, X-Amz-Target and body; several answers to one key are served in turn.
  A request the recording does not hold gets HTTP 599 `replay-miss` (counted in the stats as
  `misses`): a run whose requests differ from the recorded one's is not a replay of it.
- Control while running (from tests, when the pid is known only later):
  `POST /__faults/config` with a JSON object of any of fault_rate, latency_ms, kill_pid,
  kill_after, faults; `GET /__faults/stats` counts requests, faults and mutating requests.

It prints its URL (http://127.0.0.1:PORT) as the first line of stdout, then serves until killed.
"""

import argparse
import base64
import hashlib
import http.client
import json
import os
import random
import re
import signal
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

QUERY_SERVICES = {"rds", "elasticache", "elasticloadbalancing", "autoscaling", "iam", "sts",
                  "monitoring", "sns", "sqs", "cloudformation"}
JSON_SERVICES = {"secretsmanager", "ssm", "acm", "kms", "logs"}
REST_JSON_SERVICES = {"elasticfilesystem", "backup"}

_CRED = re.compile(r"Credential=[^/]+/[^/]+/([^/]+)/([^/]+)/")


def service_of(headers):
    m = _CRED.search(headers.get("Authorization", ""))
    return m.group(2) if m else "unknown"


_EFS_PATHS = [  # (method, path regex, action) for the EFS calls moodlestack makes
    ("GET", r"/file-systems/?$", "DescribeFileSystems"),
    ("POST", r"/file-systems/?$", "CreateFileSystem"),
    ("PUT", r"/file-systems/[^/]+/?$", "UpdateFileSystem"),
    ("DELETE", r"/file-systems/[^/]+/?$", "DeleteFileSystem"),
    ("GET", r"/mount-targets/?$", "DescribeMountTargets"),
    ("POST", r"/mount-targets/?$", "CreateMountTarget"),
    ("DELETE", r"/mount-targets/[^/]+/?$", "DeleteMountTarget"),
    ("GET", r"/mount-targets/[^/]+/security-groups/?$", "DescribeMountTargetSecurityGroups"),
    ("PUT", r"/mount-targets/[^/]+/security-groups/?$", "ModifyMountTargetSecurityGroups"),
    ("GET", r"/resource-tags/[^/]+/?$", "ListTagsForResource"),
    ("POST", r"/resource-tags/[^/]+/?$", "TagResource"),
    ("DELETE", r"/resource-tags/[^/]+/?$", "UntagResource"),
    ("GET", r"/file-systems/[^/]+/lifecycle-configuration/?$", "DescribeLifecycleConfiguration"),
    ("PUT", r"/file-systems/[^/]+/lifecycle-configuration/?$", "PutLifecycleConfiguration"),
    ("GET", r"/file-systems/[^/]+/backup-policy/?$", "DescribeBackupPolicy"),
    ("PUT", r"/file-systems/[^/]+/backup-policy/?$", "PutBackupPolicy"),
]


def action_of(service, method, path, headers, body):
    target = headers.get("X-Amz-Target")
    if target:
        return target.split(".")[-1]
    if service == "s3":  # REST-XML: the method, the path and the subresource (`?tagging`)
        url = urlparse(path)
        sub = ",".join(sorted(k for k in parse_qs(url.query, keep_blank_values=True)))
        return f"{method} {url.path}" + (f"?{sub}" if sub else "")
    if service in REST_JSON_SERVICES or (method != "POST" and not body):
        clean = urlparse(path).path
        for m, pat, name in _EFS_PATHS:
            if m == method and re.search(pat, clean):
                return name
        return f"{method} {clean}"
    try:
        form = parse_qs(body.decode("utf-8", "replace"))
    except Exception:  # noqa: BLE001
        form = {}
    action = form.get("Action") or parse_qs(urlparse(path).query).get("Action")
    return action[0] if action else "Unknown"


def is_mutating(action):
    if action.startswith(("GET ", "HEAD ")):
        return False
    return not action.startswith(("Describe", "List", "Get"))


def protocol_of(service):
    if service == "ec2":
        return "ec2"
    if service == "s3":
        return "rest-xml"
    if service in REST_JSON_SERVICES:
        return "rest-json"
    if service in JSON_SERVICES:
        return "json"
    return "query"


def error_answer(service, status, ec2_code, query_code, json_code, message):
    """(status, headers, body) of an error in the service's own protocol."""
    rid = str(uuid.uuid4())
    proto = protocol_of(service)
    if proto == "ec2":
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
                f'<Code>{ec2_code}</Code><Message>{message}</Message>'
                f'</Error></Errors><RequestID>{rid}</RequestID></Response>')
        return status["ec2"], {"Content-Type": "text/xml;charset=UTF-8"}, body.encode()
    if proto == "query":
        body = ('<ErrorResponse xmlns="http://webservices.amazon.com/AWSFault/2005-15-09">'
                f'<Error><Type>Sender</Type><Code>{query_code}</Code><Message>{message}</Message>'
                f'</Error><RequestId>{rid}</RequestId></ErrorResponse>')
        return status["query"], {"Content-Type": "text/xml", "x-amzn-RequestId": rid}, body.encode()
    if proto == "rest-xml":
        code = {"Throttling": "SlowDown"}.get(query_code, query_code)
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                f'<Error><Code>{code}</Code><Message>{message}</Message>'
                f'<RequestId>{rid}</RequestId></Error>')
        return status["rest-xml"], {"Content-Type": "application/xml", "x-amz-request-id": rid}, \
            body.encode()
    if proto == "json":
        body = json.dumps({"__type": json_code, "message": message})
        return status["json"], {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": rid,
                                 "x-amzn-ErrorType": json_code}, body.encode()
    body = json.dumps({"ErrorCode": json_code, "Message": message})
    return status["rest-json"], {"Content-Type": "application/json", "x-amzn-RequestId": rid,
                                 "x-amzn-ErrorType": json_code}, body.encode()


def throttling_answer(service):
    """EC2: 503 RequestLimitExceeded; awsquery: 400 Throttling; JSON 1.1: 400
    ThrottlingException; EFS (REST-JSON): 429 ThrottlingException; S3 (REST-XML): 503 SlowDown."""
    return error_answer(service, {"ec2": 503, "query": 400, "json": 400, "rest-json": 429,
                                  "rest-xml": 503},
                        "RequestLimitExceeded", "Throttling", "ThrottlingException",
                        "Rate exceeded")


def unavailable_answer(service):
    """HTTP 503 with the service's error: EC2 `Unavailable`, the others `ServiceUnavailable`
    (AWS's common errors)."""
    return error_answer(service, {"ec2": 503, "query": 503, "json": 503, "rest-json": 503,
                                  "rest-xml": 503},
                        "Unavailable", "ServiceUnavailable", "ServiceUnavailable",
                        "The request has failed due to a temporary failure of the server.")


def bare_unavailable_answer(service):
    """HTTP 503 with an empty body, as a load balancer in front of a service answers."""
    return 503, {"x-amzn-RequestId": str(uuid.uuid4())}, b""


class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.rng = random.Random(args.seed)
        self.fault_rate = args.fault_rate
        self.faults = [f for f in args.faults.split(",") if f]
        self.latency = args.latency_ms / 1000.0
        self.kill_pid = args.kill_pid
        self.kill_after = args.kill_after
        self.mutating = 0
        self.requests = 0
        self.faulted = 0
        self.killed = False
        self.log = open(args.log, "a", buffering=1) if args.log else None
        self.record = open(args.record, "a", buffering=1) if args.record else None
        self.misses = 0
        self.replaying = args.replay is not None  # answers from the file only, never the upstream
        self.replay = {}  # key -> [answers], served in turn
        self.served = {}  # key -> how many answers served
        if self.replaying:
            with open(args.replay) as f:
                for line in f:
                    if line.strip():
                        a = json.loads(line)
                        self.replay.setdefault(a["key"], []).append(a)

    def recorded(self, key):
        """The next recorded answer to `key` (status, headers, body), or None."""
        with self.lock:
            answers = self.replay.get(key)
            if not answers:
                self.misses += 1
                return None
            n = self.served.get(key, 0)
            self.served[key] = n + 1
            a = answers[n % len(answers)]
        return a["status"], a["headers"], base64.b64decode(a["body"])

    def remember(self, key, action, status, headers, body):
        if self.record:
            line = json.dumps({"key": key, "action": action, "status": status, "headers": headers,
                               "body": base64.b64encode(body).decode()})
            with self.lock:
                self.record.write(line + "\n")

    def decide(self):
        """The fault for the next request (None: forward it), drawn in arrival order."""
        with self.lock:
            self.requests += 1
            roll = self.rng.random()
            kind = self.rng.choice(self.faults) if self.faults else None
            if self.fault_rate > 0 and roll < self.fault_rate and kind:
                self.faulted += 1
                return kind
            return None

    def count_mutating(self):
        with self.lock:
            self.mutating += 1
            return (self.kill_pid and self.kill_after and not self.killed
                    and self.mutating == self.kill_after)

    def write(self, entry):
        if self.log:
            with self.lock:
                self.log.write(json.dumps(entry) + "\n")


def request_key(method, path, headers, body):
    """What makes two requests the same request for `--record`/`--replay`: the method, the path
    with its query, the host without its port (S3 may name the bucket there), the JSON
    protocols' X-Amz-Target (the action: KMS's DescribeKey and GetKeyRotationStatus send the same
    body) and the body. The signature and dates in the headers differ on every run and are left
    out."""
    host = (headers.get("Host") or "").rsplit(":", 1)[0]
    target = headers.get("X-Amz-Target") or ""
    h = hashlib.sha256()
    for part in (method.encode(), path.encode(), host.encode(), target.encode(), body):
        h.update(len(part).to_bytes(8, "big") + part)
    return h.hexdigest()


def make_handler(state, upstream):
    up = urlparse(upstream or "http://127.0.0.1:1")
    local = threading.local()

    def connection():
        c = getattr(local, "conn", None)
        if c is None:
            c = http.client.HTTPConnection(up.hostname, up.port or 80, timeout=300)
            local.conn = c
        return c

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # TCP_NODELAY. http.server writes a response's headers and body in two writes; with
        # Nagle's algorithm on, the body waits for the client to acknowledge the headers, which a
        # client in delayed-ACK mode (any kept-alive connection) does after 40 ms: every answer
        # on a reused connection came 40 ms after the proxy sent it, a delay AWS does not add.
        disable_nagle_algorithm = True

        def log_message(self, *args):  # quiet
            pass

        def handle(self):
            try:
                super().handle()
            except (ConnectionError, TimeoutError):
                pass  # the client went away (killed, or closed a keep-alive connection)

        def _control(self, body):
            if self.path.startswith("/__faults/config") and self.command == "POST":
                cfg = json.loads(body or b"{}")
                with state.lock:
                    if "fault_rate" in cfg:
                        state.fault_rate = float(cfg["fault_rate"])
                    if "latency_ms" in cfg:
                        state.latency = float(cfg["latency_ms"]) / 1000.0
                    if "kill_pid" in cfg:
                        state.kill_pid = int(cfg["kill_pid"]) if cfg["kill_pid"] else None
                    if "kill_after" in cfg:
                        state.kill_after = int(cfg["kill_after"]) if cfg["kill_after"] else None
                        state.mutating = 0
                        state.killed = False
                    if "faults" in cfg:
                        state.faults = [f for f in cfg["faults"].split(",") if f]
            with state.lock:
                stats = {"requests": state.requests, "faulted": state.faulted,
                         "mutating": state.mutating, "killed": state.killed,
                         "misses": state.misses}
            self._send(200, {"Content-Type": "application/json"}, json.dumps(stats).encode())

        def _send(self, status, headers, body):
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _handle(self):
            start = time.time()
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.path.startswith("/__faults/"):
                return self._control(body)
            service = service_of(self.headers)
            action = action_of(service, self.command, self.path, self.headers, body)
            mutating = is_mutating(action)
            fault = state.decide()
            if state.latency:
                time.sleep(state.latency)
            kill = False
            key = request_key(self.command, self.path, self.headers, body)
            if state.replaying:
                answer = state.recorded(key)
                if answer is None:
                    status, headers, out = 599, {"Content-Type": "text/plain"}, b"replay-miss"
                else:
                    status, headers, out = answer
            elif fault == "throttle":
                status, headers, out = throttling_answer(service)
            elif fault == "503":
                status, headers, out = unavailable_answer(service)
            elif fault == "503-empty":
                status, headers, out = bare_unavailable_answer(service)
            else:
                fwd = {k: v for k, v in self.headers.items()
                       if k.lower() not in ("connection", "keep-alive", "proxy-connection",
                                            "transfer-encoding", "upgrade")}
                resp = None
                for _attempt in (1, 2):
                    conn = connection()
                    try:
                        conn.request(self.command, self.path, body=body, headers=fwd)
                        resp = conn.getresponse()
                        out = resp.read()
                        break
                    except (ConnectionError, http.client.HTTPException, OSError):
                        conn.close()
                        local.conn = None
                        resp = None
                if resp is None:  # the upstream is gone: say so, as a gateway would
                    status, headers, out = 502, {"Content-Type": "text/plain"}, b"upstream unreachable"
                else:
                    status = resp.status
                    headers = {k: v for k, v in resp.getheaders()
                               if k.lower() not in ("connection", "keep-alive", "transfer-encoding",
                                                    "content-length")}
                    state.remember(key, action, status, headers, out)
                    if mutating:
                        kill = state.count_mutating()
            if kill:
                with state.lock:
                    state.killed = True
                try:
                    os.kill(state.kill_pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            end = time.time()
            state.write({"start": start, "end": end, "service": service, "action": action,
                         "mutating": mutating, "status": status, "fault": fault,
                         "killed": kill or None})
            try:
                self._send(status, headers, out)
            except (BrokenPipeError, ConnectionResetError):
                pass

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle

    return Handler


def rounds(entries):
    """Sequential rounds of a request log: the number of waves. A wave begins with the first
    request not yet counted; it lasts until every request in flight at that moment (started at
    or before it, not yet ended) has ended; the next wave begins with the first request that
    starts at or after that moment. Requests that run side by side count once; a chain of k
    requests each waiting for the previous one counts k."""
    reqs = sorted((e["start"], max(e["start"], e["end"])) for e in entries)
    n, i, waves = len(reqs), 0, 0
    while i < n:
        waves += 1
        begin = reqs[i][0]
        barrier = max(end for start, end in reqs if start <= begin and end >= begin)
        while i < n and reqs[i][0] < barrier:
            i += 1
        if i < n and barrier == begin:  # zero-length requests: move past them
            while i < n and reqs[i][0] == begin:
                i += 1
    return waves


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--upstream")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--fault-rate", type=float, default=0.0)
    p.add_argument("--faults", default="503,throttle", help="kinds, comma-separated: 503, throttle, 503-empty")
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--kill-pid", type=int)
    p.add_argument("--kill-after", type=int)
    p.add_argument("--log")
    p.add_argument("--record", help="write every upstream answer to this file")
    p.add_argument("--replay", help="answer from a --record file, with no upstream")
    args = p.parse_args(argv)
    if not args.upstream and not args.replay:
        p.error("--upstream URL is needed (or --replay FILE)")
    state = State(args)
    # A plan opens a connection per request it sends at once (60 and more); socketserver's
    # default listen backlog of 5 drops the rest's SYNs, which then wait for a retransmit or
    # for a connection to come free: rounds that AWS's endpoints would not add.
    ThreadingHTTPServer.request_queue_size = 256
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(state, args.upstream))
    server.daemon_threads = True
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
