"""A real two-node Ray cluster inside a private, loopback-only network namespace.

``unshare -n sh -c 'ip link set lo up; python tests/_ray_support.py SCENARIO OUT.json ...'`` runs
one of the scenarios below inside the namespace and writes what it saw to ``OUT.json``; the
tests (tests/test_sweep_ray.py) assert on it. Every process of the namespace was started here, so
at the end this script stops exactly those, by PID (never ``ray stop``, which stops every Ray
node on the machine).

Scenarios
---------
``cluster SPEC WORK [SMALL_SPEC]``
    ``ray start --head --num-cpus 1`` and ``ray start --address 127.0.0.1:PORT --num-cpus 1``
    (both with a bounded object store), then two sweeps of SPEC with ``--address``: a plain one
    (``WORK/plain``) and one during which the second node's raylet is killed by PID as soon as
    a task that ran on that node is recorded (``WORK/fault``). The sockets that listen in the
    namespace are read while the cluster runs. With SMALL_SPEC, a third sweep joins with
    ``--address auto`` (``RAY_ADDRESS`` names the head, as on a cluster node).
``listeners``
    Binds a socket to 0.0.0.0 and reports the listeners, so a test can check that the check
    sees a non-loopback listener.
"""

from __future__ import annotations

import ipaddress
import json
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
from typing import Any

PY = sys.executable
#: the Ray temp folders started here (session logs, sockets), removed at the end
TEMP_DIRS: list[str] = []
RAY = str(Path(PY).with_name("ray"))
HEAD_PORT = 6379
NODE2_MANAGER_PORT = 40123
OBJECT_STORE = str(150 * 1024 * 1024)
ENV = {
    **os.environ,
    "RAY_USAGE_STATS_ENABLED": "0",
    # Ray's token authentication, with a token of this run only (nodes and drivers share it)
    "RAY_AUTH_MODE": "token",
    "RAY_AUTH_TOKEN": secrets.token_hex(32),
    # notice a dead node within seconds (defaults: a few tens of seconds)
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
}


# ----------------------------------------------------------------------------- processes
def own_netns() -> str:
    return os.readlink("/proc/self/ns/net")


def pids_in_netns(netns: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/ns/net") == netns:
                found.append(int(entry))
        except OSError:
            continue
    return sorted(found)


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def ancestors() -> set[int]:
    out, pid = set(), os.getpid()
    while pid > 1:
        out.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return out


def stop_namespace_processes() -> list[int]:
    """SIGKILL every process of this namespace except this one and its parents; their PIDs."""
    keep = ancestors()
    killed: list[int] = []
    for _ in range(5):
        victims = [p for p in pids_in_netns(own_netns()) if p not in keep]
        if not victims:
            break
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
        time.sleep(0.5)
    return sorted(set(killed))


# ----------------------------------------------------------------------------- listeners
def _addr(hexaddr: str) -> str:
    raw = bytes.fromhex(hexaddr)
    # /proc/net prints each 32-bit word in host (little-endian) order
    fixed = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(fixed))


def _socket_owners() -> dict[str, tuple[int, str]]:
    owners: dict[str, tuple[int, str]] = {}
    for pid in pids_in_netns(own_netns()):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        name = Path(cmdline(pid)[0] or "?").name if cmdline(pid) else "?"
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                owners[target[8:-1]] = (pid, name)
    return owners


def listeners() -> list[dict[str, Any]]:
    """Every listening TCP socket and every bound UDP socket of this namespace."""
    owners = _socket_owners()
    out = []
    for proto, listen_state in (("tcp", "0A"), ("tcp6", "0A"), ("udp", "07"), ("udp6", "07")):
        try:
            lines = Path(f"/proc/net/{proto}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            local, state, inode = parts[1], parts[3], parts[9]
            if state != listen_state:
                continue
            host, port = local.rsplit(":", 1)
            pid, name = owners.get(inode, (0, "?"))
            out.append(
                {
                    "proto": proto,
                    "addr": _addr(host),
                    "port": int(port, 16),
                    "pid": pid,
                    "name": name,
                }
            )
    return out


def is_loopback(addr: str) -> bool:
    ip = ipaddress.ip_address(addr)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


# ----------------------------------------------------------------------------- cluster
def ray_start(args: list[str], temp_dir: str) -> None:
    cmd = [RAY, "start", *args, "--num-cpus", "1", "--object-store-memory", OBJECT_STORE]
    cmd += ["--node-ip-address", "127.0.0.1", "--disable-usage-stats"]
    if "--head" in args:
        cmd += ["--include-dashboard=false", "--temp-dir", temp_dir]
    res = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=120)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stdout}\n{res.stderr}")


def node_ids(address: str) -> dict[str, Any]:
    code = (
        "import json, ray\n"
        f"ray.init(address={address!r}, logging_level='ERROR')\n"
        "print(json.dumps([{'id': n['NodeID'], 'port': n['NodeManagerPort'],\n"
        "                   'ip': n['NodeManagerAddress'], 'alive': n['Alive']}\n"
        "                  for n in ray.nodes()]))\n"
    )
    res = subprocess.run([PY, "-c", code], env=ENV, capture_output=True, text=True, timeout=120)
    if res.returncode != 0:
        raise RuntimeError(f"listing nodes failed:\n{res.stderr}")
    return {"nodes": json.loads(res.stdout.strip().splitlines()[-1])}


