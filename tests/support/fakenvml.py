"""Build and drive the fake libnvidia-ml.so.1 (tests and benchmarks import tests.support.fakenvml).

`build_fake_library()` compiles tests/fakenvml/fakenvml.c with gcc into
tests/.build/fakenvml/<source hash>/, once; the C source and the scenarios stay in tests/fakenvml/.
`FakeNvml.install()` loads it process-wide with RTLD_GLOBAL, so pynvml's own
`CDLL("libnvidia-ml.so.1")` resolves to it (the dynamic loader matches the already loaded soname).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
HERE = TESTS / "fakenvml"
SOURCE = HERE / "fakenvml.c"
SCENARIOS = HERE / "scenarios"
BUILD_ROOT = TESTS / ".build" / "fakenvml"
SONAME = "libnvidia-ml.so.1"


def build_fake_library() -> Path:
    """The compiled fake, rebuilt only when fakenvml.c changes. Returns its directory's .so path."""
    source = SOURCE.read_bytes()
    digest = hashlib.sha256(source).hexdigest()[:16]
    target = BUILD_ROOT / digest / SONAME
    if target.exists():
        return target
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        raise RuntimeError("building the fake NVML library needs gcc (or cc) on PATH")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".so", delete=False) as tmp:
        partial = Path(tmp.name)
    try:
        subprocess.run(
            [gcc, "-O2", "-shared", "-fPIC", "-fvisibility=hidden", "-Wall", "-Wextra", "-Werror",
             f"-Wl,-soname,{SONAME}", "-o", str(partial), str(SOURCE)],
            check=True, capture_output=True, text=True,
        )
    except subprocess.CalledProcessError as exc:
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"gcc failed to build {SOURCE}:\n{exc.stderr}") from None
    os.replace(partial, target)  # atomic: a concurrent build sees the old or the whole new file
    for stale in BUILD_ROOT.iterdir():  # builds of earlier sources (a loaded copy survives unlinking)
        if stale != target.parent and stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    return target


class FakeNvml:
    """Control of the loaded fake: which scenario it plays, which step it is at, what was called."""

    def __init__(self, library: Path) -> None:
        self.path = library
        self._lib = ctypes.CDLL(str(library), mode=ctypes.RTLD_GLOBAL)
        self._lib.fakenvml_load.argtypes = [ctypes.c_char_p]
        self._lib.fakenvml_error.restype = ctypes.c_char_p
        self._lib.fakenvml_calls.argtypes = [ctypes.c_char_p]
        self._lib.fakenvml_calls.restype = ctypes.c_long
        self._lib.fakenvml_step.argtypes = [ctypes.c_int]

    @classmethod
    def install(cls) -> FakeNvml:
        return cls(build_fake_library())

    def load(self, scenario: str | Path) -> None:
        """Play a scenario file (a Path or a name under scenarios/, with or without .scn)."""
        path = Path(scenario)
        if not path.is_absolute() and not path.exists():
            path = SCENARIOS / (str(scenario) if str(scenario).endswith(".scn") else f"{scenario}.scn")
        if self._lib.fakenvml_load(str(path).encode()) != 0:
            raise ValueError(self.error())

    def reset(self) -> None:
        """Back to the built-in defaults (one H100), step 0, call counters cleared."""
        self._lib.fakenvml_load(None)

    def disarm(self) -> None:
        """Play a host without NVIDIA driver (nvmlInit: LibraryNotFound) until the next load, so code
        that runs later in the same process cannot mistake the fake for real GPUs."""
        self._lib.fakenvml_disarm()

    def load_text(self, text: str, directory: Path) -> Path:
        """Write a scenario to `directory` and play it; returns the file's path."""
        path = directory / "scenario.scn"
        path.write_text(text, encoding="utf-8")
        self.load(path)
        return path

    def error(self) -> str:
        return (self._lib.fakenvml_error() or b"").decode()

    def step(self, n: int = 1) -> int:
        return int(self._lib.fakenvml_step(n))

    @property
    def current_step(self) -> int:
        return int(self._lib.fakenvml_get_step())

    def calls(self, function: str | None = None) -> int:
        count = int(self._lib.fakenvml_calls(function.encode() if function else None))
        if count < 0:
            raise KeyError(f"the fake does not implement {function}")
        return count

    def reset_calls(self) -> None:
        self._lib.fakenvml_reset_calls()

    @property
    def last_wait_timeout_ms(self) -> int:
        return int(self._lib.fakenvml_last_wait_timeout())

    @property
    def init_count(self) -> int:
        return int(self._lib.fakenvml_init_count())
