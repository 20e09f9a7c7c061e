"""``rac-store web``: a read-only operator dashboard (the optional extra ``rac-store[web]``).

:mod:`rac_store.web.views` and :mod:`rac_store.web.paging` build every page as data,
sans-I/O, without the web stack; :mod:`rac_store.web.app` serves them with
Starlette (``create_app``); :mod:`rac_store.web.server` runs it with uvicorn. This
package imports none of them, so ``import rac_store.web`` never needs the extra.
"""
