"""Deterministic counts of what a training loop does: Python calls, torch operators, instructions.

Each counter runs around a suite's train() alone (common.measure.probe installs it) and gives
the same numbers for the same program and inputs whatever else the machine is doing:
- CallCounter: every Python function call and every C function called from Python
  (sys.setprofile), keyed by the package whose code it is: a Python function by the module that
  defines it, a C function by the module of the Python code that called it (Lightning calling
  `torch.tensor` is Lightning's doing). Whatever the harness calls, and everything beneath it,
  is left out: it is not the framework's cost.
- count_operators: the torch operators that reach the dispatcher (forward and backward), from a
  TorchDispatchMode.
- CallgrindWindow: callgrind's instruction count, collected between open() and close() only
  (valgrind's client requests, in a small C library built here with the system's compiler).
The scenario runs each twice, for N and for 2N steps: the difference over N is one step.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import hashlib
import re
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType, FrameType

from common.task import code, paths
from common.task.data import default_cache_dir

GROUP_HARNESS = "harness"  # the comparison's own code: left out of every count
GROUP_SUITE = "suite"  # the example's code (a suite file above its harness section)
GROUP_STDLIB = "python"  # Python's standard library
_STDLIB_PATHS = tuple(
    str(Path(sysconfig.get_paths()[name]).resolve()) for name in ("stdlib", "platstdlib")
)
_SITE_PATHS = tuple(
    str(Path(sysconfig.get_paths()[name]).resolve()) for name in ("purelib", "platlib")
)


@dataclass(frozen=True)
class Origin:
    """Whose code a frame runs: the group it counts under and the module that defines it."""

    group: str
    module: str


def _harness_line(path: str) -> int | None:
    """The first line of a suite file's harness section (None: not a suite file)."""
    file = Path(path)
    if file.parent != paths.ROOT / "suites" or file.suffix != ".py":
        return None
    lines = file.read_text().splitlines()
    return next(
        (n for n, line in enumerate(lines, 1) if line.startswith(code.HARNESS_MARKER)),
        len(lines) + 1,
    )


class Classifier:
    """Origin of a code object, cached: the top-level package of its module for installed code,
    `suite` or `harness` for the project's own files, `python` for the standard library."""

    def __init__(self) -> None:
        self._origins: dict[CodeType, Origin] = {}
        self._harness_lines: dict[str, int | None] = {}

    def __call__(self, frame: FrameType) -> Origin:
        found = self._origins.get(frame.f_code)
        if found is None:
            found = self._origins[frame.f_code] = self._classify(frame)
        return found

    def _classify(self, frame: FrameType) -> Origin:
        module = str(frame.f_globals.get("__name__", "?"))
        filename = frame.f_code.co_filename
        top = module.split(".", 1)[0]
        if top == "common" or module == "__main__":
            return Origin(GROUP_HARNESS, module)
        if top == "suites":
            if filename not in self._harness_lines:
                self._harness_lines[filename] = _harness_line(filename)
            start = self._harness_lines[filename]
            in_harness = start is not None and frame.f_code.co_firstlineno >= start
            return Origin(GROUP_HARNESS if in_harness else GROUP_SUITE, module)
        resolved = str(Path(filename).resolve()) if filename.startswith("/") else filename
        if resolved.startswith(_STDLIB_PATHS) and not resolved.startswith(_SITE_PATHS):
            return Origin(GROUP_STDLIB, module)
        if filename.startswith("<"):  # frozen modules, namedtuple's generated methods
            return Origin(GROUP_STDLIB, module)
        return Origin(top, module)


def _c_name(function: object) -> str:
    """A C function's name as Python shows it: `torch._C.TensorBase.item`, `builtins.len`."""
    owner = getattr(function, "__self__", None)
    module = getattr(function, "__module__", None)
    name = getattr(function, "__qualname__", None) or getattr(function, "__name__", "?")
    if module is None and owner is not None:
        owner_type = owner if isinstance(owner, type) else type(owner)
        module = f"{owner_type.__module__}.{owner_type.__qualname__}"
    return f"{module or 'builtins'}.{name}"


@dataclass
class CallCounter:
    """sys.setprofile's count of calls, two ways.

    counts, by (on behalf of, group, module, function) of the function called. group: whose code
    it is (a Python function's package; for a C function, the package of the Python code that
    called it). on behalf of: the same, except that a standard-library function counts for the
    package that called into it (Lightning's `inspect` calls are Lightning's doing).
    made, by (group, module, function) of the caller: the calls each function's body makes,
    its standard-library helpers' calls included."""

    classify: Classifier = field(default_factory=Classifier)
    counts: collections.Counter = field(default_factory=collections.Counter)
    made: collections.Counter = field(default_factory=collections.Counter)
    _harness_depth: int = 0

    def _owner(self, frame: FrameType | None) -> tuple[FrameType | None, Origin | None]:
        """The nearest frame at or below `frame` that is not the standard library's."""
        while frame is not None:
            origin = self.classify(frame)
            if origin.group != GROUP_STDLIB or frame.f_back is None:
                return frame, origin
            frame = frame.f_back
        return None, None

    def _count(self, callee: Origin, name: str, caller: FrameType | None) -> None:
        owner, by = self._owner(caller)
        behalf = callee.group if callee.group != GROUP_STDLIB or by is None else by.group
        self.counts[behalf, callee.group, callee.module, name] += 1
        if owner is not None and by is not None and by.group != GROUP_HARNESS:
            self.made[by.group, by.module, owner.f_code.co_qualname] += 1

    def _profile(self, frame: FrameType, event: str, arg: object) -> None:
        if event == "call":
            origin = self.classify(frame)
            if origin.group == GROUP_HARNESS:
                self._harness_depth += 1
            elif self._harness_depth == 0:
                self._count(origin, frame.f_code.co_qualname, frame.f_back)
        elif event == "return":
            if self._harness_depth and self.classify(frame).group == GROUP_HARNESS:
                self._harness_depth -= 1
        elif event == "c_call" and self._harness_depth == 0:
            origin = self.classify(frame)
            if origin.group != GROUP_HARNESS:
                self._count(origin, _c_name(arg), frame)

    @contextlib.contextmanager
    def counting(self) -> Iterator[CallCounter]:
        previous = sys.getprofile()
        sys.setprofile(self._profile)
        try:
            yield self
        finally:
            sys.setprofile(previous)

    def rows(self) -> list[dict]:
        return [
            {"behalf": b, "group": g, "module": m, "function": f, "calls": n}
            for (b, g, m, f), n in sorted(self.counts.items())
        ]

    def made_rows(self) -> list[dict]:
        return [
            {"group": g, "module": m, "function": f, "calls": n}
            for (g, m, f), n in sorted(self.made.items())
        ]


