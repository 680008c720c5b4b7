#!/usr/bin/env python3
"""Every Swift snippet of the DocC articles is compiled as a test.

Each ```swift block of Sources/*/*.docc/*.md (its `import` lines aside) must appear verbatim, at
any uniform indentation, in a test file: Tests/**/DocArticleTests.swift, or the Benchmarks
package's tests for code that needs SwiftNIO. The tests compile the copy (and run it where it
can run), so an article whose snippet no longer compiles, or that drifts from its tested copy,
fails CI. Prints each snippet that has no copy and exits 1.
"""
import glob
import os
import re
import sys
import textwrap

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
os.chdir(root)

copies = {path: open(path).read() for path in
          glob.glob("Tests/**/DocArticleTests.swift", recursive=True)
          + glob.glob("Benchmarks/Tests/**/*.swift", recursive=True)}


def has_copy(lines):
    for indent in range(0, 33, 4):
        text = "\n".join((" " * indent + line) if line else "" for line in lines) + "\n"
        if any(text in copy for copy in copies.values()):
            return True
    return False


missing = 0
articles = sorted(glob.glob("Sources/*/*.docc/*.md"))
for article in articles:
    source = open(article).read()
    for match in re.finditer(r"^```swift\n(.*?)^```", source, re.S | re.M):
        code = textwrap.dedent(match.group(1)).rstrip("\n").split("\n")
        code = [line.rstrip() for line in code if not re.match(r"import \w+$", line)]
        while code and not code[0]:
            code.pop(0)
        if not code:
            continue
        if not has_copy(code):
            line = source[:match.start()].count("\n") + 1
            print(f"{article}:{line}: this snippet has no compiled copy in the tests:")
            print("\n".join("    " + l for l in code))
            missing += 1
print(f"{len(articles)} articles checked, {missing} snippet(s) without a compiled copy")
sys.exit(1 if missing else 0)
