#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""test-exports.py [--must-fail] NM LIBRARY EXPECTED...: the shared LIBRARY
exports exactly the expected functions, no more and no fewer. Each EXPECTED
is a header, whose function declarations are expected (static inline
functions and macros excepted), or a symbol name. NM is the nm program to
use. With --must-fail, checks the check: passes when it finds a difference.
TAP output."""
import re
import subprocess
import sys


def declared_functions(header):
    text = open(header, encoding="utf-8").read()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    text = re.sub(r"\\\n", " ", text)
    text = re.sub(r"^\s*#[^\n]*", " ", text, flags=re.M)
    # Drop every braced body (struct and enum members, inline functions),
    # innermost first, so that what is left is a list of declarations.
    while True:
        stripped = re.sub(r"\{[^{}]*\}", ";", text)
        if stripped == text:
            break
        text = stripped
    names = set()
    for decl in text.split(";"):
        decl = " ".join(decl.split())
        if decl.startswith(("static ", "typedef ")) or "static inline" in decl:
            continue
        # [macros] return type, then name ( parameters )
        m = re.search(r"(?:^|[\s*])([A-Za-z_]\w*) ?\((?:[^()]|\([^()]*\))*\)$",
                      decl)
        if m and re.search(r"[A-Za-z_]\w*[\s*]+" + m.group(1) + r" ?\(", decl):
            names.add(m.group(1))
    return names


def exported_functions(nm, library):
    out = subprocess.run([nm, "-D", "--defined-only", library], check=True,
                         capture_output=True, text=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.strip()}


def main():
    args = sys.argv[1:]
    must_fail = args[0] == "--must-fail"
    if must_fail:
        args = args[1:]
    nm, library, expected_args = args[0], args[1], args[2:]
    expected = set()
    for arg in expected_args:
        expected |= declared_functions(arg) if arg.endswith(".h") else {arg}
    exported = exported_functions(nm, library)
    extra = sorted(exported - expected)
    missing = sorted(expected - exported)
    for what, names in [("exported but not declared", extra),
                        ("declared but not exported", missing)]:
        for name in names:
            print(f"{what}: {name}", file=sys.stderr)
    if must_fail:
        print("1..1")
        print(("ok" if extra or missing else "not ok") +
              f" 1 - {library}: the check finds the difference")
        return 0 if extra or missing else 1
    print("1..2")
    print(("not ok" if extra else "ok") +
          f" 1 - {library}: nothing exported but not declared")
    print(("not ok" if missing else "ok") +
          f" 2 - {library}: nothing declared but not exported")
    print(f"# {len(exported)} exported, {len(expected)} expected")
    return 1 if extra or missing else 0


if __name__ == "__main__":
    sys.exit(main())