def raylet_pid(manager_port: int) -> int:
    for pid in pids_in_netns(own_netns()):
        argv = cmdline(pid)
        if (
            argv
            and Path(argv[0]).name == "raylet"
            and f"--node_manager_port={manager_port}" in argv
        ):
            return pid
    raise RuntimeError(f"no raylet with --node_manager_port={manager_port}")


def sweep_cmd(spec: str, out: str, address: str) -> list[str]:
    return [PY, "-m", "liqsignals", "sweep", spec, "--address", address, "--out", out]


def records(out: str) -> list[dict[str, Any]]:
    found = []
    for path in sorted(Path(out, "tasks").glob("*.json")):
        try:
            found.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError):
            continue
    return found


def cluster(spec: str, work: str, small: str | None = None) -> dict[str, Any]:
    report: dict[str, Any] = {"netns": own_netns()}
    address = f"127.0.0.1:{HEAD_PORT}"
    t0 = time.perf_counter()
    # Ray gives a node 30 s to register (fixed in ray/_private/node.py); on a busy machine
    # that can pass: then everything started so far is stopped and the cluster started again
    report["start_attempts"] = []
    for attempt in range(3):
        temp_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
        TEMP_DIRS.append(temp_dir)
        try:
            ray_start(["--head", "--port", str(HEAD_PORT)], temp_dir)
            ray_start(
                ["--address", address, "--node-manager-port", str(NODE2_MANAGER_PORT)], temp_dir
            )
            break
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            report["start_attempts"].append(str(exc)[-500:])
            stop_namespace_processes()
            if attempt == 2:
                raise
            time.sleep(2)
    report["start_s"] = time.perf_counter() - t0
    nodes = node_ids(address)["nodes"]
    report["nodes"] = nodes
    node2 = next(n["id"] for n in nodes if n["port"] == NODE2_MANAGER_PORT)
    report["node2"] = node2
    report["listeners"] = listeners()

    # 1. a plain sweep on the two-node cluster (from / : no reliance on the driver's cwd)
    t0 = time.perf_counter()
    res = subprocess.run(
        [*sweep_cmd(spec, f"{work}/plain", address), "--json", "--no-progress"],
        env=ENV, cwd="/", capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    report["plain"] = {"rc": res.returncode, "stdout": res.stdout, "stderr": res.stderr[-3000:]}
    report["plain"]["wall_s"] = time.perf_counter() - t0

    # 2. the same sweep; the second node's raylet is killed once a task of it is recorded
    fault_out = f"{work}/fault"
    proc = subprocess.Popen(
        [*sweep_cmd(spec, fault_out, address), "--json", "--no-progress"], env=ENV, cwd="/",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    pid = raylet_pid(NODE2_MANAGER_PORT)
    fault: dict[str, Any] = {"raylet_pid": pid}
    deadline = time.monotonic() + 240
    during: list[dict[str, Any]] = []
    while time.monotonic() < deadline and proc.poll() is None:
        recs = records(fault_out)
        if not during:
            during = listeners()
        if any(r.get("node") == node2 for r in recs):
            os.kill(pid, signal.SIGKILL)
            fault["killed_after"] = len(recs)
            fault["killed_at"] = time.time()
            break
        time.sleep(0.05)
    try:
        stdout, stderr = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
    fault.update(rc=proc.returncode, stdout=stdout, stderr=stderr[-3000:])
    report["fault"] = fault
    report["listeners_during_sweep"] = during

    # 3. --address auto finds the cluster through RAY_ADDRESS (as on a node of a cluster)
    if small:
        res = subprocess.run(
            [PY, "-m", "liqsignals", "sweep", small, "--address", "auto", "--out",
             f"{work}/auto", "--json", "--no-progress"],
            env={**ENV, "RAY_ADDRESS": address}, cwd="/", capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        report["auto"] = {"rc": res.returncode, "stdout": res.stdout, "stderr": res.stderr[-3000:]}
    report["listeners_end"] = listeners()
    return report


def main(argv: list[str]) -> int:
    scenario, out = argv[0], argv[1]
    report: dict[str, Any] = {}
    try:
        if scenario == "cluster":
            report = cluster(argv[2], argv[3], argv[4] if len(argv) > 4 else None)
        elif scenario == "listeners":
            with socket.socket() as s:
                s.bind(("0.0.0.0", 0))
                s.listen()
                report = {"netns": own_netns(), "listeners": listeners()}
        else:
            raise SystemExit(f"unknown scenario {scenario!r}")
    except Exception as exc:  # reported to the test, which fails with it
        report["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        report["stopped"] = stop_namespace_processes()
        for folder in TEMP_DIRS:
            shutil.rmtree(folder, ignore_errors=True)
        Path(out).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
