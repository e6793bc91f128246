# The check harness the shell test suites share (sourced, not run): PASS/FAIL lines, one
# count of each, and a closing line "<suite>: N passed, M failed". Set SUITE before
# sourcing. It also sets REPO, the repository's top folder.
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "PASS $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $*"; }
check() { # check DESC COMMAND...
    local desc=$1
    shift
    if "$@"; then pass "$desc"; else fail "$desc"; fi
}
# Prints the closing line; the status is that of the suite (0 only with no failure).
summary() {
    echo "$SUITE: $PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
}
# The suite's one argument, the binary under test, as an absolute path; a usage line
# and a failure without it.
binary_argument() {
    [ -n "${1:-}" ] || { echo "usage: $0 BINARY" >&2; return 1; }
    case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac
}
