"""Shape-relative reshapes in loaded graphs, so that a graph whose channels are pruned still runs.

Exported graphs (``torch.export`` programs, ONNX files) bake the sizes of every ``view`` /
``Reshape`` in: ``view(x, [B, 2, 24, 4, 4])`` is a channel shuffle of 48 channels. Eager PyTorch
code computes those sizes from ``x.shape``, so structured pruning (which removes channels) keeps
it working; the baked graph would fail. :func:`make_reshapes_relative` rewrites each such reshape,
from the concrete input and output shapes seen on an example batch, as a chain of
``flatten(x, i, j)`` (dims merged) and ``unflatten(x, i, [a, -1])`` (one dim split) that gives
the same result at the example's shapes and follows the input's sizes otherwise. Reshapes that
mix merging and splitting are left as they are.

A split's ``-1`` goes to its largest factor, the one that holds the channels in the graphs met so
far (a channel shuffle's ``[groups, channels / groups]`` keeps its group count). Every rewrite is
checked by the caller: outputs compared before and after on random inputs.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import fx, nn

__all__ = ["make_reshapes_relative", "outputs_match", "reshape_blocks"]

aten = torch.ops.aten


def reshape_blocks(src: list[int], dst: list[int]) -> list[tuple[list[int], list[int]]] | None:
    """Split a reshape ``src -> dst`` into consecutive blocks of equal size products.

    Returns:
        ``[(src dims, dst dims), ...]`` covering both shapes in order, or None when the sizes
        do not line up (not a valid reshape). Size-1 dims join the block before them.
    """
    if not src or not dst:
        return None
    blocks: list[tuple[list[int], list[int]]] = []
    i = j = 0
    while i < len(src) and j < len(dst):
        bi, bj = [i], [j]
        pi, pj = src[i], dst[j]
        i += 1
        j += 1
        while pi != pj:
            if pi < pj and i < len(src):
                bi.append(i)
                pi *= src[i]
                i += 1
            elif pj < pi and j < len(dst):
                bj.append(j)
                pj *= dst[j]
                j += 1
            else:
                return None
        blocks.append((bi, bj))
    # trailing size-1 dims on either side
    while i < len(src):
        if src[i] != 1:
            return None
        blocks[-1][0].append(i)
        i += 1
    while j < len(dst):
        if dst[j] != 1:
            return None
        blocks[-1][1].append(j)
        j += 1
    return blocks


def _chain(src: list[int], dst: list[int]) -> list[tuple[Any, tuple[Any, ...]]] | None:
    """The flatten/unflatten calls (right to left) that turn ``src`` into ``dst``, or None."""
    blocks = reshape_blocks(src, dst)
    if blocks is None:
        return None
    calls: list[tuple[Any, tuple[Any, ...]]] = []
    # Positions shift as blocks are rewritten; going right to left keeps the left ones valid.
    for bi, bj in reversed(blocks):
        if len(bi) == 1 and len(bj) == 1:
            continue
        if len(bi) > 1 and len(bj) > 1:
            return None  # merge-and-split in one block: no relative form
        if len(bi) > 1:
            calls.append((aten.flatten.using_ints, (bi[0], bi[-1])))
        else:
            sizes = [dst[k] for k in bj]
            big = max(range(len(sizes)), key=lambda k: sizes[k])
            sizes[big] = -1
            calls.append((aten.unflatten.int, (bi[0], sizes)))
    return calls


def make_reshapes_relative(
    gm: fx.GraphModule, example: torch.Tensor, is_reshape: Callable[[fx.GraphModule, fx.Node], bool]
) -> int:
    """Rewrite, in place, each reshape node of ``gm`` with baked sizes as a flatten/unflatten chain.

    Args:
        gm: the graph module (its graph is changed and recompiled).
        example: an input batch; the shapes seen on it decide each rewrite.
        is_reshape: whether a node is a reshape whose first argument is the reshaped tensor.

    Returns:
        The number of reshapes rewritten.
    """
    from torch.fx.passes.shape_prop import ShapeProp

    candidates = [n for n in gm.graph.nodes if is_reshape(gm, n)]
    if not candidates:
        return 0
    with torch.no_grad():
        ShapeProp(gm).propagate(example)
    changed = 0
    for node in candidates:
        x = node.args[0] if node.args else None
        if not isinstance(x, fx.Node):
            continue
        src_meta, dst_meta = x.meta.get("tensor_meta"), node.meta.get("tensor_meta")
        if src_meta is None or dst_meta is None or not hasattr(src_meta, "shape") or not hasattr(dst_meta, "shape"):
            continue
        calls = _chain([int(d) for d in src_meta.shape], [int(d) for d in dst_meta.shape])
        if calls is None:
            continue
        cur: fx.Node = x
        with gm.graph.inserting_before(node):
            for fn, extra in calls:
                cur = gm.graph.call_function(fn, (cur, *extra))
        if not calls:  # the same shape: the reshape is a no-op
            cur = x
        node.replace_all_uses_with(cur)
        gm.graph.erase_node(node)
        changed += 1
    if changed:
        gm.graph.eliminate_dead_code()
        gm.graph.lint()
        gm.delete_all_unused_submodules()
        gm.recompile()
    return changed


def outputs_match(a: nn.Module, b: nn.Module, input_shape: tuple[int, ...], *, rtol: float = 1e-4,
                  atol: float = 1e-5) -> bool:
    """Whether two modules give the same outputs on seeded random inputs at batch 1 and 3."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for batch in (1, 3):
            x = torch.randn((batch, *input_shape), generator=gen)
            ya, yb = a(x), b(x)
            if not isinstance(ya, torch.Tensor) or not isinstance(yb, torch.Tensor) or ya.shape != yb.shape:
                return False
            if not torch.allclose(ya, yb, rtol=rtol, atol=atol):
                return False
    return True
