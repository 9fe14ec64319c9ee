"""campwatch: observability sidecar for self-hosted LLM serving."""

from __future__ import annotations

from agent.loglimit import install_library_cap

__version__ = "0.1.0"

install_library_cap()  # every agent.* log record is capped in length, however it is handled
