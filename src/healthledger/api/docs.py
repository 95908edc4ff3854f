"""``/docs``: the API reference as one self-contained HTML page, rendered from the app's
OpenAPI document on the server.

FastAPI's Swagger UI and ReDoc pages load their scripts from a CDN, which a
consortium's offline machines cannot reach; this page needs nothing but the app.
The machine-readable document stays at ``/openapi.json``.
"""

from __future__ import annotations

import inspect
import re
from html import escape
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from markdown_it import MarkdownIt

_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")
"""Descriptions are Markdown (CommonMark and tables); raw HTML in them is shown as text."""
_PLACEHOLDER = re.compile(r"\{([^}]+)\}")

_STYLE = """
body{font-family:system-ui,sans-serif;color:#1d2733;max-width:70rem;margin:0 auto;padding:1.5rem;
line-height:1.5}code,pre{font-family:ui-monospace,monospace;font-size:.9em}
h1{margin-bottom:.25rem}h2{margin-top:2.5rem;border-bottom:2px solid #0b6e69}
section.op{border:1px solid #d8dee6;border-radius:8px;padding:.5rem 1rem;margin:1rem 0}
.method{display:inline-block;min-width:4.5rem;font-weight:700;color:#fff;background:#0b6e69;
border-radius:4px;text-align:center;margin-right:.5rem}.method.get{background:#124a73}
table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{text-align:left;
border-bottom:1px solid #d8dee6;padding:.3rem .5rem;vertical-align:top}
.desc{color:#38485a}.muted{color:#5b6b7c}
pre.try{background:#f3f6f9;border-radius:6px;padding:.4rem .6rem;overflow-x:auto}
"""


def _type(schema: Any) -> str:
    if not isinstance(schema, dict):
        return "any"
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        return f'<a href="#schema-{escape(name)}">{escape(name)}</a>'
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " | ".join(_type(s) for s in schema[key])
    if "const" in schema:
        return f"<code>{escape(repr(schema['const']))}</code>"
    if "enum" in schema:
        return " | ".join(f"<code>{escape(str(v))}</code>" for v in schema["enum"])
    kind = str(schema.get("type", "any"))
    if kind == "array":
        return f"array of {_type(schema.get('items'))}"
    if kind == "object" and "additionalProperties" in schema:
        return f"object of {_type(schema['additionalProperties'])}"
    extra = (
        f" <span class='muted'>/{escape(schema['pattern'])}/</span>" if "pattern" in schema else ""
    )
    return escape(kind) + extra


def markdown(text: object) -> str:
    """A description rendered from Markdown (a docstring's indentation removed first)."""
    return _MARKDOWN.render(inspect.cleandoc(str(text))) if text else ""


def _inline(text: object) -> str:
    return _MARKDOWN.renderInline(" ".join(str(text).split())) if text else ""


def try_it(base_url: str, path: str, method: str, op: dict[str, Any]) -> str:
    """A ``curl`` command for the operation: path and required query parameters filled
    with their examples where they declare one (``{name}`` where the caller must choose)."""
    examples = {
        str(p.get("name")): _example(p) for p in op.get("parameters") or [] if p.get("in") == "path"
    }

    def fill(match: re.Match[str]) -> str:
        value = examples.get(match.group(1))
        return match.group(0) if value is None else str(value)

    url = base_url + _PLACEHOLDER.sub(fill, path)
    required = [
        p for p in op.get("parameters") or [] if p.get("in") == "query" and p.get("required")
    ]
    if required:
        pairs = []
        for p in required:
            value = _example(p)
            pairs.append(
                f"{p['name']}={{{p['name']}}}" if value is None else f"{p['name']}={value}"
            )
        url += "?" + "&".join(pairs)
    if method == "get":
        return f"curl '{url}'"
    body = op.get("requestBody", {}).get("content", {})
    media = next(iter(body), None)
    data = "" if media is None else f" -H 'Content-Type: {media}' --data @request.json"
    return f"curl -X {method.upper()}{data} '{url}'"


def _example(parameter: dict[str, Any]) -> object:
    schema = parameter.get("schema", {})
    listed = schema.get("examples") or [None]
    return parameter.get("example", schema.get("example", listed[0]))


