"""Build and run horovodrun command lines for the harness and its tests."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TextIO

from harness.contract.distributed import LOST_JOB
from harness.loop.preemption import StopRequest
from harness.loop.watchdog import HANG_TIMEOUT_VARIABLE

# Thread pools each rank may size from the environment (torch/OpenMP, MKL, OpenBLAS, TF).
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
)

# horovodrun forwards every worker line as "[rank]<stdout>:text" (Gloo) or "[1,rank]<stdout>:text"
# (Open MPI's mpirun), and the same with <stderr>. mpirun sometimes tags a line's newline apart
# ("[1,0]<stdout>:text[1,0]<stdout>:"): that trailing tag is not part of the text.
RANK_LINE = re.compile(
    r"^\[(?:\d+,)?(?P<rank>\d+)\]<(?P<stream>stdout|stderr)>:(?P<text>.*?)(?:\[\d+,\d+\]<(?:stdout|stderr)>:)?$",
    re.MULTILINE,
)

# What coordinates the ranks and reduces their tensors: Horovod's MPI controller and CPU operations
# (Open MPI: shared memory between the ranks of one machine; launch/build_horovod.py builds them
# where mpicxx is), the faster one here (docs/measurements.md, "Benchmarks") and the default on one
# machine, or Gloo's (TCP): several hosts, elastic jobs (Horovod's elastic mode runs on Gloo alone).
CONTROLLERS = ("gloo", "mpi")

# Horovod settings. HOROVOD_GRACEFUL_TERMINATION_TIME_S (a patch of launch/build_horovod.py): the
# seconds horovodrun waits, after passing SIGTERM on to the ranks, before it SIGKILLs them; Horovod's
# 5 s is too short to finish a step and write a checkpoint. 25 s stays inside Kubernetes' and Slurm's
# usual 30 s. Open MPI's mpirun, when it ends a job (signalled, or a rank exited non-zero), sends
# SIGCONT, sleeps MPI_KILL_WAIT, sends SIGTERM, sleeps it again, then SIGKILLs, and notices nothing
# meanwhile: 2 x 25 s kept a preempted job 50 s (seen here), 2 x 10 s ends it in 22 s, and
# still gives rank 0 20 s to write its checkpoint. (Open MPI's own 1 s would kill it after 2 s.)
GRACE_SECONDS = 25
MPI_KILL_WAIT = 10
HOROVOD_DEFAULTS = {
    "HOROVOD_GRACEFUL_TERMINATION_TIME_S": str(GRACE_SECONDS),
    "OMPI_MCA_odls_base_sigkill_timeout": str(MPI_KILL_WAIT),
}
# glibc's malloc returns freed blocks above its (adaptive) mmap threshold to the system and trims
# the heap: each step's activations then come back as fresh pages, page-faulted in again (534k
# faults in 25 steps of the default model, against 107k with these). Fixed thresholds keep freed
# memory in the heap for the next step. docs/measurements.md, "Benchmarks", measures the effect; other C
# libraries ignore the variables.
ALLOCATOR_DEFAULTS = {"MALLOC_MMAP_THRESHOLD_": str(2**34), "MALLOC_TRIM_THRESHOLD_": str(2**34)}
# Set (to 1) by `harness train` for the ranks it starts: each rank pins itself to its local share of
# the cores (pin_to_local_cores). Unpinned, the scheduler moves ranks between cores, and a rank
# waiting for an allreduce (Horovod's torch wait polls; TF's executor and Horovod's thread) runs on the
# core its peer computes on. Measured here (docs/measurements.md, "Pinned ranks"): the default
# model's torch step at np=2 took 0.96 x the unpinned one's (median of 9 rounds taking turns); TF's
# median round 0.998 x (7 rounds), but unpinned, with Horovod's timeline writing, one TF step in three
# spent 12-27 ms in an allreduce that takes 2 ms pinned (step 0.32 s against 0.24).
PIN_VARIABLE = "HARNESS_PIN_CORES"
# A rank's place among its host's ranks, as Gloo's horovodrun and Open MPI's mpirun give it.
LOCAL_RANK_VARIABLES = (
    ("HOROVOD_LOCAL_RANK", "HOROVOD_LOCAL_SIZE"),
    ("OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE"),
)
# Seconds a rank may stop responding before the job fails (`harness train --hang-timeout`).
DEFAULT_HANG_TIMEOUT = 300
# Peak RSS of one rank training the default GPT model (`make demo`, 2026-11-23): torch, TF.
RANK_MEMORY_GIB = (0.5, 1.1)


def check_local_slots(num_ranks: int, oversubscribe: bool = False) -> None:
    """Refuse more ranks on this machine than it has cores, unless asked to oversubscribe: every
    rank computes, so extra ranks only share the cores, and each holds a whole model."""
    cores = os.cpu_count() or 1
    if num_ranks <= cores or oversubscribe:
        return
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    low, high = (num_ranks * gib for gib in RANK_MEMORY_GIB)
    raise ValueError(
        f"--np {num_ranks} starts {num_ranks} ranks on this machine, which has {cores} cores and "
        f"{memory_gib:.0f} GiB of memory ({num_ranks} ranks of the default model need {low:.0f}-{high:.0f} GiB); "
        "give --hosts or --hostfile to spread them, or --oversubscribe to start them here anyway"
    )


def hang_environment(seconds: int) -> dict[str, str]:
    """Bound how long a rank may stop responding before the job fails.

    Two detectors: Gloo's receive timeout ends a rank whose peer is frozen or gone, and the
    harness's own watchdog (harness/loop/watchdog.py) ends a rank that completes no step for that long --
    a peer stuck in Python keeps Horovod's heartbeat alive, and Horovod 0.28's stall inspector did
    not shut such a job down here. Rank 0 evaluates while the others wait in the next allreduce,
    so the limit must exceed one evaluation.
    """
    if seconds < 1:
        raise ValueError(f"--hang-timeout must be at least 1 second, got {seconds}")
    return {"HOROVOD_GLOO_TIMEOUT_SECONDS": str(seconds), HANG_TIMEOUT_VARIABLE: str(seconds)}


def train_argv(
    framework: str,
    run_dir: str,
    model: str,
    num_ranks: int,
    sets: list[str],
    config_file: str | None = None,
    resume: bool = False,
    progress: bool = False,
    elastic_commit_every: int = 0,
    family: str | None = None,
    hooks: tuple[str, ...] = (),
    tensorboard: bool = True,
) -> list[str]:
    """The ``harness train`` command line (run with this interpreter) for these settings."""
    argv = [sys.executable, "-m", "launch.cli", "train", "--framework", framework, "--model", model]
    argv += ["--run-dir", str(run_dir), "--np", str(num_ranks), "--progress" if progress else "--no-progress"]
    argv += [] if tensorboard else ["--no-tensorboard"]
    argv += ["--family", family] if family else []
    argv += [arg for hook in hooks for arg in ("--hook", hook)]
    argv += ["--config", os.path.abspath(config_file)] if config_file else []
    argv += [arg for item in sets for arg in ("--set", item)]
    argv += ["--elastic", "--commit-every", str(elastic_commit_every)] if elastic_commit_every else []
    return argv + (["--resume"] if resume else [])


def mpi_built() -> bool:
    """Whether this environment's Horovod has MPI (launch/build_horovod.py records it) and mpirun is here."""
    marker = Path(sys.prefix) / "horovod-build.json"
    return marker.exists() and json.loads(marker.read_text()).get("mpi", False) and shutil.which("mpirun") is not None


