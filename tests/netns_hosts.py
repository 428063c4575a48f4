"""Two test hosts on this machine: network namespaces joined by a veth pair, each with its own sshd.

Each host has its own network stack (loopback + one veth end, no route anywhere else), its own
hostname (a UTS namespace per process tree) and an sshd that accepts one throwaway key. Names
resolve through ``/etc/netns/<namespace>/hosts``, and ``/etc/netns/<namespace>/ssh/ssh_config``
points ssh at that key without touching the real ~/.ssh: ``ip netns exec`` bind-mounts both over
/etc for processes in the namespace only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SUBNET = "10.47.0"  # private, and only ever assigned inside the test namespaces
INTERFACE = "hveth0"  # the same name on both hosts, as Horovod looks for common interface names
HOSTS = ("hostA", "hostB")
REQUIRED_TOOLS = ("ip", "unshare", "ssh", "ssh-keygen", "/usr/sbin/sshd")


def unavailable_reason() -> str | None:
    """Why two namespace hosts can't be made here, or None when they can."""
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        return f"missing {', '.join(missing)} (Debian packages iproute2, util-linux, openssh-client, openssh-server)"
    if os.geteuid() != 0:
        return "network namespaces need root (CAP_SYS_ADMIN)"
    probe = f"harness-probe-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"`ip netns add` is not permitted here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], check=True)
    return None


@dataclass
class TestHosts:
    namespaces: dict[str, str]  # host name -> namespace

    def command(self, host: str, argv: list[str]) -> list[str]:
        """``argv`` run on ``host``: inside its namespace, under its own hostname."""
        inner = 'hostname "$0" && exec "$@"'
        return ["ip", "netns", "exec", self.namespaces[host], "unshare", "--uts", "sh", "-c", inner, host, *argv]

    def set_link(self, host: str, up: bool) -> None:
        """Cut ``host`` off the network (its end of the veth down), or connect it again."""
        _ip("-n", self.namespaces[host], "link", "set", INTERFACE, "up" if up else "down")

    def command_lines(self, host: str) -> list[str]:
        """The command lines of the processes running on ``host`` (its namespace)."""
        pids = subprocess.run(["ip", "netns", "pids", self.namespaces[host]], capture_output=True, text=True).stdout
        lines = []
        for pid in pids.split():
            with contextlib.suppress(OSError):  # ended meanwhile
                lines.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        return lines

    def received_bytes(self, host: str) -> int:
        path = f"/sys/class/net/{INTERFACE}/statistics/rx_bytes"
        out = subprocess.run(self.command(host, ["cat", path]), capture_output=True, text=True, check=True)
        return int(out.stdout)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@contextmanager
def two_hosts(workdir: Path) -> Iterator[TestHosts]:
    """Make hostA and hostB, yield them, and tear everything down (namespaces, sshds, /etc/netns)."""
    tag = os.getpid()
    hosts = TestHosts({host: f"harness-{tag}-{host.lower()}" for host in HOSTS})
    addresses = {host: f"{SUBNET}.{i + 1}" for i, host in enumerate(HOSTS)}
    sshds: list[subprocess.Popen] = []
    workdir.mkdir(parents=True, exist_ok=True)
    key = workdir / "id_ed25519"
    try:
        for namespace in hosts.namespaces.values():
            _ip("netns", "add", namespace)
        ends = [f"hv{tag}{i}" for i in range(2)]
        ns_a, ns_b = hosts.namespaces.values()
        _ip("link", "add", ends[0], "netns", ns_a, "type", "veth", "peer", "name", ends[1], "netns", ns_b)
        for end, (host, namespace) in zip(ends, hosts.namespaces.items(), strict=True):
            _ip("-n", namespace, "link", "set", end, "name", INTERFACE)
            _ip("-n", namespace, "addr", "add", f"{addresses[host]}/24", "dev", INTERFACE)
            _ip("-n", namespace, "link", "set", INTERFACE, "up")
            _ip("-n", namespace, "link", "set", "lo", "up")

        for path in (workdir / "host_key", key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
        (workdir / "authorized_keys").write_text(key.with_suffix(".pub").read_text())
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
        for host, namespace in hosts.namespaces.items():
            etc = Path("/etc/netns") / namespace
            (etc / "ssh").mkdir(parents=True, exist_ok=True)
            (etc / "hosts").write_text("127.0.0.1 localhost\n" + "".join(f"{a} {h}\n" for h, a in addresses.items()))
            (etc / "ssh" / "ssh_config").write_text(
                f"Host *\n  IdentityFile {key}\n  UserKnownHostsFile /dev/null\n  StrictHostKeyChecking no\n"
                "  BatchMode yes\n  LogLevel ERROR\n"
            )
            config = workdir / f"sshd_{host}.conf"
            config.write_text(
                f"ListenAddress {addresses[host]}\nHostKey {workdir / 'host_key'}\n"
                f"AuthorizedKeysFile {workdir / 'authorized_keys'}\nPermitRootLogin prohibit-password\n"
                f"PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
                f"PidFile {workdir / f'sshd_{host}.pid'}\n"
            )
            log = (workdir / f"sshd_{host}.log").open("w")
            sshds.append(
                subprocess.Popen(
                    hosts.command(host, ["/usr/sbin/sshd", "-D", "-e", "-f", str(config)]),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        _wait_for_ssh(hosts)
        yield hosts
    finally:
        for sshd in sshds:
            sshd.terminate()
            sshd.wait(timeout=10)
        for namespace in hosts.namespaces.values():
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
            shutil.rmtree(Path("/etc/netns") / namespace, ignore_errors=True)


def _wait_for_ssh(hosts: TestHosts, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    first = HOSTS[0]
    while True:
        checks = [
            subprocess.run(hosts.command(first, ["ssh", h, "true"]), capture_output=True, text=True) for h in HOSTS
        ]
        if all(c.returncode == 0 for c in checks):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"sshd on the test hosts did not accept the key: {[c.stderr for c in checks]}")
        time.sleep(0.2)
