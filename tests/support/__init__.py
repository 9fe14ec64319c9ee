"""What tests and benchmarks share, imported (never copied): `clock` (a hand-moved monotonic clock),
`net` (a free loopback port), `db` (throwaway SQLite and PostgreSQL databases, as pytest fixtures
and as plain functions), `rows` (sample rows and a writer over agent.store.rows), `fakenvml` (the
fake libnvidia-ml.so.1, built from tests/fakenvml/fakenvml.c), `pages` (captured /metrics pages
replayed with growing counters; live vLLM pages come from agent.sim.vllm_metrics), `traffic`
(seeded request records and texts for drift) and `private_pg` (a private PostgreSQL server to
stop, freeze or kill).

Benchmarks import them as `tests.support.*` when run from the repository root as
`python -m benchmarks.<name>`; pytest puts the root on sys.path (pyproject `pythonpath`)."""
