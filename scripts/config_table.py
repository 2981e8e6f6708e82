"""Print the training config table of docs/training.md from the config dataclasses themselves.

Every dotted key of `trainer.config.TrainConfig` (the model's keys included), its type, its
default in each stage (`trainer.config.default_config`, preset paper-128) and its documentation:
the comment block right above the field and the comment at the end of its line, read from the
source of its dataclass (trainer/config.py, faceedit/model/config.py). So the table says what
the code says, and a field without a comment stops this script.

    python scripts/config_table.py           # print the table
    python scripts/config_table.py --write   # put it into docs/training.md, between the markers

tests/docs/test_config_table.py fails when docs/training.md holds anything else.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import io
import re
import sys
import textwrap
import tokenize
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final, Literal

from trainer.config import DEFAULT_PRESET, STAGES, TrainConfig, default_config, flatten_keys

DOC: Final[Path] = Path(__file__).resolve().parents[1] / "docs" / "training.md"
START: Final[str] = "<!-- config-table:start -->"
END: Final[str] = "<!-- config-table:end -->"


@dataclasses.dataclass(frozen=True)
class Row:
    key: str
    type: str
    default: str
    doc: str


def field_docs(cls: type) -> dict[str, str]:
    """Field name -> its comments (the block above it, then the one beside it), one line."""
    source = textwrap.dedent(inspect.getsource(cls))
    lines = source.splitlines()
    comments = {
        token.start[0]: token.string.lstrip("#").strip()
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
    }
    classdef = ast.parse(source).body[0]
    assert isinstance(classdef, ast.ClassDef)
    docs: dict[str, str] = {}
    for node in classdef.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        above: list[str] = []
        line = node.lineno - 1
        while line in comments and lines[line - 1].lstrip().startswith("#"):
            above.insert(0, comments[line])
            line -= 1
        end = node.end_lineno or node.lineno
        beside = [comments[n] for n in range(node.lineno, end + 1) if n in comments]
        docs[node.target.id] = " ".join(above + beside)
    return docs


def type_text(hint: Any) -> str:
    """A field's type as the table shows it: choices spelled out, tuples by their length."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"list of {type_text(args[0])}"
        if len(set(args)) == 1:
            return f"{len(args)} {type_text(args[0])}s"
        return "(" + ", ".join(type_text(a) for a in args) + ")"
    return getattr(hint, "__name__", str(hint))


def value_text(value: Any) -> str:
    """A default as it is written in config.yaml or after `--set`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return re.sub(r"e([+-])0*(\d)", r"e\1\2", repr(value))
    if isinstance(value, str):
        return value if value else '""'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    return str(value)


def leaves(cls: type, prefix: str = "") -> Iterator[tuple[str, Any, str]]:
    """(dotted key, type, documentation) of every leaf field under the dataclass `cls`."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]  # cls is a dataclass type
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            yield from leaves(typing.cast(type, hint), f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", hint, docs.get(f.name, "")


def rows() -> list[Row]:
    defaults = {stage: flatten_keys(default_config(stage).to_dict()) for stage in STAGES}
    table: list[Row] = []
    undocumented: list[str] = []
    for key, hint, doc in leaves(TrainConfig):
        if not doc:
            undocumented.append(key)
        values = [value_text(defaults[stage][key]) for stage in STAGES]
        if len(set(values)) == 1:
            default = f"`{values[0]}`"
        else:
            default = ", ".join(f"{s}: `{v}`" for s, v in zip(STAGES, values, strict=True))
        table.append(Row(key, type_text(hint), default, doc))
    if undocumented:
        raise SystemExit(
            "config fields without a comment (write one above the field or beside it): "
            + ", ".join(undocumented)
        )
    return table


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown() -> str:
    """The table, with the line that says where its defaults come from."""
    lines = [
        f"Defaults of `faceedit-train parser|gan|joint` with the default preset, {DEFAULT_PRESET}"
        " (another preset or a recipe changes the `model.*` keys and more).",
        "",
        "| key | type | default | meaning |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| `{r.key}` | {cell(r.type)} | {cell(r.default)} | {cell(r.doc)} |" for r in rows()]
    return "\n".join(lines) + "\n"


def block() -> str:
    """What docs/training.md holds from the start marker to the end marker, both included."""
    return f"{START}\n<!-- generated by scripts/config_table.py: edit the comments of the config fields, then run it with --write -->\n{markdown()}{END}"


def replace_block(text: str) -> str:
    """`text` with the table between the markers replaced by the current one."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"{DOC}: no {START} ... {END} block")
    return text[:start] + block() + text[end + len(END) :]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help=f"update {DOC.name} in place")
    args = parser.parse_args(argv)
    if args.write:
        DOC.write_text(replace_block(DOC.read_text(encoding="utf-8")), encoding="utf-8")
        print(f"wrote the config table into {DOC}")
    else:
        sys.stdout.write(markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
