"""A child script's first lines: replace the method its first argument names ("module:Owner.method",
"after:" to call the original first) by one that SIGKILLs the process, as a crash at that phase."""

KILL_AT_PHASE = """
import importlib, os, signal, sys
phase = sys.argv[1]
after = phase.startswith("after:")
module, _, attribute = phase.removeprefix("after:").partition(":")
owner_name, method = attribute.split(".")
owner = getattr(importlib.import_module(module), owner_name)
original = getattr(owner, method)
def killing(*args, **kwargs):
    if after:
        original(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
setattr(owner, method, killing)
"""
