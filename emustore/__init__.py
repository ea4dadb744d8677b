"""emustore: container images written into a Docker Engine 20.10 data root, without a daemon."""

__version__ = "0.1.0"
