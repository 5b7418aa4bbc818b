# Shared by the CLI test scripts (tests/cli/test_*.sh, sourced before they cd into their temp
# folder): pass/fail counters, the expectations every script uses, and the closing summary.
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAILED: $*"; }
# expect_fail NAME PATTERN CMD...: the command exits non-zero, and its stderr ends in one
# `error: ...` line (the only one it printed) matching PATTERN (extended regex).
expect_fail() {
  local name=$1 pattern=$2
  shift 2
  if "$@" >out.log 2>err.log; then bad "$name: exit 0"; return; fi
  local last
  last=$(tail -n 1 err.log)
  if [[ $last != error:* ]] || ! grep -qE -- "$pattern" <<<"$last"; then bad "$name: '$last' !~ /$pattern/"
  elif [ "$(grep -c '^error:' err.log)" -ne 1 ]; then bad "$name: more than one error line: $(grep '^error:' err.log | head -3)"
  else ok; fi
}
# expect_ok NAME CMD...: the command exits 0 (stdout in out.log, stderr in err.log).
expect_ok() {
  local name=$1
  shift
  if "$@" >out.log 2>err.log; then ok; else bad "$name: exit $? ($(tail -n 1 err.log))"; fi
}
# has NAME FILE PATTERN: FILE holds a line matching PATTERN (extended regex).
has() { if grep -qE -- "$3" "$2"; then ok; else bad "$1: no /$3/ in $2: $(head -c 600 "$2")"; fi; }
# finish [NAME]: prints the counts; the script's exit status is 0 only when nothing failed.
finish() {
  echo "${1:+$1: }$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
