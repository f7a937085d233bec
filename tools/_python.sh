# Sourced by the tools/*.sh launchers: pick the interpreter. $PYTHON wins;
# otherwise the repository's .venv (built by `make env`); otherwise `python`.
_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$_repo/.venv/bin/python" ]; then PYTHON=$_repo/.venv/bin/python; else PYTHON=python; fi
fi
export PYTHONPATH="$_repo${PYTHONPATH:+:$PYTHONPATH}"
