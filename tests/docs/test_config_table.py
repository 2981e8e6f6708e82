"""The docs cannot drift from the code: docs/training.md's config table is exactly what
scripts/config_table.py makes of the config classes' fields and comments, and every relative
link in README.md and docs/ leads to a file that exists."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
# [text](target) and ![alt](target), with an optional "title"; the target has no spaces.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def config_table() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "config_table", ROOT / "scripts" / "config_table.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def test_training_md_holds_the_generated_config_table() -> None:
    table = config_table()
    text = (ROOT / "docs" / "training.md").read_text(encoding="utf-8")
    assert text.count(table.START) == 1 and text.count(table.END) == 1
    assert table.replace_block(text) == text, (
        "docs/training.md's config table differs from the config classes: "
        "run `python scripts/config_table.py --write` and commit docs/training.md"
    )


def test_the_table_has_every_config_key_with_its_documentation() -> None:
    table = config_table()
    rows = table.rows()
    keys = [row.key for row in rows]
    assert len(keys) == len(set(keys))
    for key in (
        "steps",
        "num_workers",
        "model.parser.kind",
        "gan_optim.critic_masks",
        "loss.edit_tv",
    ):
        assert key in keys
    assert all(row.doc and row.type and row.default for row in rows)
    # The default of num_workers is -1 ("auto"), which the hand-written table got wrong.
    assert next(row for row in rows if row.key == "num_workers").default == "`-1`"


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def relative_links(text: str) -> list[str]:
    """Link targets outside code, without URLs or in-page anchors."""
    prose = CODE_SPAN.sub("", FENCE.sub("", text))
    targets = [m.group(1) for m in LINK.finditer(prose)]
    return [t for t in targets if not SCHEME.match(t) and not t.startswith("#")]


def test_relative_links_lead_to_files_that_exist() -> None:
    broken = []
    for page in markdown_files():
        for target in relative_links(page.read_text(encoding="utf-8")):
            path = target.split("#", 1)[0]
            if not (page.parent / path).exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, "links to missing files:\n" + "\n".join(broken)


def test_the_link_finder_sees_links_and_skips_code() -> None:
    text = (
        'See [a](a.md#x), ![b](img/b.png "t") and [web](https://x.org).\n'
        "`[c](c.md)` is code.\n```\n[d](d.md)\n```\n[anchor](#here)\n"
    )
    assert relative_links(text) == ["a.md#x", "img/b.png"]
