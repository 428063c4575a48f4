"""The docs name only `harness` commands and options that exist, and README.md stays a front door.

Every ``harness <command> ...`` in README.md and docs/*.md, in a shell code block or in inline
code, is read up to the end of its shell command (``\\`` continuations joined; ``;``, ``&&``,
``||``, a pipe and a ``#`` comment end it), and its command path and ``--long-options`` are looked
up in the click tree of ``launch.cli.cli``. The docker image ``horovod-harness:TAG`` runs the same
CLI (its entrypoint), so ``horovod-harness:gpu train ...`` is checked too. Besides: every
docs/*.md page is linked from README.md, README.md has at most 250 lines, and every relative link
between the pages resolves (files, and the anchors of Markdown headings).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
MAX_README_LINES = 250

FENCE = re.compile(r"^\s*(```+|~~~+)\s*([\w+-]*)")
SHELL_LANGUAGES = {"", "sh", "shell", "bash", "console", "zsh"}
# `harness` as a word (also .venv/bin/harness; not Python's `from harness import`), or the docker
# image whose entrypoint it is.
START = re.compile(r"(?:(?<=[\s/;&|(=])|^)(?<!from )(?<!import )(?:harness|horovod-harness:[\w.-]+)(?=\s)")
# What ends a shell command: ; && || a pipe into another program (not `[--a | --b]` in a
# synopsis, nor `gloo|mpi`), a comment, the end of an inline code span.
END = re.compile(r";|&&|\|\||\s\|(?!\s*-)|\s#|`")
COMMAND_NAME = re.compile(r"[a-z][a-z0-9_-]*")
LONG_OPTION = re.compile(r"(?<![\w-])--[A-Za-z][\w-]*")
INLINE_CODE = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.S)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


@dataclass(frozen=True)
class Mention:
    """One `harness ...` command as the docs print it: where, and every word after `harness`."""

    page: str
    line: int
    text: str

    @property
    def words(self) -> list[str]:
        return self.text.split()

    @property
    def options(self) -> list[str]:
        return LONG_OPTION.findall(self.text)


def _commands_in(segment: str, page: str, line: int) -> list[Mention]:
    """The `harness` commands in one shell line or inline code span."""
    found = []
    for match in START.finditer(segment):
        rest = segment[match.end() :]
        end = END.search(rest)
        text = rest[: end.start()] if end else rest
        nested = START.search(text)  # a second `harness` on the same line starts its own command
        found.append(Mention(page, line, text[: nested.start()] if nested else text))
    return found


def _shell_lines(lines: list[str]) -> list[tuple[int, str]]:
    """A fenced shell block's logical lines (``\\`` continuations joined), comments dropped."""
    logical: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for number, raw in lines:
        text = re.sub(r"(^|\s)#.*$", "", raw)
        if pending is not None:
            number, text = pending[0], pending[1] + " " + text
        stripped = text.rstrip()
        if stripped.endswith("\\"):
            pending = (number, stripped[:-1])
            continue
        pending = None
        logical.append((number, text))
    if pending is not None:
        logical.append(pending)
    return logical


def _blocks_and_prose(text: str) -> tuple[list[tuple[str, list[tuple[int, str]]]], str]:
    """A Markdown text's fenced blocks (language, numbered lines) and its prose (fences blanked)."""
    blocks: list[tuple[str, list[tuple[int, str]]]] = []
    prose = []  # fenced lines blanked, so that offsets still give line numbers
    block: list[tuple[int, str]] | None = None
    fence = ""
    for number, line in enumerate(text.splitlines(), start=1):
        opened = FENCE.match(line)
        if block is None and opened:
            block, fence = [], opened.group(1)
            blocks.append((opened.group(2).lower(), block))
        elif block is not None and line.strip().startswith(fence):
            block = None
        elif block is not None:
            block.append((number, line))
        prose.append("" if block is not None or opened else line)
    return blocks, "\n".join(prose)


def mentions(text: str, page: str = "<text>") -> list[Mention]:
    """Every `harness` command in a Markdown text: in shell code blocks and in inline code."""
    blocks, prose = _blocks_and_prose(text)
    found: list[Mention] = []
    for language, lines in blocks:
        if language in SHELL_LANGUAGES:
            for start, logical in _shell_lines(lines):
                found += _commands_in(logical, page, start)
    for match in INLINE_CODE.finditer(prose):
        code = match.group(2)
        if "\n\n" in code:  # a code span never crosses a paragraph: unpaired backticks
            continue
        line = prose.count("\n", 0, match.start()) + 1
        found += _commands_in(" " + code.replace("\n", " ") + " ", page, line)
    return sorted(found, key=lambda mention: mention.line)


def _resolve(mention: Mention, root: click.Group) -> tuple[list[str], click.Command | None, click.Context]:
    """The command path a mention names (``["harness", "tokenizer", "train"]``), its click command
    (None when the last name is not one) and a context for it."""
    ctx = click.Context(root, info_name="harness", **root.context_settings)
    command: click.Command = root
    path = ["harness"]
    words = mention.words
    while isinstance(command, click.Group) and words and COMMAND_NAME.fullmatch(words[0]):
        name = words.pop(0)
        path.append(name)
        sub = command.get_command(ctx, name)
        if sub is None:
            return path, None, ctx
        ctx = click.Context(sub, info_name=name, parent=ctx, **sub.context_settings)
        command = sub
    return path, command, ctx


