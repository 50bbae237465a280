"""`kirag serve`: load indexes, a reranker and KiRAG once and answer over HTTP (FastAPI +
uvicorn, the `serve` extra), or as MCP tools (`--mcp`, the official `mcp` SDK)."""

from __future__ import annotations

import argparse
import os

from kirag.cli.answer import add_kirag_models
from kirag.cli.arguments import INPUT
from kirag.cli.common import add_command, add_seed, add_server
from kirag.cli.rerank import add_reranker_arguments
from kirag.core.settings import add_arguments, changed_flags, from_args
from kirag.retrieval.fusion import FUSIONS
from kirag.serve.ray_serve import RaySettings
from kirag.serve.settings import API_KEY_ENV, DEFAULT_HOST, DEFAULT_PORT, PORT, ServeSettings

EPILOG = f"""\
examples:
  kirag serve --index indexes/enwiki-bm25                        # http://127.0.0.1:{DEFAULT_PORT}/
  kirag serve --index indexes/bm25 --index indexes/dense --kirag indexes/enwiki-triples \\
      --reranker rank1 --model smollm2-135m --engine llamacpp --thinking-budget 32
  {API_KEY_ENV}=secret kirag serve --index indexes/enwiki-bm25 --port 9000   # an API key
  kirag serve --index indexes/enwiki-bm25 --mcp                  # MCP tools on stdio
  kirag serve --index indexes/enwiki-bm25 --ray --replicas 2 --replica-cpus 1   # Ray Serve
  kirag serve --kirag indexes/enwiki-triples --reader Llama-3-8B --reranker rank1 --model rank1-7b \\
      --engine openai --base-url http://127.0.0.1:8000/v1 --engine-api-key-env VLLM_KEY
Rerank APIs: POST /rerank (text-embeddings-inference), POST /v1/rerank (Cohere / Jina).
Binds {DEFAULT_HOST} unless --host says otherwise; set {API_KEY_ENV} before exposing it.
"""


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "serve", help="serve search, rerank and KiRAG answers over HTTP", epilog=EPILOG
    )
    parser.add_argument(
        "--index", type=INPUT, action="append", help="index folder; repeat to fuse several"
    )
    parser.add_argument(
        "--fusion", default="rrf", choices=FUSIONS, help="fusion of several indexes"
    )
    parser.add_argument(
        "--kirag", type=INPUT, default=None, help="triple index folder: enables POST /answer"
    )
    add_reranker_arguments(parser, optional=True)
    add_kirag_models(parser.add_argument_group("--kirag answers (same --engine as the reranker)"))
    # --api-key-env below is this server's own key; the model server's is --engine-api-key-env
    add_server(parser, rename={"--api-key-env": "--engine-api-key-env"})
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help="address to bind (loopback by default)"
    )
    parser.add_argument("--port", type=PORT, default=DEFAULT_PORT, help="0: any free port")
    parser.add_argument(
        "--api-key-env",
        default=API_KEY_ENV,
        help="environment variable holding the API key; when set, requests need it",
    )
    add_arguments(parser, ServeSettings, title="limits")
    parser.add_argument(
        "--mcp", action="store_true", help="serve search, rerank and answer as MCP tools on stdio"
    )
    ray = parser.add_argument_group("Ray Serve (the ray extra, ray[serve])")
    ray.add_argument(
        "--ray",
        action="store_true",
        help="serve the same app as a Ray Serve deployment: each replica loads its own copy",
    )
    add_arguments(parser, RaySettings, into=ray)
    add_seed(parser)
    parser.set_defaults(func=run)


def settings_from(args: argparse.Namespace) -> ServeSettings:
    return from_args(ServeSettings, args, api_key=os.environ.get(args.api_key_env) or None)


def check_something(args: argparse.Namespace) -> None:
    """Refuse a server with nothing loaded (before Ray or a model starts)."""
    from kirag.errors import SettingsError

    if not (args.index or args.kirag or args.reranker):
        raise SettingsError("nothing to serve: give --index, --kirag and/or --reranker")


def ray_settings_from(args: argparse.Namespace) -> RaySettings | None:
    """The Ray Serve settings with --ray; a Ray flag without it (or with --mcp) is refused."""
    from kirag.errors import SettingsError

    given = from_args(RaySettings, args)
    if not args.ray:
        flags = changed_flags(given)  # as the executors' --ray flags are refused
        if flags:
            raise SettingsError(f"{', '.join(flags)}: Ray Serve's flags only apply with --ray")
        return None
    if args.mcp:
        raise SettingsError("--ray serves HTTP; --mcp serves stdio: give one of them")
    if args.port == 0:
        raise SettingsError("--ray needs a fixed --port (Ray's proxy binds it)")
    return given


def load_services(args: argparse.Namespace):
    """The components the flags ask for, loaded once."""
    from kirag import __version__
    from kirag.cli.common import served_settings
    from kirag.serve.services import Services

    check_something(args)
    names: dict = {"version": __version__}
    retriever = reranker = kirag = None
    if args.index:
        from kirag.retrieval.factory import load_retrievers

        retriever = load_retrievers(args.index, fusion=args.fusion)
        names["indexes"] = list(args.index)
    if args.reranker:
        from kirag.cli.rerank import make_reranker

        reranker = make_reranker(args, None)  # no pair cache: serving writes nothing
        names["reranker"] = f"{args.reranker}:{args.model}"
    if args.kirag:
        from kirag.cli.common import server_options
        from kirag.rag.pipeline import KiRAG

        kirag = KiRAG(
            args.kirag,
            mode=args.mode,
            constructor_model=args.constructor,
            reader_model=args.reader,
            engine=args.engine,
            engine_options=server_options(args),
        )
        names["kirag"] = args.kirag
    return Services(retriever, reranker, kirag, names | served_settings())


def run(args: argparse.Namespace) -> int:
    from kirag.core.optional import check_extra
    from kirag.core.seeding import set_seed

    set_seed(args.seed)
    check_extra("serve")
    settings = settings_from(args)
    ray_settings = ray_settings_from(args)
    if ray_settings is not None:
        import functools

        from kirag.serve.ray_serve import serve_ray

        check_something(args)
        _warn_exposed(args, settings)
        # the replicas load the components; this process only deploys them
        serve_ray(
            functools.partial(load_services, args), settings, args.host, args.port, ray_settings
        )
        return 0
    services = load_services(args)
    if args.mcp:
        from kirag.serve.mcp_tools import serve_mcp

        serve_mcp(services, settings)
        return 0
    from kirag.serve.server import serve_http

    _warn_exposed(args, settings)
    serve_http(services, settings, args.host, args.port)
    return 0


def _warn_exposed(args: argparse.Namespace, settings: ServeSettings) -> None:
    if args.host not in ("127.0.0.1", "localhost", "::1") and not settings.api_key:
        print(
            f"warning: serving on {args.host} without an API key; set {args.api_key_env} "
            "to require one",
            flush=True,
        )
