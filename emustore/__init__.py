"""emustore: container images written as Docker (20.10, 26, 28) or containerd store them, without a daemon.

Python API: `emustore.pull(ref, root=…)` and `emustore.Store(root)` (see emustore.api).
"""

__version__ = "0.1.0"

from emustore.api import PullOptions, Store, pull  # noqa: E402  (binds `emustore.pull` to the function)

__all__ = ["PullOptions", "Store", "pull", "__version__"]
