"""The checked-in OpenAPI and AsyncAPI documents, generated from the code (`./dx docs`).

`check` is what the test suite runs: it fails when a document differs from what the code produces.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

from dx_shared.settings import Settings

SERVICES = ("nomination", "training", "progression", "reporting")
DOCS = Path(__file__).resolve().parents[2] / "docs"

# Fixed values, so the documents do not depend on the environment they are generated in.
CANONICAL = Settings(
    database_url="postgresql://postgres@127.0.0.1:5432/dx",
    amqp_url="amqp://guest:guest@127.0.0.1:5672/",
    exchange="dx.events",
    dead_letter_exchange="dx.dead-letter",
    queue_prefix="",
)


def render(service: str) -> dict[str, str]:
    module = importlib.import_module(f"{service}.main")
    app = module.create_app(CANONICAL)
    openapi: dict[str, Any] = app.openapi()
    asyncapi: dict[str, Any] = app.state.asyncapi.to_specification().to_jsonable()
    return {
        f"openapi/{service}.json": json.dumps(openapi, indent=2, ensure_ascii=False, sort_keys=True) + "\n",
        f"asyncapi/{service}.json": json.dumps(asyncapi, indent=2, ensure_ascii=False, sort_keys=True) + "\n",
    }


def documents() -> dict[str, str]:
    rendered: dict[str, str] = {}
    for service in SERVICES:
        rendered.update(render(service))
    return rendered


def stale() -> list[str]:
    return [
        name
        for name, text in documents().items()
        if not (DOCS / name).exists() or (DOCS / name).read_text(encoding="utf-8") != text
    ]


def write() -> None:
    for name, text in documents().items():
        path = DOCS / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote docs/{name}")


def main(argv: list[str]) -> int:
    if argv[:1] == ["write"]:
        write()
        return 0
    out_of_date = stale()
    for name in out_of_date:
        print(f"docs/{name} is out of date: run ./dx docs", file=sys.stderr)
    return 1 if out_of_date else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