def default_controller(on_hosts: bool, elastic: bool, mpi: bool, notice: Callable[[str], None]) -> str:
    """The controller a job runs on when none is asked for: MPI on one machine where this Horovod
    has it (``mpi``: mpi_built(); the faster one, docs/benchmarks.md), else Gloo: for several hosts
    (mpirun's remote start and ports are not set up or tested here), for elastic jobs (Horovod's
    elastic mode is Gloo's), and where Horovod was built without MPI, which ``notice`` says in one line."""
    if on_hosts or elastic:
        return "gloo"
    if mpi:
        return "mpi"
    notice("running on Gloo: this Horovod was built without MPI (Open MPI and `make setup` add the faster one)")
    return "gloo"


def check_controller(controller: str, mpi: bool, elastic: bool = False) -> str:
    """``controller`` (one of CONTROLLERS) when it can run here, given whether MPI is (``mpi``:
    mpi_built()); else ValueError."""
    if controller not in CONTROLLERS:
        raise ValueError(f"--controller must be one of {list(CONTROLLERS)}, got {controller!r}")
    if controller == "mpi" and elastic:
        raise ValueError("--controller mpi cannot run an elastic job: Horovod's elastic mode runs on Gloo only")
    if controller == "mpi" and not mpi:
        raise ValueError(
            "--controller mpi needs Horovod built with MPI and mpirun on PATH: install Open MPI "
            "(Debian: libopenmpi-dev openmpi-bin) and run `make setup` again"
        )
    return controller


