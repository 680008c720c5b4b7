#!/usr/bin/env bash
# Builds the DocC catalogs of Socket2 and Socket2Async with the toolchain's `docc`, warnings as
# errors: a broken link, an ambiguous symbol reference or an undocumented parameter fails.
# Symbol graphs come from `swift package dump-symbol-graph`, which reuses the normal build, so no
# documentation plugin enters anyone's dependency graph. Archives go to .build/docs/.
set -euo pipefail
cd "$(dirname "$0")/.."

docc=$(command -v docc || echo "$(dirname "$(readlink -f "$(command -v swift)")")/docc")
out=.build/docs
graphs=$(swift package dump-symbol-graph --minimum-access-level public 2>&1 \
    | sed -n 's/^Files written to //p')
[ -d "$graphs" ] || { echo "error: no symbol graphs were written" >&2; exit 1; }

for module in Socket2 Socket2Async; do
    echo "-- $module"
    dir=$out/symbol-graphs/$module
    rm -rf "$dir" "$out/$module.doccarchive"
    mkdir -p "$dir"
    cp "$graphs/$module.symbols.json" "$dir/"
    cp "$graphs/$module"@*.symbols.json "$dir/" 2>/dev/null || true
    "$docc" convert "Sources/$module/$module.docc" \
        --additional-symbol-graph-dir "$dir" \
        --output-path "$out/$module.doccarchive" \
        --fallback-display-name "$module" --fallback-bundle-identifier "org.socket2.$module" \
        --warnings-as-errors
done
