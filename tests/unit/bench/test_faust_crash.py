"""The README says, where users look first, that the workers are ours and not faust-streaming's, links the
evidence, and gives a reproduction that exists; the reproduction's arithmetic (bench/faust_crash.py, run by
hand: it needs faust-streaming in an environment of its own)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.faust_crash import FAUST, WORKER, Outcome, main

ROOT = Path(__file__).resolve().parents[3]
README = (ROOT / "README.md").read_text()


def anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-")


def test_the_readme_says_early_that_the_workers_do_not_run_on_faust() -> None:
    first_section = README.index("\n## ")
    section = README[first_section : README.index("\n## ", first_section + 1)]
    assert section.startswith("\n## Built on aiokafka, not faust-streaming")
    assert "services/runtime/worker.py" in section
    (link,) = re.findall(r"\(docs/architecture\.md#([a-z0-9-]+)\)", section)
    headings = re.findall(r"^#+ (.+)$", (ROOT / "docs" / "architecture.md").read_text(), re.M)
    assert link in {anchor(heading) for heading in headings}, link
    assert "python -m bench.faust_crash" in section and FAUST == "faust-streaming==0.15.3"
    assert WORKER.exists() and "import faust" in WORKER.read_text()


def test_the_reproduction_counts_lost_referrals_and_answers_help(capsys: pytest.CaptureFixture[str]) -> None:
    outcome = Outcome(sent=1000, decided=970, with_state=953, redelivered=12, starts=2)
    assert outcome.lost == 30
    assert outcome.line() == (
        "1000 referrals, worker started 2 times: 30 without a decision (lost), 17 decided without state, "
        "12 redelivered decisions"
    )
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0 and "--kill-after" in capsys.readouterr().out
