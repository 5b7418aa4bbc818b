# The one-line refusal of scripts/convert_checkpoint.py and scripts/plot_certify.py when this
# python3 lacks a module they import (PyTorch, numpy, matplotlib): which python has it, or what to install.
"""missing_modules() and need() for the scripts' Debian dependencies.

The scripts need Debian's python3 (/usr/bin/python3, their first line) with python3-torch,
python3-numpy and python3-matplotlib. A pyenv, conda or venv python3 first on PATH runs them
without Debian's dist-packages: then the error names /usr/bin/python3 when that one has the module.
"""
import importlib
import os
import sys

DEBIAN_PYTHON = "/usr/bin/python3"
DEBIAN_PACKAGES = "/usr/lib/python3/dist-packages"
# module -> (the name users know it by, Debian's package)
KNOWN = {"torch": ("PyTorch", "python3-torch"), "numpy": ("numpy", "python3-numpy"),
         "matplotlib": ("matplotlib", "python3-matplotlib")}


def missing_modules(modules):
    """The modules of `modules` this interpreter cannot import, in order."""
    missing = []
    for m in modules:
        try:
            importlib.import_module(m)
        except ImportError:
            missing.append(m)
    return missing


def need(modules, purpose):
    """The error text (no 'error: ') when this python3 lacks some of `modules` (KNOWN's names),
    for `purpose` ('to read r18.pth'); None when all import. Names /usr/bin/python3 when this is
    another interpreter (pyenv, conda, venv: sys.prefix is not /usr) and Debian's dist-packages
    hold every missing module; otherwise the apt-get line."""
    missing = missing_modules(modules)
    if not missing:
        return None
    names = [KNOWN[m][0] for m in missing]
    what = " and ".join(names)
    text = "%s %s needed %s" % (what, "is" if len(names) == 1 else "are", purpose)
    other = os.path.realpath(sys.prefix) != "/usr"
    if other and os.path.exists(DEBIAN_PYTHON) and all(
            os.path.isdir(os.path.join(DEBIAN_PACKAGES, m)) for m in missing):
        return "%s, and this python3 (%s) has no %s: run it with %s, which has Debian's %s" % (
            text, sys.executable, what, DEBIAN_PYTHON, what)
    install = "apt-get install " + " ".join(KNOWN[m][1] for m in missing)
    if other:
        return "%s, and this python3 (%s) has no %s: run it with %s after %s (Debian)" % (
            text, sys.executable, what, DEBIAN_PYTHON, install)
    return "%s (Debian: %s)" % (text, install)
