"""TEST-ONLY: ``python tests/jobs/_launch_worker.py [worker options]`` is ``python -m lwdash worker``
with the test-only techniques (``_worker_test_techniques``) and the fast job kind (``_fast_jobs``)
registered in its job processes.

The mechanism is multiprocessing's own, nothing in lwdash reads a test setting: every job process
the local executor starts (forked from its zygote) first imports the worker's main script again, as
``__mp_main__``, and that import registers the test-only code. The worker itself (``__main__``) runs
the real worker main (:func:`lwdash.jobs.worker.main`) and imports no torch, as a real worker.
"""
from __future__ import annotations

import sys

if __name__ == "__main__":
    from lwdash.jobs.worker import main

    sys.exit(main())
else:  # a job process importing this script again (as __mp_main__) before it runs its job
    import _fast_jobs  # noqa: F401  (registers the "test_fast" job kind)
    import _worker_test_techniques  # noqa: F401  (registers test_sleep, test_sigkill, ...)
