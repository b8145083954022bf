"""``kaocap serve``: the browser viewer's subcommand (registered by :func:`add_serve_parser`)."""

from __future__ import annotations

import argparse

from kaocap.viewer.server import DEFAULT_PORT


def add_serve_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``serve`` to the ``kaocap`` subcommands."""
    from kaocap.cli import _add_pipeline_options

    serve = sub.add_parser(
        "serve", help="a local web page: the video with the overlay, a 3D head and blendshape bars"
    )
    serve.add_argument(
        "input", nargs="?", help="video, image or folder (default: the embedded portrait)"
    )
    serve.add_argument("--camera", type=int, help="camera index")
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1; any other needs --token)",
    )
    serve.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port (default {DEFAULT_PORT}; 0 = any free port)",
    )
    serve.add_argument(
        "--token",
        help="secret the page and every request must carry (?token=...); required off loopback",
    )
    _add_pipeline_options(serve)
    serve.set_defaults(func=cmd_serve)
    return serve


def cmd_serve(args: argparse.Namespace) -> int:
    from kaocap.cli import _config, _input, _stop_on_signals
    from kaocap.errors import ConfigError
    from kaocap.viewer.job import serve

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be 0..65535, got {args.port}")

    def ready(url: str) -> None:
        print(f"kaocap viewer: open {url}  (Ctrl-C stops)", flush=True)

    with _stop_on_signals() as stop:
        frames = serve(_input(args), _config(args), host=args.host, port=args.port, token=args.token,
                       stop=stop, on_ready=ready)  # fmt: skip
    print(f"served {frames} frames")
    return 0
