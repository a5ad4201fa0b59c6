"""The image a request carries: a multipart file field ``image`` or JSON ``image_base64``
on the same URL, parsed in memory (never spooled to a temporary file)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import PurePath

from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request

from ferkit.serve.errors import ApiError
from ferkit.serve.images import check_declared_type, decode_base64
from ferkit.serve.settings import ServeSettings


class _InMemoryMultiPartParser(MultiPartParser):
    # The body is already in memory (bounded): never copy it to a temporary file, which an
    # unfinished upload could keep on disk.
    spool_max_size = 2**62


async def read_upload(request: Request, settings: ServeSettings) -> tuple[str, bytes]:
    """(file name, encoded image) from a multipart ``image`` field or JSON ``image_base64``.

    The whole body is read first (:class:`~ferkit.serve.middleware.RequestGuardMiddleware`
    bounds its size, time and the memory all bodies take), then parsed in memory.
    """
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data" or ctype == "application/json" or ctype.endswith("+json"):
        try:
            body = await request.body()
        except ClientDisconnect:  # nobody is left to answer; the log line says 400
            raise ApiError(400, "client_disconnected",
                           "the client closed the connection before sending the whole "
                           "body") from None
    if ctype == "multipart/form-data":

        async def stream() -> AsyncIterator[bytes]:
            yield body

        try:
            form = await _InMemoryMultiPartParser(request.headers, stream(), max_files=1,
                                                  max_fields=4).parse()
        except (MultiPartException, ValueError, KeyError, AssertionError):
            raise ApiError(422, "bad_multipart", "the multipart body could not be parsed; "
                                                 "send one file field named 'image'") from None
        try:
            upload = form.get("image")
            if upload is None or isinstance(upload, str):
                raise ApiError(422, "missing_image",
                               "no file field named 'image' in the multipart form")
            check_declared_type(upload.content_type)
            data = await upload.read(settings.max_upload_bytes + 1)
            filename = PurePath(upload.filename or "upload").name or "upload"
        finally:
            await form.close()
        return filename, data
    if ctype == "application/json" or ctype.endswith("+json"):
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(422, "bad_json", "the body is not valid JSON") from None
        except RecursionError:
            raise ApiError(422, "bad_json", "the JSON is nested too deeply; send "
                                            '{"image_base64": "..."}') from None
        if not isinstance(payload, dict) or not isinstance(payload.get("image_base64"), str):
            raise ApiError(422, "missing_image",
                           'send a JSON object {"image_base64": "<base64 image>"}')
        data = decode_base64(payload["image_base64"], max_bytes=settings.max_upload_bytes)
        name = payload.get("filename")
        return PurePath(name).name if isinstance(name, str) and name else "upload", data
    raise ApiError(415, "unsupported_media_type",
                   "send multipart/form-data with a file field 'image', or "
                   'application/json {"image_base64": ...}' +
                   (f"; got {ctype!r}" if ctype else ""))
