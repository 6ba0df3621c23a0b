"""twinnet studio: watch and steer a network while it trains, live, in the browser.

    twinnet studio [RUNS_DIR] [--port N] [--host H] [--no-browser]

The server (Starlette on uvicorn) computes every number with the same engine and
diagnostics as ``twinnet train``; the pages under ``static/`` only draw. Three pages:
the playground (``/``), one example's backprop step by step (``/backprop``) and the
run folders under RUNS_DIR (``/runs``). Needs the ``studio`` extra:
``pip install "twinnet[studio]"``.
"""

__all__ = ["create_app"]


def __getattr__(name: str):
    # imported on first use, so that `twinnet studio` without starlette can say which extra to install
    if name == "create_app":
        from twinnet.studio.app import create_app

        return create_app
    raise AttributeError(f"module 'twinnet.studio' has no attribute {name!r}")
