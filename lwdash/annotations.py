"""The workspace's own words on models and results: a name, a note and a star, kept beside the measurements.

:class:`AnnotationBook` is that part of :class:`lwdash.workspace.Store` (rows of kind
``"annotations"``, keyed ``model:<id>`` / ``result:<id>``). Measurements are never edited: a
rename changes what the pages, the report and the model card call a model or a result, a note
travels with it into the report and the model card, and a star marks the ones worth showing.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from lwdash.store.backend import Backend, Row

__all__ = ["MAX_NAME_CHARS", "MAX_NOTE_CHARS", "Annotation", "AnnotationBook", "Target", "with_note"]

Target = Literal["model", "result"]
MAX_NAME_CHARS = 120
MAX_NOTE_CHARS = 4000


@dataclass(frozen=True)
class Annotation:
    """What the team wrote on one model or result (empty strings and ``False`` when nothing)."""

    target: Target
    ref: str
    name: str = ""
    note: str = ""
    starred: bool = False
    updated_at: float = 0.0


def _key(target: Target, ref: str) -> str:
    if target not in ("model", "result"):
        raise ValueError(f"annotations are on a model or a result, not {target!r}")
    return f"{target}:{ref}"


def _from_row(r: Row) -> Annotation:
    target, _, ref = str(r["id"]).partition(":")
    return Annotation(target=target, ref=ref, name=r["name"], note=r["note"],  # type: ignore[arg-type]
                      starred=bool(r["starred"]), updated_at=float(r["updated_at"]))


def _clean(text: str, limit: int, what: str, *, one_line: bool) -> str:
    text = text.strip()
    if one_line:
        text = " ".join(text.split())
    text = "".join(ch for ch in text if ch.isprintable() or (ch == "\n" and not one_line))
    if len(text) > limit:
        raise ValueError(f"the {what} is {len(text):,} characters; at most {limit:,} are kept")
    return text


class AnnotationBook:
    """Rename, annotate and star models and results."""

    backend: Backend

    def annotation(self, target: Target, ref: str) -> Annotation:
        """What was written on ``ref`` (an empty annotation when nothing was)."""
        row = self.backend.get("annotations", _key(target, ref))
        return Annotation(target, ref) if row is None else _from_row(row)

    def annotations(self, target: Target) -> dict[str, Annotation]:
        """Every annotation on models (or results), by id."""
        prefix = f"{_key(target, '')}"
        return {a.ref: a for a in (_from_row(r) for r in self.backend.query("annotations"))
                if f"{a.target}:" == prefix}

    def annotate(self, target: Target, ref: str, *, name: str | None = None, note: str | None = None,
                 starred: bool | None = None) -> Annotation:
        """Set a name, a note and / or the star of ``ref`` (``None`` keeps what was there; ``""`` clears it).

        Raises:
            ValueError: a name or note too long (nothing is changed).
        """
        changes: Row = {}
        if name is not None:
            changes["name"] = _clean(name, MAX_NAME_CHARS, "name", one_line=True)
        if note is not None:
            changes["note"] = _clean(note, MAX_NOTE_CHARS, "note", one_line=False)
        if starred is not None:
            changes["starred"] = int(bool(starred))
        key = _key(target, ref)
        with self.backend.atomic():
            changes["updated_at"] = time.time()
            if not self.backend.update("annotations", key, changes):
                self.backend.put("annotations", {"id": key, "name": "", "note": "", "starred": 0, **changes})
        return self.annotation(target, ref)

    def forget(self, target: Target, ref: str) -> None:
        """Drop what was written on ``ref`` (when it is deleted)."""
        self.backend.delete("annotations", _key(target, ref))


def with_note(card_markdown: str, annotation: Annotation | None) -> str:
    """A model card with the team's name and note for the result appended (unchanged when there is none)."""
    if annotation is None or not (annotation.note or annotation.name or annotation.starred):
        return card_markdown
    lines = ["", "## Notes from the team", ""]
    if annotation.name:
        lines.append(f"Name: {annotation.name}")
    if annotation.starred:
        lines.append("Starred as a result worth shipping.")
    if annotation.note:
        lines += ["", annotation.note]
    return card_markdown.rstrip("\n") + "\n" + "\n".join(lines) + "\n"
