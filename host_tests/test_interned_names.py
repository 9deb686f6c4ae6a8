"""The resident protocol modules hold no heap strings for the names they
count under or load code by.

MicroPython's compiler interns a string constant of at most 10 characters,
or one equal to a name it has already read in the same file; any other
string constant is a heap object of 32-48 bytes in the loaded module (on a
stock board code is heap).  So a counter key like stats["arp_drop_bad"], or
a module or function named to uipy.run(), must be written as a name earlier
in its file (uipy.stack_setup explains the `if _TYPING:` blocks).  This
test applies the compiler's rule to the source.
"""
import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULES = ("stack", "arp", "icmp", "icmp_more", "udp", "dhcp", "mdns", "dns")
CALLS = ("run", "_rare", "_call")           # their string arguments name modules and functions


def names_and_keys(tree):
    """[(position, name)] of every name in the source, and [(position, text)]
    of the strings used as subscript keys or as arguments of CALLS."""
    names, keys = [], []
    for node in ast.walk(tree):
        pos = (getattr(node, "lineno", 0), getattr(node, "col_offset", 0))
        if isinstance(node, ast.Name):
            names.append((pos, node.id))
        elif isinstance(node, ast.Attribute):
            names.append((pos, node.attr))
        elif isinstance(node, ast.keyword) and node.arg:
            names.append((pos, node.arg))
        elif isinstance(node, ast.arg):
            names.append((pos, node.arg))
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.append((pos, node.name))
        elif isinstance(node, ast.alias):
            names.append((pos, (node.asname or node.name).split(".")[-1]))
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            keys.append((pos, node.slice.value))
        elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) in CALLS:
            keys += [(pos, a.value) for a in node.args if isinstance(a, ast.Constant)]
    return names, keys


@pytest.mark.parametrize("module", MODULES)
def test_counted_and_loaded_names_are_interned(module):
    with open(os.path.join(ROOT, "lib", "uipy", module + ".py")) as f:
        tree = ast.parse(f.read())
    names, keys = names_and_keys(tree)
    heap = sorted(set(text for pos, text in keys
                      if isinstance(text, str) and len(text) > 10
                      and not any(name == text and npos < pos for npos, name in names)))
    assert not heap, "uipy.%s: write these as names earlier in the file: %s" % (module, heap)
