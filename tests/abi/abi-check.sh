#!/bin/sh
# The shared library's exports are exactly the public API, all versioned:
#  - nothing but dcrw_* is exported (besides the version nodes themselves);
#  - every function of the API contract (api-contract.txt) is;
#  - every DCRW_API function declared in dcrw.h is, and nothing else is;
#  - the version script lists exactly the header's functions, and every
#    export carries a DCRW_ version.
#   abi-check.sh LIBDCRW_SO HEADER VERSION_SCRIPT CONTRACT
set -eu
so=$1
header=$2
script=$3
contract=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

# "ADDR T name@@DCRW_0.1" and "0000 A DCRW_0.1" (a version node)
nm -D --defined-only "$so" > "$tmp/nm"
[ -s "$tmp/nm" ] || { echo "nm found no exported symbol in $so"; exit 1; }
awk '$2 == "A" && $3 ~ /^DCRW_[0-9]/ { next } { print $3 }' "$tmp/nm" > "$tmp/raw"
sed 's/@.*//' "$tmp/raw" | sort -u > "$tmp/exported"

leaks=$(grep -v '^dcrw_' "$tmp/exported" || true)
if [ -n "$leaks" ]; then
    echo "exported symbols without the dcrw_ prefix:"
    echo "$leaks" | sed 's/^/    /'
    fail=1
fi

unversioned=$(grep -v '@@\{0,1\}DCRW_[0-9]' "$tmp/raw" || true)
if [ -n "$unversioned" ]; then
    echo "exports without a DCRW_ symbol version (version script not applied?):"
    echo "$unversioned" | sed 's/^/    /'
    fail=1
fi

grep -v '^#' "$contract" | sed '/^[[:space:]]*$/d' | sort -u > "$tmp/contract"
[ "$(wc -l < "$tmp/contract")" -ge 30 ] || { echo "$contract: contract list looks empty"; exit 1; }
missing=$(comm -23 "$tmp/contract" "$tmp/exported")
if [ -n "$missing" ]; then
    echo "functions of the API contract not exported:"
    echo "$missing" | sed 's/^/    /'
    fail=1
fi

# Declarations start a line with DCRW_API; the name is the identifier right
# before the first parenthesis (the return type may end in '*').
grep -E '^DCRW_API ' "$header" | sed -E 's/^[^(]*[ *](dcrw_[a-z0-9_]+)\(.*/\1/' | sort -u > "$tmp/declared"
bad=$(grep -v '^dcrw_[a-z0-9_]*$' "$tmp/declared" || true)
if [ -n "$bad" ]; then
    echo "cannot parse these DCRW_API declarations of $header:"
    echo "$bad" | sed 's/^/    /'
    fail=1
fi
grep -q . "$tmp/declared" || { echo "no DCRW_API declaration found in $header"; exit 1; }
comm -23 "$tmp/contract" "$tmp/declared" > "$tmp/undeclared"
if [ -s "$tmp/undeclared" ]; then
    echo "functions of the API contract not declared in $header:"
    sed 's/^/    /' "$tmp/undeclared"
    fail=1
fi
missing=$(comm -23 "$tmp/declared" "$tmp/exported")
if [ -n "$missing" ]; then
    echo "declared DCRW_API in the header but not exported (missing from $(basename "$script")?):"
    echo "$missing" | sed 's/^/    /'
    fail=1
fi
extra=$(comm -13 "$tmp/declared" "$tmp/exported")
if [ -n "$extra" ]; then
    echo "exported but not declared in the public header:"
    echo "$extra" | sed 's/^/    /'
    fail=1
fi

# the version script's global names, comments stripped
sed -e 's#/\*.*\*/##' -e '/\/\*/,/\*\//d' "$script" | tr ';{}' '\n\n\n' |
    sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' | grep '^dcrw_' | sort > "$tmp/scripted"
# a name may be listed in two nodes only when the library exports it in two
# versions (an old one bound with .symver, and the new default)
sed 's/@@*/ /' "$tmp/raw" | sort -u | awk '{ print $1 }' | uniq -d > "$tmp/multiversion"
dups=$(uniq -d "$tmp/scripted" | comm -23 - "$tmp/multiversion")
if [ -n "$dups" ]; then
    echo "listed twice in $(basename "$script") (and not exported in two versions):"
    echo "$dups" | sed 's/^/    /'
    fail=1
fi
stale=$(sort -u "$tmp/scripted" | comm -23 - "$tmp/declared")
if [ -n "$stale" ]; then
    echo "in $(basename "$script") but not declared in the header:"
    echo "$stale" | sed 's/^/    /'
    fail=1
fi

unlisted=$(sort -u "$tmp/scripted" | comm -13 - "$tmp/declared")
if [ -n "$unlisted" ]; then
    echo "declared in the header but not listed in $(basename "$script"):"
    echo "$unlisted" | sed 's/^/    /'
    fail=1
fi

if [ "$fail" -ne 0 ]; then
    exit 1
fi
echo "$(wc -l < "$tmp/exported") exported functions: all dcrw_*, all versioned," \
    "the $(wc -l < "$tmp/contract") of the contract among them, exactly the header's DCRW_API set"
