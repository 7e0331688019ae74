"""Fixtures of the framering Python tests: libframering built with make, the
real Go producer (cmd/producer, synthetic source), ringctl and a Go consumer
(testdata/goconsumer) built with go build, each run as a separate process in
a private runtime directory.

Run from the repository root: /usr/bin/python3 -m pytest clients/python
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PYDIR = os.path.dirname(HERE)
REPO = os.path.dirname(os.path.dirname(PYDIR))
HANG_GUARD = 30.0  # seconds: bounds every wait; never a performance bound


@pytest.fixture(scope="session")
def binaries():
    """Build libframering (make) and the Go programs the tests run."""
    subprocess.run(["make", "-s", "-C", os.path.join(REPO, "clients", "c")], check=True)
    out = tempfile.mkdtemp(prefix="framering-pytest-bin-")
    subprocess.run(["go", "build", "-o", out + "/", "./cmd/producer", "./cmd/ringctl",
                    "./clients/python/testdata/goconsumer"], cwd=REPO, check=True)
    yield out
    for f in os.listdir(out):
        os.unlink(os.path.join(out, f))
    os.rmdir(out)


@pytest.fixture
def runtime_dir(monkeypatch, tmp_path):
    """A private ring runtime directory for this test (and its children)."""
    d = tmp_path / "rt"
    d.mkdir()
    monkeypatch.setenv("FRAMERING_RUNTIME_DIR", str(d))
    return d


class Producer:
    def __init__(self, bindir, rtdir, name, args):
        self.name = name
        self.socket = str(rtdir / f"{name}.sock")
        self.bindir = bindir
        cmd = [os.path.join(bindir, "producer"), "-ring", name, "-source", "synthetic", "-exit-watch=false",
               "-stats-interval", "0", "-json"] + list(args)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # Serving once a connection is accepted (the socket file appears at
        # bind, a moment before listen).
        deadline = time.monotonic() + HANG_GUARD
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"producer exited {self.proc.returncode}: {self.proc.stderr.read()}")
            if time.monotonic() > deadline:
                raise RuntimeError("producer did not serve its socket")
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.socket)
                break
            except OSError:
                time.sleep(0.005)
            finally:
                s.close()

    def show(self):
        """ringctl show -json of this ring."""
        r = subprocess.run([os.path.join(self.bindir, "ringctl"), "show", "-ring", self.name, "-json",
                            "-window", "20ms"], capture_output=True, text=True, timeout=HANG_GUARD)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def stop(self):
        """SIGTERM: a clean close. Returns the producer's JSON summary."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=HANG_GUARD)
        return json.loads(out) if out.strip() else None

    def kill9(self):
        self.proc.kill()
        self.proc.communicate(timeout=HANG_GUARD)


@pytest.fixture
def producer(binaries, runtime_dir):
    """producer(name, *args): start cmd/producer on ring name; stopped at teardown."""
    started = []

    def start(name="pytest", *args):
        p = Producer(binaries, runtime_dir, name, args)
        started.append(p)
        return p

    yield start
    for p in started:
        if p.proc.poll() is None:
            p.proc.kill()
            p.proc.communicate()


def consumer_of(show, pid):
    for c in show["consumers"]:
        if c["pid"] == pid:
            return c
    return None


@pytest.fixture
def python_child(binaries, runtime_dir):
    """python_child(code): run a Python program (with the package importable)
    as a separate process, stdin/stdout pipes, text mode."""
    started = []

    def start(code):
        env = dict(os.environ, PYTHONPATH=PYDIR, PYTHONUNBUFFERED="1")
        p = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
        started.append(p)
        return p

    yield start
    for p in started:
        if p.poll() is None:
            p.kill()
        p.communicate()


def read_line(proc, want):
    """The next stdout line of proc that starts with want (hang-guarded)."""
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + HANG_GUARD
    while True:
        if not sel.select(timeout=max(0, deadline - time.monotonic())):
            raise AssertionError(f"no {want!r} line within {HANG_GUARD}s")
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"process ended before {want!r}: {proc.stderr.read()}")
        if line.startswith(want):
            return line.strip()
