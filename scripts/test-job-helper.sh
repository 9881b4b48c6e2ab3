#!/usr/bin/env bash
# The job helper as users get it: builds its wheel (scripts/package.sh wheel),
# installs it into a fresh virtual environment (with Debian's
# python3-confluent-kafka from the system site, as PyPI is not needed), and
# runs its unit tests there, from a folder without the sources, so
# `import brickwork_job` can only find the installed wheel. Also checks the
# wheel holds the module alone, its version is brickwork's, and the
# `brickwork-job` command runs.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "test-job-helper: $*"; }
fail() { say "$*" >&2; exit 1; }

scripts/package.sh wheel >/dev/null
wheel=$(ls build/package/brickwork_job-*.whl)
work=build/job-helper
rm -rf "$work"
mkdir -p "$work/tests"
venv="$PWD/$work/venv"
python="$venv/bin/python"
# Without a pip of its own (seconds instead of a minute); Debian's pip installs into it.
/usr/bin/python3 -m venv --system-site-packages --without-pip "$venv"
# The dependency (confluent-kafka) must be satisfied, not skipped: no --no-deps.
/usr/bin/python3 -m pip --python "$python" install --quiet --no-index "$wheel" >"$work/pip.log" 2>&1 ||
  { cat "$work/pip.log"; fail "pip install $wheel failed"; }

contents=$("$python" -c 'import sys, zipfile
print(" ".join(sorted(n for n in zipfile.ZipFile(sys.argv[1]).namelist() if ".dist-info/" not in n)))' "$wheel")
[ "$contents" = "brickwork_job.py" ] || fail "the wheel holds '$contents', not brickwork_job.py alone"
version=$(sed -n 's/^project(brickwork VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
[[ "$wheel" == *"brickwork_job-$version-"* ]] || fail "$wheel is not brickwork's version $version"

cp integrations/databricks/test_brickwork_job.py "$work/tests/"
cd "$work/tests"
origin=$("$python" -c 'import brickwork_job; print(brickwork_job.__file__)')
[[ "$origin" == "$venv"/lib/python3*/site-packages/brickwork_job.py ]] ||
  fail "brickwork_job imported from $origin, not from the installed wheel"
PYTHONDONTWRITEBYTECODE=1 "$python" -m unittest test_brickwork_job 2>&1 | tail -n 3
../venv/bin/brickwork-job --help >/dev/null || fail "the brickwork-job command does not run"
say "$(basename "$wheel") installed in a virtual environment; its unit tests pass against it"
