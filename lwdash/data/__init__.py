"""Datasets: the bundled sets (scikit-learn digits, Fashion-MNIST: :mod:`lwdash.data.bundled`) and uploaded
evaluation sets (``.npz``, zipped image folders).

Public names load on first use: importing :mod:`lwdash.data.catalog` stays free of torch.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from lwdash.lazy import lazy_exports

if TYPE_CHECKING:
    from lwdash.data.base import DataError, Dataset, Split
    from lwdash.data.bundled import load_bundled
    from lwdash.data.digits import load_digits
    from lwdash.data.fashion_mnist import load_fashion_mnist
    from lwdash.data.fit import check_model_fits
    from lwdash.data.imagefolder import load_image_folder
    from lwdash.data.npz import load_dataset, load_npz

__all__ = [
    "DataError",
    "Dataset",
    "Split",
    "check_model_fits",
    "load_bundled",
    "load_dataset",
    "load_digits",
    "load_fashion_mnist",
    "load_image_folder",
    "load_npz",
]

#: Where each public name is defined: imported on first use (PEP 562), so a process that
#: needs only this package's torch-free parts (the worker's supervisor) never loads torch.
_EXPORTS = {
    "DataError": "lwdash.data.base",
    "Dataset": "lwdash.data.base",
    "Split": "lwdash.data.base",
    "load_bundled": "lwdash.data.bundled",
    "load_digits": "lwdash.data.digits",
    "load_fashion_mnist": "lwdash.data.fashion_mnist",
    "check_model_fits": "lwdash.data.fit",
    "load_image_folder": "lwdash.data.imagefolder",
    "load_dataset": "lwdash.data.npz",
    "load_npz": "lwdash.data.npz",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