def horovodrun_executable() -> str:
    """The horovodrun installed beside this interpreter (the project's venv)."""
    return str(Path(sys.executable).parent / "horovodrun")


def parse_hosts(hosts: str) -> dict[str, int]:
    """``"h1:2,h2:2"`` -> ``{"h1": 2, "h2": 2}``; a host without ``:slots`` has one slot."""
    parsed = {}
    for item in hosts.split(","):
        name, _, slots = item.strip().partition(":")
        if not name or (slots and not slots.isdigit()) or (slots and int(slots) < 1):
            raise ValueError(f"bad host entry {item!r} in --hosts {hosts!r}; expected NAME or NAME:SLOTS")
        parsed[name] = parsed.get(name, 0) + int(slots or 1)
    return parsed


def rank_environment(
    ranks_per_host: int, cores: int | None = None, hang_timeout: int = DEFAULT_HANG_TIMEOUT, pin_cores: bool = False
) -> dict[str, str]:
    """Environment that gives each of ``ranks_per_host`` local ranks an equal share of the cores (with
    ``pin_cores``, pinned to it), and fails the job when a rank stops responding for ``hang_timeout`` seconds."""
    threads = max(1, (cores or os.cpu_count() or 1) // max(1, ranks_per_host))
    env = {name: str(threads) for name in THREAD_VARIABLES}
    env["TF_NUM_INTEROP_THREADS"] = "1"
    env.update(HOROVOD_DEFAULTS)
    env.update(ALLOCATOR_DEFAULTS)
    env.update(hang_environment(hang_timeout))
    env.update({PIN_VARIABLE: "1"} if pin_cores else {})
    return env


def local_share(local_rank: int, local_size: int, cpus: set[int]) -> set[int] | None:
    """Local rank ``local_rank``'s equal, contiguous share of ``cpus`` (the CPUs the host's ranks may
    use), the remainder unused; None when there are fewer CPUs than local ranks."""
    if not 0 <= local_rank < local_size:
        raise ValueError(f"local rank {local_rank} is not one of {local_size} local ranks")
    share = len(cpus) // local_size
    if share == 0:
        return None
    return set(sorted(cpus)[local_rank * share : (local_rank + 1) * share])


def pin_to_local_cores(environ: Mapping[str, str] = os.environ) -> set[int] | None:
    """Pin this rank (where the launcher asked: PIN_VARIABLE in ``environ``) to its local share of
    the CPUs it may use; returns them, or None where it stays unpinned (no local rank in ``environ``:
    not a rank; fewer CPUs than local ranks; no affinity on this OS). Call it before a framework
    starts its threads: threads started later inherit the pin, and those already running get it here."""
    if environ.get(PIN_VARIABLE) != "1" or not hasattr(os, "sched_setaffinity"):
        return None
    for rank, size in LOCAL_RANK_VARIABLES:
        if rank in environ and size in environ:
            cpus = local_share(int(environ[rank]), int(environ[size]), os.sched_getaffinity(0))
            for thread in os.listdir("/proc/self/task") if cpus else ():
                os.sched_setaffinity(int(thread), cpus)
            return cpus
    return None


def read_hostfile(path: str) -> dict[str, int]:
    """A horovodrun/OpenMPI hostfile (``NAME slots=N`` lines) as ``{name: slots}``."""
    slots = {}
    for line in Path(path).read_text().splitlines():
        fields = line.split("#")[0].split()
        if not fields:
            continue
        count = next((f.removeprefix("slots=") for f in fields[1:] if f.startswith("slots=")), "1")
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f"bad line {line!r} in hostfile {path}; expected NAME slots=N")
        slots[fields[0]] = slots.get(fields[0], 0) + int(count)
    return slots


def rank_hosts(num_ranks: int, hosts: str | None = None, hostfile: str | None = None) -> list[str]:
    """The host of each rank, in rank order, as horovodrun assigns them: each host's slots filled in
    the order the hosts are listed (this machine, ``localhost``, without hosts)."""
    slots = read_hostfile(hostfile) if hostfile else parse_hosts(hosts) if hosts else {"localhost": num_ranks}
    return [name for name, count in slots.items() for _ in range(count)][:num_ranks]


