# shellcheck shell=bash
# Sourced at the top of a test script (tests/zoo/lib.sh, tests/run-tests.sh): the script runs
# again as the child of tests/tools/bin/subreaper (subreaper.c: the processes orphaned below it
# are reaped at once, not by a slow init) unless it already runs below one. Uses $0 and the
# script's own arguments, so it comes before anything that shifts them.
if [ -z "${STASIS_TEST_SUBREAPER:-}" ] && make -s -C "$(dirname "${BASH_SOURCE[0]}")" >/dev/null; then
	export STASIS_TEST_SUBREAPER=1
	exec "$(dirname "${BASH_SOURCE[0]}")/bin/subreaper" "$BASH" "$0" "$@"
fi
