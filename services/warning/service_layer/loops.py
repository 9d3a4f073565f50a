"""Background loops: the shared runner (:mod:`services.common.loops`)."""

from services.common.loops import BackgroundLoop

__all__ = ["BackgroundLoop"]
