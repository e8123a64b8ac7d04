"""splitplan: plan LLM inference clusters with phase splitting (Splitwise, ISCA 2024).

The library is usable from Python; the `splitplan` command is a thin layer over it.
"""

from importlib.metadata import PackageNotFoundError, version

try:  # the installed distribution's version (pyproject.toml), so the code never repeats the number
    __version__ = version("splitplan")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
