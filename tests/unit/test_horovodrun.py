"""horovodrun command lines and per-rank environments."""

import io
import os
import subprocess

import pytest

from harness.contract.distributed import launched_rank
from launch.horovodrun import (
    PIN_VARIABLE,
    RANK_LINE,
    JobOutput,
    check_controller,
    default_controller,
    horovodrun_command,
    local_share,
    parse_hosts,
    pin_to_local_cores,
    rank_environment,
    rank_hosts,
    read_hostfile,
    train_argv,
    write_discovery_script,
)


def test_local_command_uses_gloo_and_this_host():
    cmd = horovodrun_command(2, ["python", "train.py"])
    assert cmd[0].endswith("horovodrun")
    assert cmd[1:] == ["-np", "2", "--gloo", "-H", "localhost:2", "python", "train.py"]


def test_controller_choice():
    assert horovodrun_command(2, ["p"], controller="mpi")[1:4] == ["-np", "2", "--mpi"]
    assert check_controller("gloo", mpi=False) == "gloo" and check_controller("mpi", mpi=True) == "mpi"
    with pytest.raises(ValueError, match="needs Horovod built with MPI and mpirun on PATH"):
        check_controller("mpi", mpi=False)
    with pytest.raises(ValueError, match="elastic mode runs on Gloo only"):
        check_controller("mpi", mpi=True, elastic=True)
    with pytest.raises(ValueError, match="must be one of"):
        check_controller("nccl", mpi=True)


def test_rank_lines_and_ranks_of_both_launchers(monkeypatch):
    gloo, mpi = RANK_LINE.match("[1]<stdout>:hello"), RANK_LINE.match("[1,1]<stderr>:hello")
    assert (gloo["rank"], gloo["stream"], gloo["text"]) == ("1", "stdout", "hello")
    assert (mpi["rank"], mpi["stream"], mpi["text"]) == ("1", "stderr", "hello")
    split = RANK_LINE.match("[1,0]<stdout>:{}[1,0]<stdout>:")  # mpirun tagged the newline apart
    assert (split["rank"], split["text"]) == ("0", "{}")
    for variable in ("HOROVOD_RANK", "OMPI_COMM_WORLD_RANK"):
        monkeypatch.delenv(variable, raising=False)
    assert launched_rank() is None
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "3")
    assert launched_rank() == 3
    monkeypatch.setenv("HOROVOD_RANK", "2")
    assert launched_rank() == 2


def test_hosts_and_hostfile():
    assert parse_hosts("h1:2,h2:2") == {"h1": 2, "h2": 2}
    assert parse_hosts("h1") == {"h1": 1}
    cmd = horovodrun_command(4, ["p"], hosts="h1:2,h2:2")
    assert cmd[cmd.index("-H") + 1] == "h1:2,h2:2"
    cmd = horovodrun_command(4, ["p"], hostfile="hosts.txt")
    assert cmd[cmd.index("--hostfile") + 1] == "hosts.txt"


@pytest.mark.parametrize(
    ("np", "kwargs", "message"),
    [
        (3, {"hosts": "h1:1,h2:1"}, "--np 3 is larger than the 2 slots"),
        (0, {}, "--np must be at least 1, got 0"),
        (1, {"hosts": "h1:x"}, "bad host entry 'h1:x'"),
        (1, {"hosts": "h1", "hostfile": "f"}, "not both"),
    ],
)
def test_bad_launch_requests_are_refused(np, kwargs, message):
    with pytest.raises(ValueError, match=message):
        horovodrun_command(np, ["p"], **kwargs)


def test_threads_split_the_cores_between_local_ranks():
    assert rank_environment(2, cores=8)["OMP_NUM_THREADS"] == "4"
    assert rank_environment(2, cores=8)["TF_NUM_INTRAOP_THREADS"] == "4"
    assert rank_environment(4, cores=2)["OMP_NUM_THREADS"] == "1"


def test_train_argv_carries_every_setting():
    argv = train_argv("tf", "/runs/a", "tiny", 2, ["train.lr=1e-3", "eval.every=0"], resume=True)
    assert argv[1:4] == ["-m", "launch.cli", "train"]
    assert argv[argv.index("--framework") + 1] == "tf"
    assert argv[argv.index("--run-dir") + 1] == "/runs/a"
    assert argv[argv.index("--np") + 1] == "2"
    assert argv.count("--set") == 2 and "train.lr=1e-3" in argv
    assert "--no-progress" in argv and argv[-1] == "--resume"
    assert "--config" not in argv


def test_hang_timeout_bounds_gloo_and_the_watchdog():
    env = rank_environment(2, cores=2, hang_timeout=42)
    assert env["HOROVOD_GLOO_TIMEOUT_SECONDS"] == "42" and env["HARNESS_HANG_TIMEOUT"] == "42"
    with pytest.raises(ValueError, match="--hang-timeout must be at least 1 second, got 0"):
        rank_environment(2, hang_timeout=0)


def test_elastic_jobs_get_a_host_discovery_script(tmp_path):
    hostfile = tmp_path / "hosts"
    hostfile.write_text("# two nodes\nnode1 slots=8\nnode2 slots=8\n")
    slots = read_hostfile(str(hostfile))
    assert slots == {"node1": 8, "node2": 8}
    script = write_discovery_script(tmp_path, slots)
    assert subprocess.run([script], capture_output=True, text=True).stdout == "node1:8\nnode2:8\n"
    cmd = horovodrun_command(16, ["prog"], elastic=(8, 16, script))
    assert cmd[cmd.index("--min-np") + 1] == "8" and cmd[cmd.index("--max-np") + 1] == "16"
    assert cmd[cmd.index("--host-discovery-script") + 1] == str(script) and "-H" not in cmd
    with pytest.raises(ValueError, match="elastic jobs need 1 <= --min-np <= --np <= --max-np, got 4, 2, 8"):
        horovodrun_command(2, ["prog"], elastic=(4, 8, script))
    hostfile.write_text("node1 slots=many\n")
    with pytest.raises(ValueError, match="bad line 'node1 slots=many' in hostfile"):
        read_hostfile(str(hostfile))


