"""Which of a result's notes are warnings (a claimed gain that is not real, something that did not happen) and which
only describe what was done."""
from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["is_warning", "split_notes"]

# A note warns when it reports a cost or a miss: the runner's measured flags ("measured: slower ..."), a form that
# was not built, a speed-up that is not there, a step that failed or was skipped for a reason.
_WARNING = re.compile(
    r"^measured:|\bNOT\b|\bslower\b|\bno (real )?(gain|speed-up)\b|\bfailed\b|\bcould not\b|\bcannot\b|"
    r"\blarger than\b|\bsaturate|\bis still fp32\b|\bnot measured\b|\bno PyTorch int8 form\b|"
    r"\bdo(es)? not speed up\b|\bonly speeds up\b|\bspeed-up needs\b|\blittle speed-up\b|\bno dependable\b|"
    r"\bhas only\b|\bstay fp32\b|\bno gain\b",
    re.IGNORECASE,
)


def is_warning(note: str) -> bool:
    """Whether ``note`` reports a cost or a miss (shown as a warning) rather than describing what was done."""
    return bool(_WARNING.search(str(note)))


def split_notes(notes: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(warnings, descriptions)``, each in the notes' order."""
    warnings = [n for n in notes if is_warning(n)]
    return warnings, [n for n in notes if not is_warning(n)]
