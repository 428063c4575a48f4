"""Every option of every `harness` command, given bad values (zero, negative, huge, wrong type,
empty): one `Error:` line naming the option and the value, a non-zero exit, nothing written."""

import re

import click
import pytest
from click.testing import CliRunner

from launch.cli import cli

NUMBER = ["0", "-1", "abc", ""]  # a count's bad values: zero, negative, wrong type, empty
# command -> option -> the bad values it is walked with. Every valued option of every command must
# be listed (test_the_walk_covers_every_option), so a new option cannot skip validation.
BAD = {
    "smoke": {"--framework": ["", "jax"], "--np": [*NUMBER, "100000"], "--hosts": ["", "h:0", ":2", "h:x"]},
    "train": {
        "--framework": ["", "jax"],
        "--np": [*NUMBER, "100000"],
        "--steps": NUMBER,
        "--family": ["", "nosuch", "no_such_module:FAMILY"],
        "--model": ["", "huge"],
        "--run-dir": ["", "{file}"],
        "--config": ["", "/no/such.toml"],
        "--set": ["", "x", "train.nope=1", "train.batch_size=big", "train.lr=-1", "eval.every=-3"],
        "--hook": ["", "x", "no_such_module:hook"],
        "--hosts": ["", "h:0", ":2", "h:x"],
        "--hostfile": ["", "/no/such/hostfile"],
        "--network-interface": [""],
        "--hang-timeout": [*NUMBER, "99999999"],
        "--elastic-timeout": [*NUMBER, "99999999"],
        "--min-np": NUMBER,
        "--max-np": NUMBER,
        "--commit-every": NUMBER,
        "--init-from": ["", "/no/such/run", "{file}"],
        "--controller": ["", "nccl"],
    },
    "generate": {
        "--run-dir": ["", "{file}"],
        "--framework": ["", "jax"],
        "--prompt": [""],
        "--max-new-tokens": ["-1", "abc", "", "10000000"],
        "--temperature": ["-1", "abc", "", "nan", "1000"],
        "--top-k": NUMBER,
        "--seed": ["-1", "abc", "", str(2**40)],
        "--family": ["", "nosuch"],
    },
    "translate": {
        "--run-dir": ["", "{file}"],
        "--framework": ["", "jax"],
        "--source": ["", " "],
        "--input": ["", "/no/such/sources.txt"],
        "--num-beams": [*NUMBER, "65"],
        "--length-penalty": ["abc", "", "nan"],
        "--max-new-tokens": NUMBER,
        "--family": ["", "nosuch"],
    },
    "parity": {
        "--steps": NUMBER,
        "--np": [*NUMBER, "100000"],
        "--family": ["", "nosuch"],
        "--model": ["", "huge"],
        "--out": ["", "{file}"],
        "--tol": ["-1", "abc", "", "nan", "2"],
        "--config": ["", "/no/such.toml"],
        "--set": ["", "x", "train.nope=1"],
    },
    "bench": {"--out": ["", "{file}"], "--family": ["", "nosuch"], "--model": ["", "huge"]},
    "check-family": {
        "--model": ["", "huge"],
        "--seed": ["-1", "abc", "", str(2**40)],
        "--examples": NUMBER,
        "--config": ["", "/no/such.toml"],
        "--set": ["", "x", "train.nope=1"],
    },
    "tokenizer train": {
        "--vocab-size": [*NUMBER, "256", str(2**40)],
        "--out": ["", "{file}"],
        "--config": ["", "/no/such.toml"],
        "--set": ["", "x", "data.paths=3", "data.val_fraction=2", "data.text_field="],
    },
    "export": {"--run-dir": ["", "{file}", "/no/such/run"], "--format": ["", "onnx"], "--out": ["", "{file}"]},
    "prepare": {
        "--out": ["", "{file}"],
        "--shard-tokens": [*NUMBER, str(2**40)],
        "--config": ["", "/no/such.toml"],
        "--set": ["", "x", "data.paths=3", "data.tokenizer=/no/such.json", "data.prepared=/no/such"],
    },
}
# A valid command line for each command, into which one bad value at a time is put.
BASE = {
    "smoke": {"--framework": "torch", "--np": "1"},
    "train": {"--framework": "torch", "--model": "tiny", "--steps": "1", "--run-dir": "{dir}/run"},
    "generate": {"--run-dir": "{dir}/run", "--framework": "torch", "--prompt": "hi"},
    "translate": {"--run-dir": "{dir}/run", "--framework": "torch", "--source": "one"},
    "parity": {"--steps": "1", "--out": "{dir}/out"},
    "bench": {"--quick": None, "--out": "{dir}/out"},
    "check-family": {"gpt": None, "--model": "tiny"},
    "tokenizer train": {"--vocab-size": "300", "--out": "{dir}/tokenizer.json"},
    "prepare": {"--out": "{dir}/prepared"},
    "export": {"--run-dir": "{dir}/run", "--out": "{dir}/hf"},
}
CASES = [
    (command, option, value)
    for command, options in BAD.items()
    for option, values in options.items()
    for value in values
]
# The cases whose error names one of the two: an unknown --set key is the error (its value is unread).
NAMES_ONLY = {
    ("train", "--set", "train.nope=1"): "key",
    ("parity", "--set", "train.nope=1"): "key",
    ("check-family", "--set", "train.nope=1"): "key",
}