def test_relayed_output_keeps_rank_lines_and_logs_horovodruns_traceback(tmp_path):
    stream = io.StringIO(
        "[1]<stdout>:step 10\n"
        "[0]<stderr>:Error: rank 0 lost the job: another rank exited or stopped responding for 30 s (--hang-timeout)\n"
        "some horovodrun warning\n"
        "Traceback (most recent call last):\n"
        '  File "horovodrun", line 8, in <module>\n'
        "RuntimeError: Horovod detected that one or more processes exited with non-zero status\n"
        "[1,0]<stderr>:a rank's line after it\n"
    )
    out, output = io.StringIO(), JobOutput(tmp_path / "run" / "horovodrun.log")
    output.relay(stream, out)
    assert out.getvalue().splitlines() == [
        "[1]<stdout>:step 10",
        "[0]<stderr>:Error: rank 0 lost the job: another rank exited or stopped responding for 30 s (--hang-timeout)",
        "some horovodrun warning",
        "[1,0]<stderr>:a rank's line after it",
    ]
    header, first, *_ = output.log_path.read_text().splitlines()
    assert output.traceback_logged and header.startswith("# horovodrun's traceback, 20")
    assert first == "Traceback (most recent call last):"
    assert output.error == "RuntimeError: Horovod detected that one or more processes exited with non-zero status"
    assert "RuntimeError: Horovod detected" in output.log_path.read_text()
    assert output.reported_loss == {0} and output.lost_ranks(2) == [1] and output.lost_ranks(3) == [1, 2]
    stream.seek(0)  # the same run directory failing again keeps both, each under its header
    JobOutput(output.log_path).relay(stream, io.StringIO())
    assert output.log_path.read_text().count("# horovodrun's traceback, ") == 2


def test_without_a_reported_loss_no_rank_is_named_lost(tmp_path):
    output = JobOutput(tmp_path / "horovodrun.log")
    output.relay(io.StringIO("[0]<stderr>:ValueError: something else\n"), io.StringIO())
    assert output.lost_ranks(2) == [] and not output.traceback_logged and not output.log_path.exists()
    assert output.error == ""


def test_rank_hosts_fill_each_hosts_slots_in_order(tmp_path):
    assert rank_hosts(2) == ["localhost", "localhost"]
    assert rank_hosts(3, hosts="hostA:2,hostB:2") == ["hostA", "hostA", "hostB"]
    hostfile = tmp_path / "hosts"
    hostfile.write_text("hostB slots=1\nhostA slots=2\n")
    assert rank_hosts(3, hostfile=str(hostfile)) == ["hostB", "hostA", "hostA"]


def test_the_default_controller_is_mpi_on_one_machine_where_built_else_gloo_with_one_line():
    lines = []
    assert default_controller(on_hosts=False, elastic=False, mpi=True, notice=lines.append) == "mpi"
    assert default_controller(on_hosts=True, elastic=False, mpi=True, notice=lines.append) == "gloo"
    assert default_controller(on_hosts=False, elastic=True, mpi=True, notice=lines.append) == "gloo"
    assert lines == []
    assert default_controller(on_hosts=False, elastic=False, mpi=False, notice=lines.append) == "gloo"
    assert lines == [
        "running on Gloo: this Horovod was built without MPI (Open MPI and `make setup` add the faster one)"
    ]


def test_local_share_splits_the_cpus_evenly_in_order():
    cpus = {8, 9, 10, 11, 12}
    assert [local_share(rank, 2, cpus) for rank in (0, 1)] == [{8, 9}, {10, 11}]  # 12 left unused
    assert local_share(3, 4, {0, 1, 2, 3}) == {3}
    assert local_share(0, 3, {0, 1}) is None  # fewer CPUs than ranks: stay unpinned
    with pytest.raises(ValueError, match="local rank 2 is not one of 2 local ranks"):
        local_share(2, 2, cpus)


def test_pinning_needs_the_launchers_request_and_a_local_rank():
    rank_zero = {"HOROVOD_LOCAL_RANK": "0", "HOROVOD_LOCAL_SIZE": "1"}
    assert pin_to_local_cores(rank_zero) is None  # not asked for
    assert pin_to_local_cores({PIN_VARIABLE: "1"}) is None  # asked for, but not a rank
    assert pin_to_local_cores({PIN_VARIABLE: "0", **rank_zero}) is None  # the user's opt-out
    alone = os.sched_getaffinity(0)
    assert pin_to_local_cores({PIN_VARIABLE: "1", **rank_zero}) == alone == os.sched_getaffinity(0)  # all of them


def test_the_rank_environment_asks_for_pinning_when_told():
    assert rank_environment(2, pin_cores=True)[PIN_VARIABLE] == "1"
    assert PIN_VARIABLE not in rank_environment(2)


@pytest.mark.parametrize(
    ("args", "pinned"),
    [(["torch"], True), (["tf"], True), (["tf", "--no-pin-cores"], False), (["torch", "--no-pin-cores"], False)],
)
def test_harness_train_pins_ranks_of_either_framework_unless_told_not_to(args, pinned):
    from launch.cli.train import train
    from launch.cli.train.options import TrainOptions

    context = train.make_context("train", ["--framework", *args, "--run-dir", "run"])
    assert TrainOptions.from_click(context.params).pin_cores is pinned
