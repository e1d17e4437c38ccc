#!/usr/bin/env python3
"""Benchmark: how fast moodlestack's plan, apply and destroy are on the local emulator, how many
AWS requests they send, and how much memory they take. Prints one table, then the targets of
issue 7 for the production stack with how far each is met or missed.

Run it with `bench/run.sh` (installs the emulator, builds, then runs this with the emulator's
Python, which has boto3 for importing a test certificate). Timings are wall-clock on this
machine; requests come from moodlestack's own `--stats` (an SDK interceptor counts every HTTP
request); peak memory is the process's maximum resident set size (getrusage).

`--latency-ms N` (issue 14) also runs every command through localstack/faults.py, which delays
each request by N ms (a round trip to AWS) and logs its start and end, and prints a second table:
wall time, requests and sequential rounds per stack and command, with issue 14's targets. The
no-change plan is measured twice: through the emulator, and replayed (its answers recorded once,
then served by the proxy after the delay alone: `faults.py --replay`), which takes the emulator's
own time out (moto answers from one Python process; a hundred requests in flight queue there).
Sequential rounds are counted from the proxy's log as waves (localstack/faults.py `rounds`): a
wave begins with the first request not yet counted and lasts until every request in flight at
that moment has ended; the next wave begins with the first request that starts after that.
Requests sent side by side count once; a chain of k requests, each waiting for the one before,
counts k. With N ms per request, N ms x rounds is the floor of the wall time.
"""

import os
import argparse
import json
import statistics
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "localstack"))
from import_certificate import import_certificate  # noqa: E402
from faults import rounds  # noqa: E402
from launch import start_emulator  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("MOODLESTACK_BIN") or os.path.join(
    os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "debug", "moodlestack")
PLANS = int(os.environ.get("BENCH_PLANS", "7"))
AMI = "ami-785db401"  # moto's built-in Ubuntu x86_64 image
# The emulator's AWS behaviours (localstack/behaviours.py): none by default, so that the figures
# measure moodlestack and not the emulator's simulated waits; BENCH_BEHAVIOURS=default to include them.
BEHAVIOURS = os.environ.get("BENCH_BEHAVIOURS", "none")
# The launcher's simulated durations that are not behaviours (a backup job runs 2 s, an instance
# refresh 10 s): none either, with the behaviours off. A cold apply of a stack with backups waits
# for moodledata's first backup before its launch templates; that wait is the emulator's.
SIMULATED = ({"MOODLESTACK_EMULATOR_BACKUP_JOB_SECONDS": "0",
              "MOODLESTACK_EMULATOR_REFRESH_SECONDS": "0"} if BEHAVIOURS == "none" else {})

TARGETS = {  # production stack, on the emulator (issue 7)
    "plan_requests": 20,
    "plan_mutating": 0,
    "plan_wall_s": 0.5,
    "apply_wall_s": 10.0,
    "destroy_wall_s": 10.0,
    "plan_peak_mb": 50.0,
}


LATENCY_TARGETS = {  # production stack, every request delayed (issue 14)
    "plan_wall_s": 0.4,
    "plan_rounds": 3,
    "apply_wall_s": 5.0,
    "destroy_wall_s": 4.0,
}


