# Compares qsent --json answer lines (protocol format) with expected ones, line by line:
# id, label, label_id, tokens and truncated exactly; logits within tol + tol*|expected| and
# score within tol (the daemon batches texts differently from the in-process engine, which
# moves the last bits of the float sums).
#
#   awk -v tol=1e-5 -f compare.awk GOT EXPECTED [EXPECTED2]
#
# Prints "N lines A match B match2 C other maxdiff D": A lines match EXPECTED, B match
# EXPECTED2 (e.g. the model after a reload), C match neither; D is the largest logit difference
# among matching lines. Exit 0 when C = 0 and the files have the same number of lines.
function field(s, key,    i, r) {
    i = index(s, "\"" key "\":")
    if (i == 0) return "\001missing"
    r = substr(s, i + length(key) + 3)
    if (substr(r, 1, 1) == "[") return substr(r, 2, index(r, "]") - 2)
    if (substr(r, 1, 1) == "\"") { r = substr(r, 2); return substr(r, 1, index(r, "\"") - 1) }
    match(r, /^[^,}]*/)
    return substr(r, 1, RLENGTH)
}
function absf(x) { return x < 0 ? -x : x }
# largest logit difference, or -1 if the answers differ beyond the tolerance
function cmp(g, e,    k, n, m, a, b, i, d, x) {
    for (k = 1; k <= 5; k++) if (field(g, keys[k]) != field(e, keys[k])) return -1
    n = split(field(g, "logits"), a, ",")
    m = split(field(e, "logits"), b, ",")
    if (n != m || n == 0) return -1
    d = 0
    for (i = 1; i <= n; i++) {
        x = absf(a[i] - b[i])
        if (x > tol + tol * absf(b[i])) return -1
        if (x > d) d = x
    }
    if (absf(field(g, "score") - field(e, "score")) > tol) return -1
    return d
}
BEGIN {
    split("id label label_id tokens truncated", keys, " ")
    if (tol == "") tol = 1e-5
    got = ARGV[1]; e1 = ARGV[2]; e2 = (ARGC > 3) ? ARGV[3] : ""
    lines = 0; m1 = 0; m2 = 0; other = 0; maxd = 0; short = 0
    while ((getline g < got) > 0) {
        lines++
        if ((getline a < e1) <= 0) { short = 1; other++; continue }
        if (e2 != "" && (getline b < e2) <= 0) b = ""
        d = cmp(g, a)
        if (d >= 0) { m1++; if (d > maxd) maxd = d; continue }
        if (e2 != "") { d = cmp(g, b); if (d >= 0) { m2++; if (d > maxd) maxd = d; continue } }
        other++
    }
    if ((getline a < e1) > 0) short = 1
    printf "%d lines %d match %d match2 %d other maxdiff %g\n", lines, m1, m2, other, maxd
    exit (other == 0 && !short) ? 0 : 1
}
