"""`harness doctor` against the real installed stack."""

import os

from click.testing import CliRunner

from launch.cli import cli


def test_doctor_reports_versions_and_build():
    result = CliRunner().invoke(cli, ["doctor"])
    assert result.exit_code == 0, result.output
    assert "horovod      0.28.1" in result.output
    assert "[X] TensorFlow  [X] PyTorch" in result.output
    assert "[X] Gloo" in result.output
    assert f"cpus         {os.cpu_count()}" in result.output
    assert "gpus         torch 0 (CPU build)  tf 0 (CPU build)" in result.output  # this machine's stack


def test_doctor_fails_with_one_line_when_horovod_is_missing(monkeypatch):
    from launch.cli import doctor

    real = doctor.installed_stack
    monkeypatch.setattr(doctor, "installed_stack", lambda: {**real(), "horovod": None})
    result = CliRunner().invoke(cli, ["doctor"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == "Error: Horovod is not installed; run `make setup`"