class Emulator:
    def __init__(self):
        env = dict(os.environ, MOTO_IAM_LOAD_MANAGED_POLICIES="true",
                   MOODLESTACK_EMULATOR_BEHAVIOURS=BEHAVIOURS, **SIMULATED)
        try:
            self.proc, self.url = start_emulator(env)
        except RuntimeError:
            raise SystemExit("bench: the emulator did not start")

    def env(self):
        return dict(os.environ, AWS_ENDPOINT_URL=getattr(self, "proxy_url", None) or self.url, AWS_ACCESS_KEY_ID="testing",
                    AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="eu-west-1",
                    AWS_EC2_METADATA_DISABLED="true")

    def latency(self, ms, log, *extra, upstream=True):
        """Puts localstack/faults.py in front (in place of the one before, if any): every request
        waits `ms`, and is logged. `extra`: more options (`--record FILE`, `--replay FILE`)."""
        self.stop_proxy()
        self.log = log
        up = ["--upstream", self.url] if upstream else []
        self.proxy = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "localstack", "faults.py"), *up,
             "--port", "0", "--latency-ms", str(ms), "--log", log, *extra],
            stdout=subprocess.PIPE, text=True)
        self.proxy_url = self.proxy.stdout.readline().strip()
        if not self.proxy_url.startswith("http://"):
            raise SystemExit("bench: the latency proxy did not start")

    def proxy_stats(self):
        with urllib.request.urlopen(self.proxy_url + "/__faults/stats", timeout=10) as r:
            return json.loads(r.read())

    def stop_proxy(self):
        if getattr(self, "proxy", None):
            self.proxy.kill()
            self.proxy.wait()
            self.proxy.stdout.close()
            self.proxy = None

    def logged(self):
        """Every request the proxy has logged so far."""
        with open(self.log) as f:
            return [json.loads(line) for line in f if line.strip()]

    def stop(self):
        self.stop_proxy()
        self.proc.kill()
        self.proc.wait()


