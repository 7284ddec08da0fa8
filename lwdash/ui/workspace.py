"""Keeping the workspace tidy: rename, star, annotate and delete a model or a result, beside what it shows.

Names, notes and stars are :mod:`lwdash.annotations`; a deletion goes through the store (a result's
artifacts, an upload's file) after an explicit confirmation. Nothing measured is ever edited.
"""
from __future__ import annotations

import streamlit as st

from lwdash.annotations import MAX_NAME_CHARS, MAX_NOTE_CHARS, Target
from lwdash.store.records import NotFoundError
from lwdash.ui import state
from lwdash.ui.text import literal
from lwdash.workspace import Store

__all__ = ["workspace_key", "workspace_panel"]


def workspace_key(target: Target, field: str, ref: str) -> str:
    """The widget key of one workspace control (``workspace.result.name.<id>``)."""
    return f"{state.WORKSPACE}.{target}.{field}.{ref}"


def workspace_panel(store: Store, target: Target, ref: str, *, title: str, deletable: bool = True,
                    forget: tuple[str, ...] = ()) -> None:
    """An expander with the team's name, note and star for ``ref``, and its deletion behind a confirmation.

    Args:
        title: what the object is called now (shown in the confirmation).
        deletable: whether it can be deleted (a bundled sample cannot).
        forget: session-state keys that point at ``ref`` and are cleared once it is deleted.
    """
    note = store.annotation(target, ref)
    what = "model" if target == "model" else "result"
    with st.expander(f"Rename, star, annotate or delete this {what}", icon=":material/edit_note:"):
        with st.form(workspace_key(target, "form", ref), border=False):
            name = st.text_input("Name", value=note.name, max_chars=MAX_NAME_CHARS,
                                 placeholder=title, key=workspace_key(target, "name", ref),
                                 help=f"What the pages, the report and the model card call this {what}; empty: "
                                      "the name it was given.")
            text = st.text_area("Note", value=note.note, max_chars=MAX_NOTE_CHARS, height=90,
                                key=workspace_key(target, "note", ref),
                                help="Why it matters, what to try next: shown with it, in the report and the "
                                     "model card.")
            star = st.checkbox("Starred", value=note.starred, key=workspace_key(target, "star", ref),
                               help="Starred results are marked ★ on Compare and in the report.")
            if st.form_submit_button("Save", icon=":material/save:", key=workspace_key(target, "save", ref)):
                try:
                    store.annotate(target, ref, name=name, note=text, starred=star)
                except ValueError as e:
                    st.error(str(e))
                else:
                    st.rerun()
        if not deletable:
            st.caption("A bundled sample cannot be deleted; its name, note and star can be changed above.")
            return
        sure = st.checkbox(f"Delete {literal(title)}" + (" and its artifacts" if target == "result" else
                                                           " and its stored file") + ": this cannot be undone",
                           key=workspace_key(target, "confirm", ref))
        if st.button(f"Delete this {what}", disabled=not sure, type="primary", icon=":material/delete:",
                     key=workspace_key(target, "delete", ref)):
            try:
                if target == "result":
                    store.delete_result(ref)
                else:
                    store.delete_model(ref)
            except (NotFoundError, ValueError) as e:
                st.error(str(e))
                return
            for key in forget:
                st.session_state.pop(key, None)
            st.rerun()
