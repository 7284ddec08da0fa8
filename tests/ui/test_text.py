"""Outside text (file names, engine errors) shows literally through Streamlit's Markdown."""
from __future__ import annotations

from pathlib import Path

from lwdash.ui.text import literal


def test_markdown_specials_are_escaped_and_plain_text_is_kept() -> None:
    assert literal("__main__.Net") == r"\_\_main\_\_.Net"  # was rendered as a bold "main"
    assert literal("a*b* `x` [y](z) $5 <b> ~s~ |t|") == r"a\*b\* \`x\` \[y\](z) \$5 \<b\> \~s\~ \|t\|"
    assert literal("error: input (1, 4, 4), 50 % done.") == "error: input (1, 4, 4), 50 % done."
    assert literal(ValueError("bad_name")) == r"bad\_name"


def test_a_refused_pickle_names_its_class_literally(data_dir: Path, app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    payload = b"\x80\x02c__main__\nNet\nq\x00)\x81q\x01."  # a pickled __main__.Net instance (torch.save of a script's class)
    at = app()
    at.file_uploader(key="models.upload").upload("net.pt", payload).run()
    assert not at.exception and at.error
    shown = at.error[0].value
    assert "__main__" not in shown.replace(r"\_\_main\_\_", "")  # every __main__ is escaped
