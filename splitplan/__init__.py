"""splitplan: plan LLM inference clusters with phase splitting (Splitwise, ISCA 2024).

The library is usable from Python; the `splitplan` command is a thin layer over it.
"""

__version__ = "0.1.0"
