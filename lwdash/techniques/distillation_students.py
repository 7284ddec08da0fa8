"""Distillation students: build a smaller, freshly initialised model from the teacher, and forward helpers.

A student is the teacher narrowed (torch-pruning's group-aware channel removal), the teacher
without its shape-preserving blocks (``shallow``), or a catalogue architecture for the
teacher's input shape. Used by :mod:`lwdash.techniques.distillation`.
"""
from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import torch
from torch import nn

__all__ = ["StudentChoice", "build_student", "params_count"]

StudentChoice = Literal["narrow_0.5", "narrow_0.25", "narrow_0.125", "shallow", "digits_student", "fashion_student"]

# The catalogue students: sample architectures (lwdash.models.registry) for one input shape each.
_CATALOGUE_STUDENTS = ("digits_student", "fashion_student")


def params_count(model: nn.Module) -> int:
    """Number of parameters of ``model``."""
    return int(sum(p.numel() for p in model.parameters()))


def _check_smaller(student: nn.Module, teacher: nn.Module) -> None:
    n, m = params_count(student), params_count(teacher)
    if n >= m:
        raise ValueError(f"student has {n} params, teacher {m}: a student must be smaller")


@torch.no_grad()
def _num_classes(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    out = _forward_eval(model, torch.zeros((2, *input_shape)))
    if out.ndim != 2:
        raise ValueError(f"distillation needs a classifier with (batch, classes) output; this model returns {tuple(out.shape)}")
    return int(out.shape[1])


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Run in eval mode and restore each submodule's training flag afterwards (never mutate the caller's model)."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, flag in flags:
            m.train(flag)


def _forward_eval(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with _eval_mode(model), torch.no_grad():
        out = model(x)
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"distillation needs a model returning one logits tensor, got {type(out).__name__}")
    return out


def _weighted_layers_in_call_order(model: nn.Module, input_shape: tuple[int, ...]) -> list[tuple[str, nn.Module, torch.Size]]:
    """Conv and Linear layers in the order one forward pass calls them, with their output shapes."""
    order: list[tuple[str, nn.Module, torch.Size]] = []
    hooks = []
    for name, m in model.named_modules():
        if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd)):

            def hook(mod: nn.Module, args: Any, out: Any, name: str = name) -> None:
                if isinstance(out, torch.Tensor):
                    order.append((name, mod, out.shape))

            hooks.append(m.register_forward_hook(hook))
    try:
        _forward_eval(model, torch.zeros((2, *input_shape)))
    finally:
        for h in hooks:
            h.remove()
    return order


def _reinitialize(model: nn.Module) -> None:
    """Fresh random weights (and running statistics) for every module that can reset itself."""
    for m in model.modules():
        reset = getattr(m, "reset_parameters", None)
        if callable(reset):
            reset()


def _narrow(teacher: nn.Module, width: float, input_shape: tuple[int, ...]) -> nn.Module:
    """The teacher's architecture with every hidden Conv/Linear width scaled by ``width``.

    torch-pruning's group-aware MetaPruner removes ``1 - width`` of the channels of every
    prunable layer group (coupled layers shrink together), leaving the output layer alone.
    """
    import torch_pruning as tp

    student = copy.deepcopy(teacher).eval()
    student.requires_grad_(True)  # torch-pruning traces the autograd graph
    layers = _weighted_layers_in_call_order(student, input_shape)
    if not layers:
        raise ValueError("a narrow student needs Conv or Linear layers; this model has none")
    output_layer = layers[-1][1]
    example = torch.zeros((1, *input_shape))
    try:
        pruner = tp.pruner.MetaPruner(
            student,
            example,
            importance=tp.importance.GroupMagnitudeImportance(p=2),
            pruning_ratio=1.0 - width,
            ignored_layers=[output_layer],
        )
        pruner.step()
    except Exception as e:  # torch-pruning cannot trace some graphs (e.g. converted ONNX models)
        raise ValueError(
            f"could not build a narrow_{width:g} student from this model (torch-pruning: {type(e).__name__}: {e}); "
            "try the digits_student catalogue student or shallow"
        ) from e
    return student


