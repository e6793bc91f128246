# The check harness the shell test suites share (sourced, not run): PASS/FAIL lines, one
# count of each, and a closing line "<suite>: N passed, M failed". Set SUITE before
# sourcing.
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
