"""In-memory multipart parsing with a hard size limit.

Starlette spools uploads over 1 MB to a temporary file; for audio that would put customer
speech on disk in the clear, so uploads are read into memory only (threat model: no plaintext
audio at rest).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import HTTPException, Request
from python_multipart.multipart import MultipartParser, parse_options_header


@dataclass
class Part:
    name: str
    filename: str | None
    content_type: str | None
    data: bytearray = field(default_factory=bytearray)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) anything over `limit` bytes before reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, detail={"code": "too_large", "message": "upload exceeds the size limit"})
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise HTTPException(413, detail={"code": "too_large", "message": "upload exceeds the size limit"})
    return bytes(body)


def parse_multipart(content_type: str, body: bytes) -> dict[str, Part]:
    """Parse a multipart/form-data body held in memory into its named parts."""
    ctype, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise HTTPException(400, detail={"code": "bad_request", "message": "expected multipart/form-data"})
    parts: dict[str, Part] = {}
    current: dict[str, object] = {}
    header_field = bytearray()
    header_value = bytearray()

    def on_part_begin() -> None:
        current.clear()
        current["headers"] = {}

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        current["headers"][bytes(header_field).lower()] = bytes(header_value)  # type: ignore[index]
        header_field.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        headers: dict[bytes, bytes] = current["headers"]  # type: ignore[assignment]
        _, disp = parse_options_header(headers.get(b"content-disposition", b""))
        name = disp.get(b"name", b"").decode("utf-8", "replace")
        filename = disp.get(b"filename")
        part = Part(
            name=name,
            filename=filename.decode("utf-8", "replace") if filename else None,
            content_type=headers.get(b"content-type", b"").decode("latin-1") or None,
        )
        current["part"] = part

    def on_part_data(data: bytes, start: int, end: int) -> None:
        current["part"].data.extend(data[start:end])  # type: ignore[union-attr]

    def on_part_end() -> None:
        part: Part = current["part"]  # type: ignore[assignment]
        parts[part.name] = part

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        parser.write(body)
        parser.finalize()
    except Exception as exc:
        raise HTTPException(
            400, detail={"code": "bad_request", "message": "malformed multipart body"}
        ) from exc
    return parts
