"""Suite-wide settings: the test suite measures latency on the cheap runtimes unless a test says otherwise.

The job default (docs/runtimes.md) adds OpenVINO, whose measurement runs in a child process
(seconds per model); torch.compile and TVM compile for tens of seconds per model and batch.
Each of those has its own tests under tests/runtimes/, on the digits CNN. Setting
``LWDASH_RUNTIMES`` before running the suite overrides this.
"""
from __future__ import annotations

import os

#: The runtimes every measurement in the suite times by default: all in-process, milliseconds to set up.
TEST_RUNTIMES = "ort,ort_nofusion,torch"
os.environ.setdefault("LWDASH_RUNTIMES", TEST_RUNTIMES)
