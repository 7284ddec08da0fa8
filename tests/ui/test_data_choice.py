"""The data-set choice under AppTest: the bundled sets with titles and descriptions; an absent one shows its hint."""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from lwdash.data.bundled import get_bundled
from lwdash.workspace import SqliteStore


@pytest.fixture
def no_fashion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Fashion-MNIST absent: its folder is an empty one."""
    folder = tmp_path / "no-fashion"
    folder.mkdir()
    monkeypatch.setenv("LWDASH_FASHION_MNIST_DIR", str(folder))
    return folder


def _tiny_28_onnx(path: Path) -> Path:
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 13 * 13, 10)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(model, (torch.zeros(1, 1, 28, 28),), str(path), dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["logits"],
                          dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}})
    return path


def test_bundled_sets_are_offered_with_titles_and_the_chosen_ones_description(
    data_dir: Path, app, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    store = SqliteStore(data_dir)
    model = store.import_model("tiny28.onnx", _tiny_28_onnx(tmp_path / "tiny28.onnx").read_bytes())
    at = app("pages/compress.py")
    assert not at.exception and not at.info
    picker = at.selectbox(key="compress.data")
    assert picker.value == "fashion_mnist"  # the default model takes 1x28x28: the set made for that shape
    quick = get_bundled("fashion_mnist_quick")
    assert f"{quick.title} · 7,500 samples · input (1, 28, 28)" in picker.options
    assert any(o.startswith(get_bundled("fashion_mnist").title) for o in picker.options)
    assert get_bundled("fashion_mnist").description in [c.value for c in at.caption]

    # A digits model while Fashion-MNIST is chosen: the choice moves to digits, and the page says why.
    at.selectbox(key="compress.model").set_value("sample/digits_cnn").run()
    assert not at.exception and at.selectbox(key="compress.data").value == "digits"
    assert any("this model takes (1, 8, 8): switched to" in c.value for c in at.caption)
    assert get_bundled("digits").description in [c.value for c in at.caption]

    at.selectbox(key="compress.model").set_value(model.id).run()
    at.selectbox(key="compress.data").set_value("fashion_mnist_quick").run()
    assert quick.description in [c.value for c in at.caption]
    at.selectbox(key="compress.technique").set_value("magnitude_pruning").run()
    at.button(key="compress.submit").click().run()
    assert not at.exception and not at.error
    (job,) = store.list_jobs()
    assert (job.spec.model_id, job.spec.data_ref) == (model.id, "fashion_mnist_quick")
    assert at.session_state["sel.data_ref"] == "fashion_mnist_quick"


def test_an_absent_set_shows_its_install_hint_and_the_app_keeps_working_with_digits(
    data_dir: Path, app, no_fashion: Path  # type: ignore[no-untyped-def]
) -> None:
    at = app("pages/compress.py")
    assert not at.exception
    assert at.selectbox(key="compress.data").options == ["Digits (handwritten, 8x8) · 1,797 samples · input (1, 8, 8)"]
    (hint,) = at.info
    assert get_bundled("fashion_mnist").title in hint.value and get_bundled("fashion_mnist_quick").title in hint.value
    assert "not offered on this machine" in hint.value and "sudo apt-get install dataset-fashion-mnist" in hint.value
    assert str(no_fashion) in hint.value

    at.selectbox(key="compress.model").set_value("sample/digits_mlp").run()
    at.selectbox(key="compress.technique").set_value("magnitude_pruning").run()
    at.button(key="compress.submit").click().run()
    assert not at.exception and not at.error
    (job,) = SqliteStore(data_dir).list_jobs()
    assert job.spec.data_ref == "digits"


def test_a_selection_of_an_absent_set_falls_back_to_digits_on_the_models_page(
    data_dir: Path, no_fashion: Path
) -> None:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "app.py"), default_timeout=60)
    at.session_state["sel.data_ref"] = "fashion_mnist"  # chosen before the package went away
    at.session_state["sel.model_id"] = "sample/digits_mlp"  # a digits sample (the gallery starts at a Fashion-MNIST one)
    at.run()
    assert not at.exception
    assert at.selectbox(key="models.data").value == "digits" and at.session_state["sel.data_ref"] == "digits"
    assert "apt-get install dataset-fashion-mnist" in at.info[0].value
    at.button(key="models.measure").click().run()
    assert not at.exception and not at.error
    (job,) = SqliteStore(data_dir).list_jobs()
    assert (job.spec.kind, job.spec.data_ref) == ("baseline", "digits")


def test_the_gallery_names_the_data_set_each_recorded_accuracy_was_measured_on(data_dir: Path, app) -> None:  # type: ignore[no-untyped-def]
    at = app()
    captions = [c.value for c in at.caption if c.value.startswith("Recorded test accuracy")]
    assert "Recorded test accuracy 92.34 % (training script, PyTorch, Fashion-MNIST (clothing, 28x28) test split)" in captions
    assert "Recorded test accuracy 99.44 % (training script, PyTorch, Digits (handwritten, 8x8) test split)" in captions
