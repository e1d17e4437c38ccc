#!/usr/bin/env python3
"""Runs LocalStack's free edition (localstack-core) in this process, on the host, without Docker.

    localstack_server.py -p PORT [--exit-on-stdin-eof]

Serves EC2, IAM, SSM, Secrets Manager and STS (`SERVICES` to change) on 127.0.0.1:PORT, keeps
its files in a new temporary directory (removed at exit), and prints `Ready.` once it answers.
LocalStack normally runs in its Docker image; outside it, this sets what the image sets and
turns off what needs the network or a container:

  GATEWAY_SERVER=hypercorn   the default (twisted) server binds 0.0.0.0 whatever GATEWAY_LISTEN says
  OVERRIDE_IN_DOCKER=0       its files under FILESYSTEM_ROOT, not /var/lib/localstack
  SKIP_SSL_CERT_DOWNLOAD=1   no download of its TLS certificate (plain HTTP is used anyway)
  DISABLE_EVENTS=1           no analytics
  DNS_ADDRESS=0              no DNS server (it would bind port 53)
  PERSISTENCE=0              nothing kept between runs

With --exit-on-stdin-eof it stops when its standard input closes: the integration tests keep
one server for the whole test binary and this ends it when the binary exits, however it exits.

Every 12-digit access key id is its own AWS account (LocalStack's multi-account support), so
callers that use different keys do not see each other's resources.
"""

import argparse
import os
import shutil
import sys
import tempfile
import threading


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-p", "--port", type=int, required=True)
    p.add_argument("--exit-on-stdin-eof", action="store_true")
    args = p.parse_args()

    root = tempfile.mkdtemp(prefix="moodlestack-localstack-")
    os.environ.update(
        {
            "GATEWAY_LISTEN": f"127.0.0.1:{args.port}",
            "GATEWAY_SERVER": "hypercorn",
            "OVERRIDE_IN_DOCKER": "0",
            "FILESYSTEM_ROOT": root,
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "DISABLE_EVENTS": "1",
            "DNS_ADDRESS": "0",
            "PERSISTENCE": "0",
        }
    )
    # Each service is loaded on its first request (about a second each; loading them all at
    # start takes longer: Secrets Manager pulls in Lambda).
    os.environ.setdefault("SERVICES", "ec2,iam,ssm,secretsmanager,sts")

    if args.exit_on_stdin_eof:

        def watch() -> None:
            while sys.stdin.buffer.read(4096):
                pass
            # Nothing is kept (PERSISTENCE=0): no need for LocalStack's shutdown, which takes
            # seconds.
            shutil.rmtree(root, ignore_errors=True)
            os._exit(0)

        threading.Thread(target=watch, daemon=True).start()

    from localstack.runtime import main as runtime

    try:
        runtime.main()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