def token(text: str) -> str:
    """``text`` as a whole token: "1" is not in "beta1"; a number may be shown as a float ("2" as "2.0")."""
    return rf"(?<![\w.-]){re.escape(text)}(?!\w)"


def shows(line: str, text: str) -> bool:
    """Whether ``line`` shows ``text``; an empty value as the CLI shows one: '' or "must not be empty"."""
    if not text:
        return "''" in line or "must not be empty" in line
    return re.search(token(text), line) is not None


def leaf_commands(group, prefix=""):
    """(name, command) for every command, a group's as "group sub"."""
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from leaf_commands(command, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", command


def test_the_walk_covers_every_option():
    for name, command in leaf_commands(cli):
        options = [p for p in command.params if isinstance(p, click.Option)]  # arguments: see below
        valued = {p.opts[0] for p in options if not p.is_flag and p.name != "help"}
        assert valued == set(BAD.get(name, {})), name


@pytest.mark.parametrize(("command", "option", "value"), CASES)
def test_a_bad_value_is_one_error_line_and_nothing_is_written(command, option, value, tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    value = value.format(file=a_file)
    given = {**BASE[command], option: value}
    args = command.split()
    for name, text in given.items():
        args += [name] if text is None else [name, text.format(dir=tmp_path)]
    result = CliRunner().invoke(cli, args)
    lines = result.output.strip().splitlines()
    assert result.exit_code in (1, 2) and isinstance(result.exception, SystemExit), result.output
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    # The line names the option (by flag, or by name: "unknown framework 'jax'"; --set KEY=VALUE by its key),
    # elsewhere than inside the value ("no_such_module:hook"), and the value.
    key, is_setting, setting = value.partition("=")
    subject, bad = (key, setting) if option == "--set" and is_setting else (option, value)
    line, only = lines[0], NAMES_ONLY.get((command, option, value))
    rest = re.sub(token(bad), "", line) if bad else line
    assert only == "value" or shows(rest, subject) or shows(rest, subject.lstrip("-")), line
    assert only == "key" or shows(line, bad), line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]  # no run or report directory


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nosuch"], "Error: No such command 'nosuch'."),
        (["train", "--nope"], "Error: No such option '--nope'."),
        (["train", "--framework", "torch"], "Error: Missing option '--run-dir'."),
    ],
)
def test_usage_mistakes_are_one_line_too(args, message):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and result.output.strip().startswith(message)
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("family", "message"),
    [("", "Error: Invalid value for 'FAMILY': must not be empty"), ("nosuch", "Error: unknown model family 'nosuch'")],
)
def test_check_familys_argument_is_walked_too(family, message):
    result = CliRunner().invoke(cli, ["check-family", family])
    assert result.exit_code in (1, 2) and result.output.strip().startswith(message), result.output
    assert len(result.output.strip().splitlines()) == 1
