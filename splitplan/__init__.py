"""splitplan: plan LLM inference clusters with phase splitting (Splitwise, ISCA 2024).

The library is usable from Python; the `splitplan` command is a thin layer over it.
"""



def __getattr__(name: str) -> str:
    """`splitplan.__version__`, read from the installed distribution (pyproject.toml) on first use:
    importlib.metadata costs ~30 ms, which every command would pay at start-up."""
    if name != "__version__":
        raise AttributeError(f"module 'splitplan' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version("splitplan")
    except PackageNotFoundError:  # imported from a source tree that was never installed
        value = "0+unknown"
    globals()["__version__"] = value
    return value
