"""A two-node Ray cluster on loopback for the tests: ``ray start --head`` plus a second ``ray start``.

Both nodes use their own temp dir and free ports, so they never meet another Ray on the machine;
``stop`` kills exactly the processes of this cluster (found by that temp dir in their command line
or environment), never ``ray stop``, which would stop every Ray of the machine.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))
SRC = str(Path(__file__).resolve().parent.parent / "src")


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports free on loopback right now."""
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def _node_ports(ports: list[int]) -> list[str]:
    node, obj, agent, grpc, metrics, renv = ports
    return ["--node-manager-port", str(node), "--object-manager-port", str(obj),
            "--dashboard-agent-listen-port", str(agent),
            "--dashboard-agent-grpc-port", str(grpc), "--metrics-export-port", str(metrics),
            "--runtime-env-agent-port", str(renv)]


class LoopbackCluster:
    """Head + one more node on 127.0.0.1, ``cpus`` CPUs each; ``address`` is what --ray-address takes and
    ``env`` the environment a driver needs (the cluster's auth token)."""

    def __init__(self, cpus: int = 1, object_store_mb: int = 80) -> None:
        # a short path: Ray's unix sockets live under it (sun_path is limited to 107 bytes)
        self.temp = tempfile.mkdtemp(prefix="dcray", dir="/tmp")
        ports = free_ports(1 + 2 * 6 + 2 * 100 + 1)
        self.port = ports[0]
        self.address = f"127.0.0.1:{self.port}"
        token = Path(self.temp) / "auth_token"  # the cluster's own token: every node and driver shows it
        token.write_text(secrets.token_hex(32))
        self.env = {**os.environ, "PYTHONPATH": SRC, "RAY_USAGE_STATS_ENABLED": "0", "DRIVECHAIN_TEST_RAY": self.temp,
                    "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token),
                    "RAY_raylet_start_wait_time_s": "180"}  # a busy machine starts slowly
        common = ["--node-ip-address", "127.0.0.1", "--num-cpus", str(cpus),
                  "--object-store-memory", str(object_store_mb * 1024 * 1024), "--disable-usage-stats"]
        self._start([RAY, "start", "--head", "--port", str(self.port), "--temp-dir", self.temp,
                     "--include-dashboard", "false", "--dashboard-port", str(ports[213]), *common, *_node_ports(ports[1:7]),
                     "--worker-port-list", ",".join(map(str, ports[13:113]))])
        self._start([RAY, "start", "--address", self.address, *common, *_node_ports(ports[7:13]),
                     "--worker-port-list", ",".join(map(str, ports[113:213]))])

    def _start(self, cmd: list[str]) -> None:
        res = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=180)
        if res.returncode != 0:
            self.stop()
            raise RuntimeError(f"{' '.join(cmd[:3])} failed: {res.stderr[-2000:]}")

    def pids(self, needle: str | None = None) -> list[int]:
        """Processes of this cluster (optionally only those whose command line contains ``needle``)."""
        out = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                environ = Path(f"/proc/{entry}/environ").read_bytes()
            except OSError:
                continue
            mine = self.temp in cmdline or f"DRIVECHAIN_TEST_RAY={self.temp}".encode() in environ
            if mine and (needle is None or needle in cmdline):
                out.append(int(entry))
        return out

    def kill_one(self, needle: str, timeout_s: float = 120.0) -> int:
        """SIGKILL the first process of this cluster whose command line shows ``needle``; its pid."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = self.pids(needle)
            if found:
                os.kill(found[0], signal.SIGKILL)
                return found[0]
            time.sleep(0.05)
        raise TimeoutError(f"no process showing '{needle}' within {timeout_s} s")

    def stop(self) -> None:
        """Kill every process of this cluster and remove its temp dir."""
        for _ in range(3):
            found = self.pids()
            if not found:
                break
            for pid in found:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.5)
        shutil.rmtree(self.temp, ignore_errors=True)