def _shallow(teacher: nn.Module, input_shape: tuple[int, ...]) -> tuple[nn.Module, list[str]]:
    """The teacher without its shape-preserving blocks.

    A block qualifies when it holds a Conv or Linear layer, is called once with one tensor and
    returns a tensor of the same shape (a repeated residual block, a width-preserving hidden
    layer): such a block can be replaced by the identity without changing any other layer.
    The outermost qualifying blocks are removed; each stage keeps its shape-changing block.

    Returns:
        The student and the names of the removed blocks.

    Raises:
        ValueError: the model has no such block.
    """
    student = copy.deepcopy(teacher).eval()
    layers = _weighted_layers_in_call_order(student, input_shape)
    output_name = layers[-1][0] if layers else ""
    calls: dict[str, int] = {}
    same_shape: dict[str, bool] = {}
    hooks = []
    for name, m in student.named_modules():
        if not name or not any(isinstance(x, (nn.Linear, nn.modules.conv._ConvNd)) for x in m.modules()):
            continue

        def hook(mod: nn.Module, args: Any, kwargs: Any, out: Any, name: str = name) -> None:
            calls[name] = calls.get(name, 0) + 1
            ok = (
                len(args) == 1
                and not kwargs
                and isinstance(args[0], torch.Tensor)
                and isinstance(out, torch.Tensor)
                and args[0].shape == out.shape
            )
            same_shape[name] = same_shape.get(name, True) and ok

        hooks.append(m.register_forward_hook(hook, with_kwargs=True))
    try:
        _forward_eval(student, torch.zeros((2, *input_shape)))
    finally:
        for h in hooks:
            h.remove()
    qualifying = [
        n
        for n in calls
        if calls[n] == 1
        and same_shape.get(n, False)
        and not (output_name == n or output_name.startswith(n + "."))
    ]
    outermost = [n for n in qualifying if not any(n.startswith(p + ".") for p in qualifying)]
    if not outermost:
        raise ValueError(
            "a shallow student needs shape-preserving blocks to drop (e.g. repeated residual blocks or "
            "equal-width hidden layers) and this model has none; pick narrow_0.5, narrow_0.25 or narrow_0.125"
        )
    for name in outermost:
        parent_name, _, child = name.rpartition(".")
        parent = student.get_submodule(parent_name) if parent_name else student
        setattr(parent, child, nn.Identity())
    return student, outermost


def build_student(
    teacher: nn.Module, choice: StudentChoice, input_shape: tuple[int, ...], num_classes: int, *, seed: int
) -> nn.Module:
    """Build a freshly initialised student for ``teacher`` (the teacher is not modified).

    Args:
        teacher: the model to distil.
        choice: ``narrow_<x>`` (hidden widths scaled by x), ``shallow`` (shape-preserving blocks
            removed), ``digits_student`` or ``fashion_student`` (the catalogue architectures for
            ``(1, 8, 8)`` and ``(1, 28, 28)`` input).
        input_shape: per-sample input shape, no batch dim.
        num_classes: number of output logits.
        seed: seed of the student's initialisation.

    Returns:
        The student in eval mode, producing ``(B, num_classes)`` logits.

    Raises:
        ValueError: the student cannot be built for this teacher or input shape.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if choice.startswith("narrow_"):
            student = _narrow(teacher, float(choice.removeprefix("narrow_")), input_shape)
        elif choice == "shallow":
            student, _ = _shallow(teacher, input_shape)
        elif choice in _CATALOGUE_STUDENTS:
            from lwdash.models.registry import architecture_input_shape, build_architecture

            expected = tuple(architecture_input_shape(choice))
            if tuple(input_shape) != expected:
                raise ValueError(
                    f"the {choice} architecture takes input {expected}; this model takes {tuple(input_shape)}: "
                    "pick a narrow_* or shallow student"
                )
            student = build_architecture(choice, num_classes)
        else:
            raise ValueError(
                f"unknown student {choice!r}; accepted: narrow_0.5, narrow_0.25, narrow_0.125, shallow, "
                + ", ".join(_CATALOGUE_STUDENTS)
            )
        _reinitialize(student)
    student.requires_grad_(True)
    student.eval()
    out = _forward_eval(student, torch.zeros((2, *input_shape)))
    if tuple(out.shape) != (2, num_classes):
        raise ValueError(f"the {choice} student returns {tuple(out.shape[1:])}, the teacher ({num_classes},)")
    return student
