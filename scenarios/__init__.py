"""Data folder, not code: pyproject.toml maps it to the package `splitplan.scenarios`, so the scenario
files and bundled traces ship inside the wheel and `splitplan.resources` finds them through
importlib.resources in a wheel and in an editable install alike (a regular package, as the editable
install's import hook does not resolve a data folder without this file)."""