def _operation(path: str, method: str, op: dict[str, Any], base_url: str) -> str:
    parts = [
        '<section class="op">',
        f'<h3><span class="method {method}">{method.upper()}</span><code>{escape(path)}</code>'
        f" — {escape(str(op.get('summary', '')))}</h3>",
    ]
    if op.get("description"):
        parts.append(f'<div class="desc">{markdown(op["description"])}</div>')
    if op.get("security"):
        parts.append(
            '<p class="members"><strong>Members only:</strong> sign the request as a '
            "registered identity (headers <code>HL-Identity</code>, <code>HL-Timestamp</code>, "
            "<code>HL-Nonce</code>, <code>HL-Signature</code>; <code>healthledger.client</code> "
            "signs every request it sends) or log in to the console; without either the "
            "answer is 401 <code>unauthenticated</code>.</p>"
        )
    parts.append(
        f'<pre class="try"><code>{escape(try_it(base_url, path, method, op))}</code></pre>'
    )
    params = op.get("parameters") or []
    if params:
        parts.append("<table><tr><th>Parameter</th><th>In</th><th>Type</th><th>Notes</th></tr>")
        for p in params:
            required = "required. " if p.get("required") else ""
            parts.append(
                f"<tr><td><code>{escape(str(p.get('name')))}</code></td>"
                f"<td>{escape(str(p.get('in')))}</td><td>{_type(p.get('schema'))}</td>"
                f"<td>{required}{_inline(p.get('description', ''))}</td></tr>"
            )
        parts.append("</table>")
    body = op.get("requestBody", {}).get("content", {})
    for media, content in body.items():
        parts.append(f"<p>Body (<code>{escape(media)}</code>): {_type(content.get('schema'))}</p>")
    rows = "".join(
        f"<tr><td>{escape(str(code))}</td><td>{_inline(r.get('description', ''))}</td>"
        f"<td>{', '.join(escape(m) for m in r.get('content', {}))}</td></tr>"
        for code, r in sorted(op.get("responses", {}).items())
    )
    parts.append(f"<table><tr><th>Status</th><th>Meaning</th><th>Media</th></tr>{rows}</table>")
    parts.append("</section>")
    return "".join(parts)


def _schema(name: str, schema: dict[str, Any]) -> str:
    required = set(schema.get("required", []))
    rows = "".join(
        f"<tr><td><code>{escape(field)}</code>{' *' if field in required else ''}</td>"
        f"<td>{_type(spec)}</td><td>{_inline(spec.get('description', ''))}</td></tr>"
        for field, spec in schema.get("properties", {}).items()
    )
    description = markdown(schema.get("description", ""))
    return (
        f'<section class="op" id="schema-{escape(name)}"><h3>{escape(name)}</h3>'
        f'<div class="desc">{description}</div>'
        f"<table><tr><th>Field (* required)</th><th>Type</th><th>Notes</th></tr>{rows}</table>"
        "</section>"
    )


def render_reference(spec: dict[str, Any], base_url: str = "http://127.0.0.1:8000") -> str:
    """The HTML reference page of an OpenAPI document; its examples call ``base_url``."""
    info = spec.get("info", {})
    by_tag: dict[str, list[str]] = {}
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            tag = (op.get("tags") or ["other"])[0]
            by_tag.setdefault(tag, []).append(_operation(path, method, op, base_url))
    sections = "".join(
        f'<h2 id="tag-{escape(tag)}">{escape(tag)}</h2>' + "".join(ops)
        for tag, ops in by_tag.items()
    )
    schemas = "".join(
        _schema(name, s) for name, s in spec.get("components", {}).get("schemas", {}).items()
    )
    toc = " · ".join(f'<a href="#tag-{escape(t)}">{escape(t)}</a>' for t in by_tag)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(str(info.get('title', 'API')))} reference</title>"
        f"<style>{_STYLE}</style></head><body><main>"
        f"<h1>{escape(str(info.get('title', 'API')))}</h1>"
        f'<p class="muted">Version {escape(str(info.get("version", "")))} · '
        'OpenAPI document: <a href="/openapi.json">/openapi.json</a></p>'
        f'<div class="desc">{markdown(info.get("description", ""))}</div>'
        f"<nav><p>{toc} · <a href='#schemas'>schemas</a></p></nav>{sections}"
        f'<h2 id="schemas">Schemas</h2>{schemas}</main></body></html>'
    )


def install_reference(app: FastAPI, path: str = "/docs") -> None:
    """Serve the reference page of ``app`` at ``path`` (outside the OpenAPI document)."""

    @app.get(path, include_in_schema=False, response_class=HTMLResponse)
    def reference(request: Request) -> HTMLResponse:
        """The API reference, its examples addressed to this server."""
        base_url = str(request.base_url).rstrip("/")
        return HTMLResponse(render_reference(app.openapi(), base_url))
