"""``ferkit serve`` (HTTP API + web page) and ``ferkit ui`` (Streamlit app)."""

from __future__ import annotations

from typing import Annotated

import typer

from ferkit.cli._options import BackendOpt, DetectorOpt, DeviceOpt, ModelOpt, unset_by_default

HostOpt = Annotated[str | None, typer.Option(
    "--host", help="address to listen on; 127.0.0.1 keeps it on this machine "
                   "(env FERKIT_SERVE_HOST)")]
# The shared options, None when not given: FERKIT_SERVE_* settings fill what is not given.
ServeModelOpt = unset_by_default(ModelOpt, default="'default'")
ServeDeviceOpt = unset_by_default(DeviceOpt, default="auto")
ServeDetectorOpt = unset_by_default(DetectorOpt, default="retinaface")
ServeBackendOpt = unset_by_default(BackendOpt, default="auto")


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        host: HostOpt = None,
        port: Annotated[int | None, typer.Option(help="TCP port (default 8000)")] = None,
        model: ServeModelOpt = None,
        device: ServeDeviceOpt = None,
        detector: ServeDetectorOpt = None,
        backend: ServeBackendOpt = None,
        max_upload_mb: Annotated[float | None, typer.Option(
            help="largest image file accepted, in MiB (default 8)")] = None,
        max_pixels: Annotated[int | None, typer.Option(
            help="largest width*height accepted (default 25,000,000)")] = None,
        max_batch: Annotated[int | None, typer.Option(
            help="most images per model call (default 8)")] = None,
        batch_wait_ms: Annotated[float | None, typer.Option(
            help="how long a request waits for others to batch with (default 5)")] = None,
        timeout: Annotated[float | None, typer.Option(
            help="seconds before a request waiting for the model gets 504 (default 30)")] = None,
        cors_origin: Annotated[list[str] | None, typer.Option(
            help="allow browser calls from this origin (repeatable); CORS is off "
                 "by default")] = None,
        allowed_host: Annotated[list[str] | None, typer.Option(
            help="answer requests whose Host header is this name (repeatable; "
                 "*.example.com for subdomains, * for any); default: the loopback names "
                 "when --host is loopback, any otherwise")] = None,
        max_connections: Annotated[int | None, typer.Option(
            help="open connections at most; idle ones make room for new ones "
                 "(default 1000)")] = None,
        header_timeout: Annotated[float | None, typer.Option(
            help="seconds a connection has to send a complete request head "
                 "(default 10)")] = None,
        body_timeout: Annotated[float | None, typer.Option(
            help="seconds the whole request body has to arrive (default 60)")] = None,
        log_level: Annotated[str | None, typer.Option(help="debug, info, warning …")] = None,
    ) -> None:
        """Serve the HTTP API and the web page (http://HOST:PORT/).

        Every option can also be set as FERKIT_SERVE_<NAME> (e.g. FERKIT_SERVE_PORT=9000);
        options given here win. More limits (queues, memory budgets) are environment
        variables only: see docs/serving.md.

        Examples:

          ferkit serve

          ferkit serve --port 9000 --model runs/dan-rafdb/best

          curl -F image=@photo.jpg http://127.0.0.1:8000/v1/predict
        """
        from ferkit.serve import ServeSettings, run_server

        settings = ServeSettings.from_env().replace(
            host=host, port=port, model=model, device=device, detector=detector,
            backend=backend, max_pixels=max_pixels, max_batch=max_batch,
            batch_wait_ms=batch_wait_ms, request_timeout_s=timeout, log_level=log_level,
            max_upload_bytes=None if max_upload_mb is None else int(max_upload_mb * 2**20),
            cors_origins=tuple(cors_origin) if cors_origin else None,
            allowed_hosts=tuple(allowed_host) if allowed_host else None,
            max_connections=max_connections, header_timeout_s=header_timeout,
            body_timeout_s=body_timeout,
        )
        typer.echo(f"ferkit: loading {settings.model!r}, then serving http://{settings.host}:"
                   f"{settings.port}/ (API docs at /docs; Ctrl-C stops)", err=True)
        run_server(settings)

    @app.command()
    def ui(
        host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="TCP port")] = 8501,
        model: Annotated[str, typer.Option(
            "--model", "-m", help="model selected when the page opens")] = "default",
        allow_checkpoint_paths: Annotated[bool, typer.Option(
            "--allow-checkpoint-paths", help="let visitors type a checkpoint folder on this "
            "machine (off: they choose among named models only)")] = False,
    ) -> None:
        """Open the Streamlit app: photo or camera, model choice, two models side by side.

        Runs headless and offline (no usage statistics, no error details in the browser);
        open the printed URL.  Visitors choose among named models (the one given with
        --model, the shipped ones, those added with `ferkit models add`).

        Examples:

          ferkit ui

          ferkit ui --port 8600 --model runs/dan-rafdb/best
        """
        from ferkit.ui import launch

        raise typer.Exit(launch(host=host, port=port, model=model,
                                allow_paths=allow_checkpoint_paths))
