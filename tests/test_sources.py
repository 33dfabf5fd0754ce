"""The repository stands alone: nothing in it cites the team's research notes, which are not
shipped; sources are cited directly (docs/sources.md lists them)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTES = ("linux", "other-systems", "engine-and-ecosystem", "nat-gateways")
# built from parts so that this file does not match itself
FORBIDDEN = re.compile(
    r"\.\./" + "shared" + "/" + r"|\b(?:" + "|".join(re.escape(n) for n in NOTES) + r")\." + r"md\b"
)


def shipped_files() -> list[Path]:
    """Files tracked by git plus untracked ones not ignored (what a commit would ship)."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [ROOT / line for line in out.splitlines() if (ROOT / line).is_file()]


def test_no_reference_to_the_team_notes() -> None:
    hits = []
    for path in shipped_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if FORBIDDEN.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert hits == []


def test_the_pattern_catches_what_it_must() -> None:
    """The check above is only as good as its pattern: these lines must all be caught."""
    for line in (
        "see " + "/".join(("..", "shared", "reference", "x")),
        "(linux" + ".md §3.3)",
        "other-systems" + ".md §8.2",
        "engine-and-ecosystem" + ".md",
        "nat-gateways" + ".md",
    ):
        assert FORBIDDEN.search(line), line
    assert not FORBIDDEN.search("docs/linux-model.md and docs/sources.md")


def test_every_observation_id_cited_is_listed_in_sources() -> None:
    """E and T ids (measurements on Linux 6.18.44) cited in code, tests and docs are defined
    in docs/sources.md, so a reader can look each one up."""
    listed = set(
        re.findall(r"^\| ([ET]\d+b?) \|", (ROOT / "docs" / "sources.md").read_text(), re.M)
    )
    assert {"E7", "E8", "T1", "T4"} <= listed
    cited: set[str] = set()
    for path in shipped_files():
        if path.suffix not in {".py", ".md", ".toml"} or path.name == "sources.md":
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:  # tests/malformed holds deliberately broken files
            continue
        # ids as cited: "E7", "E14/E16", "T2/T3", "(E6b)"; they start at 1 (T0 is a variable)
        cited.update(re.findall(r"(?<![\w.])([ET][1-9]\d?b?)(?=[,;:)/ ]|$)", text, re.M))
    assert {"E7", "E8", "T4"} <= cited
    assert cited - listed == set()
