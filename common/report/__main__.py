"""python -m common report RUN_DIR: see common/report/__init__.py."""

from common.report import main

raise SystemExit(main())