@dataclass
class JobOutput:
    """horovodrun's stderr as the launcher passes it on: the ranks whose last line said they lost the
    job, and horovodrun's own Python traceback, which goes to ``log_path`` instead of the terminal
    (the ranks' lines before it say what happened, in the user's terms)."""

    log_path: Path
    reported_loss: set[int] = field(default_factory=set)
    traceback_logged: bool = False
    error: str = ""  # the traceback's exception line (its last unindented one), e.g. "RuntimeError: ..."

    def relay(self, stream: TextIO, out: TextIO) -> None:
        log = None
        try:
            for line in stream:
                forwarded = RANK_LINE.match(line.rstrip("\n"))
                if forwarded and f" {LOST_JOB}: " in forwarded["text"]:
                    self.reported_loss.add(int(forwarded["rank"]))
                if not forwarded and log is None and line.startswith("Traceback (most recent call last):"):
                    self.log_path.parent.mkdir(parents=True, exist_ok=True)
                    log, self.traceback_logged = self.log_path.open("a"), True
                    # A run directory keeps every attempt's (a resumed run fails again): each dated.
                    log.write(f"# horovodrun's traceback, {time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n")
                if log is not None and not forwarded:
                    log.write(line)
                    if line.strip() and not line[0].isspace() and not line.startswith("Traceback"):
                        self.error = line.strip()
                else:
                    out.write(line)
                    out.flush()
        finally:
            if log is not None:
                log.close()

    def lost_ranks(self, num_ranks: int) -> list[int]:
        """The ranks that did not report a loss, when some did (the others saw them go); else none."""
        return [r for r in range(num_ranks) if r not in self.reported_loss] if self.reported_loss else []


def write_discovery_script(directory: Path, slots: dict[str, int]) -> Path:
    """An executable that prints ``NAME:SLOTS`` per host: Horovod elastic's host discovery."""
    script = Path(directory) / "discover_hosts.sh"
    script.write_text("#!/bin/sh\n" + "".join(f"echo {name}:{count}\n" for name, count in slots.items()))
    script.chmod(0o755)
    return script


def horovodrun_command(
    num_ranks: int,
    program: list[str],
    hosts: str | None = None,
    hostfile: str | None = None,
    network_interface: str | None = None,
    elastic: tuple[int, int, Path] | None = None,
    oversubscribe: bool = False,
    elastic_timeout: int | None = None,
    controller: str = "gloo",
) -> list[str]:
    """A horovodrun command that runs ``program`` on ``num_ranks`` ranks, coordinated by
    ``controller`` (one of CONTROLLERS).

    Without ``hosts`` or ``hostfile`` every rank runs on this machine; ``network_interface``
    (e.g. ``eth0``) pins Horovod's traffic to that NIC instead of the ones it detects.
    ``elastic`` = (min_np, max_np, host discovery script) makes the job elastic; it waits at most
    ``elastic_timeout`` seconds (Horovod's default: 600) for enough hosts after losing some. Raises
    ``ValueError`` when ``num_ranks`` exceeds the slots that ``hosts`` lists, or, on this machine
    alone, its cores (unless ``oversubscribe``).
    """
    if num_ranks < 1:
        raise ValueError(f"--np must be at least 1, got {num_ranks}")
    if hosts and hostfile:
        raise ValueError("give --hosts or --hostfile, not both")
    cmd = [horovodrun_executable(), "-np", str(num_ranks), f"--{controller}"]
    if network_interface:
        cmd += ["--network-interface", network_interface]
    if elastic:
        min_np, max_np, script = elastic
        if not 1 <= min_np <= num_ranks <= max_np:
            raise ValueError(
                f"elastic jobs need 1 <= --min-np <= --np <= --max-np, got {min_np}, {num_ranks}, {max_np}"
            )
        return [
            *cmd,
            "--min-np",
            str(min_np),
            "--max-np",
            str(max_np),
            "--host-discovery-script",
            str(script),
            *(["--elastic-timeout", str(elastic_timeout)] if elastic_timeout else []),
            *program,
        ]
    if hostfile:
        cmd += ["--hostfile", hostfile]
    else:
        if not hosts:
            check_local_slots(num_ranks, oversubscribe)
        slots = parse_hosts(hosts) if hosts else {"localhost": num_ranks}
        if num_ranks > sum(slots.values()):
            raise ValueError(f"--np {num_ranks} is larger than the {sum(slots.values())} slots in --hosts {hosts!r}")
        cmd += ["-H", ",".join(f"{name}:{count}" for name, count in slots.items())]
    return cmd + program