@contextlib.contextmanager
def count_operators() -> Iterator[collections.Counter]:
    """The torch operators dispatched inside the block, by name (`aten.addmm`)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    counts: collections.Counter = collections.Counter()

    class Counting(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            counts[str(func.overloadpacket)] += 1
            return func(*args, **(kwargs or {}))

    with Counting():
        yield counts


# --- instructions: callgrind, collected inside a window ---------------------------------------
WINDOW_SOURCE = paths.ROOT / "common" / "measure" / "callgrind_window.c"


class CompilerMissing(RuntimeError):
    """No C compiler, or no valgrind headers, to build the window's client requests."""


def window_library(cache: Path | None = None) -> Path:
    """The client-request library, compiled once per source text into the cache folder."""
    source = WINDOW_SOURCE.read_bytes()
    built = (
        cache or default_cache_dir()
    ) / f"callgrind_window-{hashlib.sha256(source).hexdigest()[:12]}.so"
    if built.exists():
        return built
    built.parent.mkdir(parents=True, exist_ok=True)
    partial = built.with_suffix(".partial")
    try:
        subprocess.run(
            ["cc", "-shared", "-fPIC", "-O2", "-o", str(partial), str(WINDOW_SOURCE)],
            check=True,
            capture_output=True,
            text=True,
        )
    except FileNotFoundError as error:
        raise CompilerMissing("no C compiler (cc): apt-get install gcc") from error
    except subprocess.CalledProcessError as error:
        last = (error.stderr.strip().splitlines() or ["?"])[-1]
        raise CompilerMissing(
            f"cannot build the callgrind window ({last}): apt-get install valgrind gcc"
        ) from error
    partial.replace(built)
    return built


class CallgrindWindow:
    """Opens and closes callgrind's collection; outside valgrind both are no-ops."""

    def __init__(self, library: Path) -> None:
        self._library = ctypes.CDLL(str(library))

    def open(self) -> None:
        self._library.window_open()

    def close(self) -> None:
        self._library.window_close()


# The options that go with the window: nothing instrumented or collected until it opens.
CALLGRIND_OPTIONS = ("--tool=callgrind", "--instr-atstart=no", "--collect-atstart=no")

_NAMED = re.compile(r"^\((\d+)\)(?: (.*))?$")


def _name(table: dict[str, str], value: str) -> str:
    """callgrind's name compression: `(7) name` defines 7, a later `(7)` refers to it."""
    match = _NAMED.match(value)
    if not match:
        return value
    number, name = match.groups()
    if name is not None:
        table[number] = name
    return table.get(number, value)


def exclusive_costs(text: str) -> tuple[int, dict[tuple[str, str], int]]:
    """A callgrind output file's total instructions and each (object, function)'s own
    (exclusive) instructions; the exclusive costs sum to the total (checked)."""
    objects: dict[str, str] = {}
    functions: dict[str, str] = {}
    costs: collections.Counter = collections.Counter()
    total = None
    current_object = current_function = ""
    skip_next = False  # the line after `calls=` is the call's inclusive cost, not the caller's
    for line in text.splitlines():
        if not line or line[0] in "#":
            continue
        if line[0].isdigit() or line[0] in "+-*":
            if skip_next:
                skip_next = False
            else:
                parts = line.split()
                costs[current_object, current_function] += int(parts[1]) if len(parts) > 1 else 0
            continue
        key, _, value = line.partition("=")
        if key == "ob":
            current_object = _name(objects, value)
        elif key == "fn":
            current_function = _name(functions, value)
        elif key in ("cob", "cfn"):
            _name(objects if key == "cob" else functions, value)
        elif key == "calls":
            skip_next = True
        elif key in ("totals", "summary") or line.startswith(("totals:", "summary:")):
            total = int(line.split(":", 1)[1].split()[0])
    counted = sum(costs.values())
    if total is None:
        raise ValueError("no 'totals:' or 'summary:' line in the callgrind output")
    if counted != total:
        raise ValueError(f"callgrind output: functions sum to {counted:,}, its total is {total:,}")
    return total, dict(costs)


def object_group(path: str) -> str:
    """Who ships a shared object: the installed package that holds it (`torch`), `python` for
    the interpreter, `system` for the rest (libc, libm)."""
    parts = Path(path).parts
    for site in ("site-packages", "dist-packages"):
        if site in parts:
            index = parts.index(site)
            return parts[index + 1] if index + 1 < len(parts) else site
    name = Path(path).name
    return GROUP_STDLIB if name.startswith(("python", "libpython")) else f"system: {name}"
