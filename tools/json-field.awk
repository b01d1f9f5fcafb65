# Prints the value of a top-level key of a JSON object: awk -v key=bpw -f tools/json-field.awk FILE
# Only depth-1 keys match, so a "bpw" inside a nested "tensors" array is never taken for the total.
# Scalar values only (numbers, strings without escapes, true/false/null).
{ text = text $0 "\n" }
END {
    n = length(text); depth = 0; instr = 0; tok = ""; lastkey = ""; want = 0
    for (i = 1; i <= n; i++) {
        ch = substr(text, i, 1)
        if (instr) {
            if (ch == "\\") { tok = tok ch substr(text, i + 1, 1); i++; continue }
            if (ch == "\"") { instr = 0; lastkey = tok; continue }
            tok = tok ch
            continue
        }
        if (ch == "\"") { instr = 1; tok = ""; continue }
        if (ch == "{" || ch == "[") { depth++; continue }
        if (ch == "}" || ch == "]") { depth--; continue }
        if (ch == ":" && depth == 1 && lastkey == key) {
            v = substr(text, i + 1)
            sub(/^[ \t\n]*/, "", v)
            if (substr(v, 1, 1) == "\"") { v = substr(v, 2); sub(/".*/, "", v) }
            else sub(/[ \t\n,}\]].*/, "", v)
            print v
            exit 0
        }
    }
    exit 1
}
