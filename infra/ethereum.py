"""eth-account, imported without its side effect on the interpreter.

eth-account imports py_ecc, whose `__init__` raises the process-wide recursion limit to 100,000.
With that limit any deeply recursive parse (a 200 KB JSON body nested 100,000 levels, a hostile
PDF's object graph) overflows the C stack and kills the process instead of raising
RecursionError. Nothing Pryv calls (EIP-191 signing and recovery via coincurve) recurses deeply,
so the limit is put back. Import eth-account only through this module.
"""

from __future__ import annotations

import sys

_limit = sys.getrecursionlimit()
try:
    from eth_account import Account
    from eth_account.messages import encode_defunct
finally:
    sys.setrecursionlimit(_limit)

__all__ = ["Account", "encode_defunct"]