def run(emu, args, ok=(0,)):
    """Runs moodlestack with --stats; returns (wall s, stats parsed from its last line)."""
    start = time.perf_counter()
    proc = subprocess.Popen([BIN, *args, "--stats", "--color", "never"], cwd=ROOT,
                            env=emu.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    if proc.returncode not in ok:
        sys.stderr.write(out.decode() + err.decode())
        raise SystemExit(f"bench: moodlestack {' '.join(args)} exited {proc.returncode}")
    stats = {}
    for line in err.decode().splitlines():
        if line.startswith("stats: "):
            for part in line[len("stats: "):].split():
                k, _, v = part.partition("=")
                stats[k] = int(v)
    return wall, stats


def stack_args(emu, label, stack_file):
    """The stack's command-line arguments (the production stack gets moto's image and a test
    certificate), once a plan of the empty account has gone straight to the emulator: moto builds
    each service's backend on its first call to it (EC2 loads its images and instance types, IAM
    its managed policies: seconds, more on a busy machine), which AWS does not do. The apply
    measured after it is still cold: nothing of the stack exists."""
    args = [stack_file, "--name", f"bench-{label}"]
    if label == "production":
        args += ["--set", f"ami.id={AMI}",
                 "--set", f"load_balancer.certificate_arn={import_certificate(emu.url, 'eu-west-1')}"]
    run(emu, ["plan", *args])
    return args


def peak_mb(emu, args, ok=(0,)):
    """Peak RSS of one run, measured alone (resource.getrusage of a single child)."""
    code = ("import resource,subprocess,sys;"
            "p=subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL);"
            "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code, BIN, *args, "--color", "never"], cwd=ROOT,
                         env=emu.env(), capture_output=True, text=True, check=True).stdout.split()
    if int(out[0]) not in ok:
        raise SystemExit(f"bench: moodlestack {' '.join(args)} exited {out[0]}")
    return int(out[1]) / 1024.0


def bench_stack_latency(label, stack_file, latency_ms, plans):
    """Cold apply, no-change plan (median of `plans`), destroy, each through the latency proxy:
    (operation, wall s, requests, mutating, rounds) rows."""
    import tempfile
    emu = Emulator()
    log = tempfile.NamedTemporaryFile(prefix="bench-latency-", suffix=".jsonl", delete=False).name
    try:
        args = stack_args(emu, label, stack_file)
        emu.latency(latency_ms, log)

        def measured(cmd, ok=(0,)):
            before = len(emu.logged())
            wall, st = run(emu, cmd, ok)
            entries = emu.logged()[before:]
            return wall, len(entries), sum(1 for e in entries if e["mutating"]), rounds(entries), st

        rows = []
        wall, n, mut, r, st = measured(["apply", "--auto-approve", *args])
        rows.append(("apply (cold)", wall, n, mut, r, st))
        samples = [measured(["plan", "--detailed-exitcode", *args]) for _ in range(plans)]
        samples.sort(key=lambda x: x[0])
        wall, n, mut, r, st = samples[len(samples) // 2]
        rows.append((f"plan, no changes (median of {plans})", wall, n, mut, r, st))
        # The same plan with the emulator's own time taken out: its answers recorded once, then
        # served by the proxy after the delay alone (localstack/faults.py --replay), as a service
        # that answers at once would. What is left is the rounds and moodlestack's own time.
        with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
            answers = os.path.join(tmp, "answers.jsonl")
            emu.latency(0, os.path.join(tmp, "record.log"), "--record", answers)
            run(emu, ["plan", "--detailed-exitcode", *args])
            emu.latency(latency_ms, log, "--replay", answers, upstream=False)
            samples = [measured(["plan", "--detailed-exitcode", *args]) for _ in range(plans)]
            misses = emu.proxy_stats()["misses"]
            if misses:
                raise SystemExit(f"bench: {misses} requests of the replayed plans were not in the "
                                 "recording: the plan's requests differ from run to run")
            samples.sort(key=lambda x: x[0])
            wall, n, mut, r, st = samples[len(samples) // 2]
            rows.append((f"plan, replayed (median of {plans})", wall, n, mut, r, st))
            emu.latency(latency_ms, log)
        wall, n, mut, r, st = measured(["destroy", "--auto-approve", "--skip-final-snapshot",
                                        "--allow-data-loss", *args])
        rows.append(("destroy", wall, n, mut, r, st))
        return rows
    finally:
        emu.stop()
        os.unlink(log)


def latency_report(latency_ms, plans):
    results = {}
    for label, f in (("demo", "stacks/demo.yaml"), ("production", "stacks/production.yaml")):
        results[label] = bench_stack_latency(label, f, latency_ms, plans)
    print()
    print(f"with {latency_ms:g} ms per request (localstack/faults.py in front of the emulator):")
    print()
    print(f"{'stack':<11} {'operation':<32} {'wall':>8} {'requests':>9} {'mutating':>9} {'rounds':>7}")
    for label, rows in results.items():
        for op, wall, n, mut, r, st in rows:
            print(f"{label:<11} {op:<32} {wall:>6.3f} s {n:>9} {mut:>9} {r:>7}")

    def key(op):  # "apply", "plan", "replayed", "destroy"
        return "replayed" if "replayed" in op else op.split(" ")[0].rstrip(",")

    prod = {key(r[0]): r[1:5] for r in results["production"]}
    checks = [
        ("no-change plan: wall time", prod["plan"][0], LATENCY_TARGETS["plan_wall_s"], " s"),
        ("no-change plan: sequential rounds", prod["plan"][3], LATENCY_TARGETS["plan_rounds"], ""),
        ("replayed plan: wall time", prod["replayed"][0], LATENCY_TARGETS["plan_wall_s"], " s"),
        ("replayed plan: sequential rounds", prod["replayed"][3], LATENCY_TARGETS["plan_rounds"], ""),
        ("cold apply: wall time", prod["apply"][0], LATENCY_TARGETS["apply_wall_s"], " s"),
        ("destroy: wall time", prod["destroy"][0], LATENCY_TARGETS["destroy_wall_s"], " s"),
    ]
    print()
    print(f"targets (production stack, {latency_ms:g} ms per request):")
    print_checks(checks)
    print(f"  physical limit of a no-change plan: 2 rounds = {2 * latency_ms / 1000:.3f} s plus computation")


def print_checks(checks):
    for name, value, target, unit in checks:
        fmt = (lambda v: f"{v:.3f}") if isinstance(value, float) else str
        if value <= target:
            verdict = "met"
        else:
            verdict = f"MISSED by {fmt(value - target)}{unit}"
        print(f"  {name:<36} {fmt(value)}{unit} (target <= {target}{unit}): {verdict}")


def bench_stack(label, stack_file):
    emu = Emulator()
    try:
        args = stack_args(emu, label, stack_file)
        rows = []
        wall, st = run(emu, ["apply", "--auto-approve", *args])
        rows.append(("apply (cold)", wall, st, None))
        walls, stats = [], []
        for _ in range(PLANS):
            w, s = run(emu, ["plan", "--detailed-exitcode", *args])
            walls.append(w)
            stats.append(s)
        plan_mb = peak_mb(emu, ["plan", "--detailed-exitcode", *args])
        rows.append((f"plan, no changes (median of {PLANS})", statistics.median(walls),
                     stats[len(stats) // 2], plan_mb))
        wall, st = run(emu, ["destroy", "--auto-approve", "--skip-final-snapshot",
                             "--allow-data-loss", *args])
        rows.append(("destroy", wall, st, None))
        return rows
    finally:
        emu.stop()


def main():
    parser = argparse.ArgumentParser(description="moodlestack benchmark")
    parser.add_argument("--latency-ms", type=float, default=None,
                        help="also run every command with this delay per request and count rounds")
    parser.add_argument("--latency-only", action="store_true",
                        help="with --latency-ms: skip the loopback table")
    opts = parser.parse_args()
    if not os.path.exists(BIN):
        raise SystemExit(f"bench: {BIN} not found; run bench/run.sh (it builds first)")
    if opts.latency_ms is not None and opts.latency_only:
        print(f"moodlestack benchmark: {BIN}")
        print(f"machine: {os.cpu_count()} cores, {platform_line()}; emulator: moto {moto_version()}, "
              f"behaviours: {BEHAVIOURS}")
        latency_report(opts.latency_ms, int(os.environ.get("BENCH_LATENCY_PLANS", "5")))
        return
    results = {}
    for label, f in (("demo", "stacks/demo.yaml"), ("production", "stacks/production.yaml")):
        results[label] = bench_stack(label, f)
    print(f"moodlestack benchmark: {BIN}")
    print(f"machine: {os.cpu_count()} cores, {platform_line()}; emulator: moto {moto_version()}, "
          f"behaviours: {BEHAVIOURS}")
    print()
    print(f"{'stack':<11} {'operation':<32} {'wall':>8} {'requests':>9} {'mutating':>9} {'peak RSS':>9}")
    for label, rows in results.items():
        for op, wall, st, mb in rows:
            mem = f"{mb:.1f} MB" if mb is not None else ""
            print(f"{label:<11} {op:<32} {wall:>6.3f} s {st.get('requests', 0):>9} "
                  f"{st.get('mutating', 0):>9} {mem:>9}")
    prod = {op.split(" ")[0].rstrip(","): (wall, st, mb) for op, wall, st, mb in results["production"]}
    checks = [
        ("no-change plan: AWS requests", prod["plan"][1].get("requests", 0), TARGETS["plan_requests"], ""),
        ("no-change plan: mutating requests", prod["plan"][1].get("mutating", 0), TARGETS["plan_mutating"], ""),
        ("no-change plan: wall time", prod["plan"][0], TARGETS["plan_wall_s"], " s"),
        ("no-change plan: peak memory", prod["plan"][2], TARGETS["plan_peak_mb"], " MB"),
        ("cold apply: wall time", prod["apply"][0], TARGETS["apply_wall_s"], " s"),
        ("destroy: wall time", prod["destroy"][0], TARGETS["destroy_wall_s"], " s"),
    ]
    print()
    print("targets (production stack):")
    print_checks(checks)
    if opts.latency_ms is not None:
        latency_report(opts.latency_ms, int(os.environ.get("BENCH_LATENCY_PLANS", "5")))


def platform_line():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def moto_version():
    try:
        import moto
        return moto.__version__
    except ImportError:
        return "?"


if __name__ == "__main__":
    main()