def unknown_names(mention: Mention, root: click.Group) -> list[str]:
    """What the mention names that the CLI does not have: a command, or an option of its command."""
    path, command, ctx = _resolve(mention, root)
    where = f"{mention.page}:{mention.line}: `{' '.join(path)}`"
    if command is None:
        return [f"{where}: no such command"]
    known = {opt for param in command.get_params(ctx) for opt in (*param.opts, *param.secondary_opts)}
    return [f"{where}: no option {option}" for option in mention.options if option not in known]


def _page_mentions() -> list[Mention]:
    return [m for page in PAGES for m in mentions(page.read_text(), str(page.relative_to(ROOT)))]


@pytest.fixture(scope="module")
def cli() -> click.Group:
    from launch.cli import cli

    return cli


def test_every_command_and_option_in_the_docs_exists(cli):
    found = _page_mentions()
    assert len(found) > 50, f"the parser found only {len(found)} `harness` commands in the docs"
    unknown = [problem for mention in found for problem in unknown_names(mention, cli)]
    assert not unknown, "the docs name commands or options the CLI does not have:\n" + "\n".join(unknown)


def test_the_docs_show_every_command_of_the_cli(cli):
    shown = {" ".join(_resolve(mention, cli)[0]) for mention in _page_mentions()}
    everything = [
        " ".join(["harness", name, *([sub] if sub else [])])
        for name, command in cli.commands.items()
        for sub in (getattr(command, "commands", None) or [None])
    ]
    missing = [name for name in everything if name not in shown]
    assert not missing, f"commands no page shows: {missing}"


def test_the_parser_finds_commands_and_reports_an_invented_option(cli):
    text = "\n".join(
        [
            "Run `.venv/bin/harness train --framework tf --np 2",
            "--no-such-option` first.",
            "",
            "```sh",
            "# harness train --commented-out is not a command",
            "horovodrun -np 2 .venv/bin/harness train --framework torch \\",
            "    --run-dir runs/a --resume && harness parity --steps 5 --out x; echo --not-an-option",
            "PYTHONPATH=. harness tokenizer train --vocab-size 300 --out t.json | tee --log",
            "harness train --hosts a:1 | --hostfile FILE  # a synopsis' alternatives; --ignored",
            "docker run --rm horovod-harness:cpu train --framework tf --np 2 --run-dir /runs/a",
            "```",
            "",
            "```python",
            "from harness import run",
            "```",
        ]
    )
    found = mentions(text, "x.md")
    assert [(m.line, m.words[0], m.options) for m in found] == [
        (1, "train", ["--framework", "--np", "--no-such-option"]),
        (6, "train", ["--framework", "--run-dir", "--resume"]),
        (6, "parity", ["--steps", "--out"]),
        (8, "tokenizer", ["--vocab-size", "--out"]),
        (9, "train", ["--hosts", "--hostfile"]),
        (10, "train", ["--framework", "--np", "--run-dir"]),
    ]
    assert unknown_names(found[0], cli) == ["x.md:1: `harness train`: no option --no-such-option"]
    assert [problem for mention in found[1:] for problem in unknown_names(mention, cli)] == []
    (typo,) = mentions("`harness trian --np 2`", "y.md")
    assert unknown_names(typo, cli) == ["y.md:1: `harness trian`: no such command"]
    assert mentions("`from harness import Family, run` and `import harness as h`") == []
    (nested,) = mentions("`harness tokenizer train --vocab 9`")
    assert unknown_names(nested, cli) == ["<text>:1: `harness tokenizer train`: no option --vocab"]
    helps = mentions("`harness --help`, `harness train --help`, `harness train -h`, `harness train --no-progress`")
    assert len(helps) == 4
    assert [problem for mention in helps for problem in unknown_names(mention, cli)] == []


def test_every_docs_page_is_linked_from_the_readme():
    linked = {target.split("#")[0] for target in LINK.findall(_blocks_and_prose(README.read_text())[1])}
    unlinked = [f"docs/{page.name}" for page in DOCS if f"docs/{page.name}" not in linked]
    assert not unlinked, f"README.md links no page {unlinked}"


def test_the_readme_is_a_front_door():
    lines = len(README.read_text().splitlines())
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines; at most {MAX_README_LINES}: move detail to docs/"
    assert "make test" in README.read_text(), "CI calls `make test`: README.md must name it"


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lowercased, punctuation dropped, spaces to hyphens, -1, -2 on repeats."""
    anchors: set[str] = set()
    fenced = False
    for line in page.read_text().splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        heading = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if fenced or not heading:
            continue
        base = re.sub(r"[^\w\- ]", "", heading.group(1).lower()).replace(" ", "-")
        anchor, repeat = base, 0
        while anchor in anchors:
            repeat += 1
            anchor = f"{base}-{repeat}"
        anchors.add(anchor)
    return anchors


def test_relative_links_between_the_pages_resolve():
    broken = []
    for page in PAGES:
        for target in LINK.findall(_blocks_and_prose(page.read_text())[1]):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            where = f"{page.relative_to(ROOT)}: ({target})"
            if not resolved.exists():
                broken.append(f"{where}: no file {path}")
            elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
                broken.append(f"{where}: no heading #{anchor} in {resolved.relative_to(ROOT)}")
    assert not broken, "broken links:\n" + "\n".join(broken)
