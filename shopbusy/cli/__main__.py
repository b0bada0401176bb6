"""`python -m shopbusy.cli ARGS` is `shopbusy ARGS`."""

from shopbusy.cli import entry_point

entry_point()