def mpirun_children(pid: int) -> list[int]:
    """The processes that the mpirun below ``pid`` (horovodrun, become `/bin/sh -c "mpirun ..."`)
    started on this machine: its ranks. Empty when there is no such mpirun (yet)."""

    def children(parent: int) -> list[int]:
        try:
            return [int(child) for child in Path(f"/proc/{parent}/task/{parent}/children").read_text().split()]
        except OSError:
            return []

    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            name = Path(f"/proc/{current}/comm").read_text().strip()
        except OSError:
            continue
        if name in ("mpirun", "orterun", "prterun"):
            return children(current)
        pending += children(current)
    return []


def run_horovodrun(
    num_ranks: int,
    program: list[str],
    hosts: str | None = None,
    hostfile: str | None = None,
    capture: bool = False,
    timeout: float | None = None,
    network_interface: str | None = None,
    hang_timeout: int = DEFAULT_HANG_TIMEOUT,
    elastic: tuple[int, int] | None = None,
    oversubscribe: bool = False,
    stop: StopRequest | None = None,
    elastic_timeout: int | None = None,
    controller: str = "gloo",
    environment: Mapping[str, str] = MappingProxyType({}),
    output: JobOutput | None = None,
    pin_cores: bool = False,
) -> subprocess.CompletedProcess:
    """Run ``program`` under horovodrun with per-rank thread limits; does not raise on failure.
    With ``output`` (and not ``capture``), horovodrun's stderr is passed on through it. With
    ``pin_cores``, ranks that call pin_to_local_cores pin themselves, unless the job is elastic (a
    reset may give a rank another local rank) or oversubscribes its hosts.

    Thread counts the user already set in the environment take precedence; ``environment`` (what a
    family's ranks need, ``Family.environment``) over everything. With ``stop``, SIGTERM
    and SIGINT are recorded there and passed on to horovodrun as SIGTERM: it passes that on to the
    ranks, which stop after the same step and checkpoint it (harness/loop/preemption.py), and this
    waits for them.
    """
    per_host = num_ranks if not hosts else max(parse_hosts(hosts).values())
    pin_cores = pin_cores and not (elastic or oversubscribe)
    env = {**rank_environment(per_host, hang_timeout=hang_timeout, pin_cores=pin_cores), **os.environ, **environment}
    controller = check_controller(controller, mpi_built(), bool(elastic))
    with tempfile.TemporaryDirectory(prefix="harness-hosts-") as scratch:
        spec = None
        if elastic:
            if not (hosts or hostfile):
                raise ValueError("--elastic needs --hosts or --hostfile: the hosts the job may use")
            slots = read_hostfile(hostfile) if hostfile else parse_hosts(hosts)
            spec = (*elastic, write_discovery_script(Path(scratch), slots))
        cmd = horovodrun_command(
            num_ranks,
            program,
            hosts=hosts,
            hostfile=hostfile,
            network_interface=network_interface,
            elastic=spec,
            oversubscribe=oversubscribe,
            elastic_timeout=elastic_timeout,
            controller=controller,
        )
        piped = subprocess.PIPE if capture else None
        relayed = output is not None and not capture
        # Under MPI horovodrun becomes `/bin/sh -c "mpirun ..."`, and mpirun is the one to signal (it
        # passes SIGTERM on to the ranks): horovodrun gets a process group of its own, signalled whole.
        group = controller == "mpi"
        with subprocess.Popen(
            cmd, env=env, stdout=piped, stderr=subprocess.PIPE if relayed else piped, text=True, start_new_session=group
        ) as job:
            relay = (
                threading.Thread(target=output.relay, args=(job.stderr, sys.stderr), daemon=True) if relayed else None
            )

            def forward(signum: int) -> None:
                # The ranks' cue to stop politely: horovodrun passes it on; under MPI the ranks get it
                # directly (mpirun would first sleep out odls_base_sigkill_timeout, unable to notice
                # ranks that exit meanwhile), or mpirun where its ranks are elsewhere.
                if not group:
                    job.send_signal(signal.SIGTERM)
                    return
                ranks = mpirun_children(job.pid)
                for pid in ranks:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGTERM)
                if not ranks:
                    os.killpg(job.pid, signal.SIGTERM)

            with stop.on_signals(then=forward) if stop is not None else contextlib.nullcontext():
                try:
                    if relay is None:
                        out, err = job.communicate(timeout=timeout)
                    else:
                        relay.start()
                        job.wait(timeout=timeout)
                        relay.join()
                        out = err = None
                except subprocess.TimeoutExpired:
                    job.kill()
                    raise
        return subprocess.CompletedProcess(cmd, job.returncode, out, err)
