"""The examples: one file per framework (common/task/registry.py says what each one defines).

A suite run as a program (`python -m suites.lightning`) imports its framework on its first
lines. When that import fails (the framework is missing or broken, or KERAS_BACKEND names no
backend), the hook below turns the traceback into one line that names the framework and the
command that installs it.
"""

import sys


def _one_line_for_a_failed_import(kind, error, trace, previous=sys.excepthook):
    import linecache
    import os
    from pathlib import Path

    program = Path(sys.argv[0]) if sys.argv else Path()
    while trace is not None and Path(trace.tb_frame.f_code.co_filename) != program:
        trace = trace.tb_next  # from runpy's frames down to the suite's own
    line = linecache.getline(str(program), trace.tb_lineno).strip() if trace else ""
    if program.parent.name == "suites" and line.startswith(("import ", "from ")):
        from common.task import registry

        variants = [v for v in registry.variants(None) if v.suite == program.stem]
        framework, extra = (
            (variants[0].framework, variants[0].extra) if variants else (program.stem,) * 2
        )
        fix = f"install it with: pip install -e '.[{extra}]'"
        if variants and (env := variants[0].backend_env):
            backends = [v.backend for v in variants]
            if os.environ.get(env, backends[0]) not in backends:  # not an install problem
                fix = f"set {env} to one of {', '.join(backends)}"
        sys.stderr.write(
            f"python -m suites.{program.stem}: error: cannot import {framework} "
            f"({kind.__name__}: {error}); {fix}\n"
        )
        sys.stderr.flush()
        os._exit(2)
    previous(kind, error, error.__traceback__)


if sys.argv and sys.argv[0] == "-m":  # being run by `python -m suites.<name>`
    sys.excepthook = _one_line_for_a_failed_import
