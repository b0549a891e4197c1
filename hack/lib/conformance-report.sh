# shellcheck shell=bash
# Results of a conformance run from ginkgo's JSON report (--json-report), for
# hack/conformance.sh. Source it after conformance-common.sh.
#
# results.txt has one line per spec the focus/skip selected, in run order:
#   passed: <full spec text>
#   failed: <full spec text>
#   skipped: <full spec text>
# (a failed suite node, e.g. [SynchronizedBeforeSuite], is one failed line,
# once however many ginkgo processes reported it; the specs it blocked are not
# in ginkgo's report, so they have no line), then exactly one closing line
#   N passed, N failed, N skipped
# failures.txt repeats each failed or runtime-skipped spec with ginkgo's
# message and the location of the failure.

# conformance_results REPORT_JSON FOCUS SKIP RESULTS FAILURES
conformance_results() {
    local report=$1 focus=$2 skip=$3 results=$4 failures=$5 passed failed skipped
    # shellcheck disable=SC2016 # jq program
    jq -r --arg focus "$focus" --arg skip "$skip" '
        def fullname: ((.ContainerHierarchyTexts // []) + [.LeafNodeText // ""]) | map(select(. != "")) | join(" ");
        def outcome: if .State == "passed" then "passed"
                     elif .State == "skipped" or .State == "pending" then "skipped"
                     else "failed" end;
        [.[] | .SpecReports[]?] as $all
        | ([$all[] | select(.LeafNodeType != "It" and outcome == "failed")
            | "failed: [\(.LeafNodeType)] \((.Failure.Message // "") | split("\n")[0] | .[0:200])"]
           | unique[]),
          ($all[] | select(.LeafNodeType == "It")
           | fullname as $n
           | select($n | test($focus))
           | select($skip == "" or ($n | test($skip) | not))
           | "\(outcome): \($n)")
    ' "$report" >"$results.tmp" || die "cannot read ginkgo's report $report"
    passed=$(grep -c '^passed: ' "$results.tmp" || true)
    failed=$(grep -c '^failed: ' "$results.tmp" || true)
    skipped=$(grep -c '^skipped: ' "$results.tmp" || true)
    echo "$passed passed, $failed failed, $skipped skipped" >>"$results.tmp"
    mv "$results.tmp" "$results"

    # shellcheck disable=SC2016 # jq program
    jq -r --arg focus "$focus" --arg skip "$skip" '
        def fullname: ((.ContainerHierarchyTexts // []) + [.LeafNodeText // ""]) | map(select(. != "")) | join(" ");
        [.[] | .SpecReports[]?] as $all
        | $all[]
        | select(.State != "passed" and ((.Failure.Message // "") != ""))
        | select(.LeafNodeType != "It" or (fullname | test($focus) and ($skip == "" or (test($skip) | not))))
        | "=== \(.State): \(if .LeafNodeType == "It" then fullname else "[" + .LeafNodeType + "]" end)\n"
          + "    at \(.Failure.Location.FileName // "?"):\(.Failure.Location.LineNumber // 0)\n"
          + ((.Failure.Message // "") | split("\n") | .[0:12] | map("    " + .) | join("\n")) + "\n"
    ' "$report" >"$failures" || true
}
