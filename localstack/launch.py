"""Starts the emulator (localstack/moto_server.py) on a free port of 127.0.0.1 and waits until it
answers: shared by localstack/test_behaviours.py and bench/run.py."""

import os
import socket
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_emulator(env, timeout=30):
    """The emulator's process and URL once it answers. Raises RuntimeError, the process stopped,
    when it exits or does not answer within `timeout` seconds."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "moto_server.py"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + timeout
    while True:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1)
            return proc, url
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
                raise RuntimeError("emulator did not start")
            time.sleep(0.05)
