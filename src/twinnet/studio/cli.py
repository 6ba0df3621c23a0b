"""``twinnet studio``: start the local server, print its URL, open the browser."""

from __future__ import annotations

import ipaddress
import socket
import sys
import threading
import webbrowser
from pathlib import Path

NEEDS_EXTRA = 'twinnet studio needs the studio extra: pip install "twinnet[studio]"'


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_studio_command(args) -> int:
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError:
        raise ImportError(NEEDS_EXTRA) from None
    from twinnet.studio.app import create_app

    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be in 0..65535, got {args.port}")
    runs_dir = Path(args.runs_dir)
    if runs_dir.exists() and not runs_dir.is_dir():
        raise NotADirectoryError(f"RUNS_DIR must be a folder, got the file {runs_dir}")
    if not _is_loopback(args.host):
        print(
            f"twinnet: warning: serving on {args.host}: anyone who can reach this address can "
            "train models on this machine and read the run folders",
            file=sys.stderr,
        )
    try:  # bound here, so a busy port is one clear line (uvicorn would log and exit 3)
        family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
        sock = socket.create_server((args.host, args.port), family=family)
    except OSError as e:
        raise OSError(f"cannot listen on {args.host}:{args.port} ({e.strerror or e}); choose another port with --port") from None
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(runs_dir), log_level="warning")
    server = uvicorn.Server(config)
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    url = f"http://{f'[{shown}]' if ':' in shown else shown}:{port}/"

    def announce() -> None:  # once uvicorn serves, so the URL works when printed
        while not server.started and not server.should_exit:
            threading.Event().wait(0.05)
        if server.started:
            print(f"twinnet studio: {url}  (runs from {runs_dir.resolve()}; Ctrl+C stops)", flush=True)
            if not args.no_browser:
                webbrowser.open(url)

    # the playground's networks are small: BLAS threads would cost more in hand-overs than
    # they give, and the event loop needs the other core to keep the pages responsive
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    threading.Thread(target=announce, daemon=True).start()
    server.run(sockets=[sock])
    return 0
