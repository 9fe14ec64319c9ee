"""campwatch's benchmarks, run from the repository root as modules (`python -m benchmarks.<name>`,
or `make bench`), so that they import agent and tests.support without touching sys.path."""
