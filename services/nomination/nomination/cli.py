"""The offices' command line: send a department list, roster or nomination sheet to the running service.

    uv run python -m nomination.cli import-departments --fiscal-year 2024 所属一覧.csv [--dry-run]
    uv run python -m nomination.cli import-staff --fiscal-year 2024 職員名簿.csv [--dry-run]
    uv run python -m nomination.cli import-nominations --fiscal-year 2024 推薦一覧.csv [--dry-run]

Prints what was added, changed, unchanged and removed, and every bad row with its line and reason.
It signs in as a program (client-credentials grant, `DX_LOADER_CLIENT_ID` / `DX_LOADER_CLIENT_SECRET`).
Exit status: 0 imported (or would be, with --dry-run), 1 the file was refused, 2 the service failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

import httpx

from dx_shared.calendar import parse_fiscal_year
from dx_shared.client_credentials import TokenNotGranted, client_token
from dx_shared.roles import Scope
from dx_shared.settings import Settings, get_settings

ENDPOINTS = {
    "import-departments": "/api/v1/departments/import",
    "import-staff": "/api/v1/staff/import",
    "import-nominations": "/api/v1/nominations/import",
}
LIST_LIMIT = 20


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    args = _parser().parse_args(argv)
    raw = Path(args.file).read_bytes()
    scope = Scope.NOMINATIONS_WRITE if args.command == "import-nominations" else Scope.ROSTER_IMPORT
    try:
        token = client_token(Settings(), [scope])
    except (httpx.HTTPError, TokenNotGranted) as exc:
        print(f"認証基盤からトークンを取得できません / cannot get an access token: {exc}", file=out)
        return 2
    try:
        response = httpx.post(
            args.url.rstrip("/") + ENDPOINTS[args.command],
            params={"fiscal_year": args.fiscal_year, "dry_run": str(args.dry_run).lower()},
            content=raw,
            headers={"content-type": "text/csv", "Authorization": f"Bearer {token}"},
            timeout=args.timeout,
        )
    except httpx.HTTPError as exc:
        print(f"サービスに接続できません / cannot reach the service at {args.url}: {exc}", file=out)
        return 2
    body: dict[str, Any] = response.json() if _is_json(response) else {}
    if response.status_code == 200:
        (_print_sheet if args.command == "import-nominations" else _print_import)(body, out)
        return 0
    _print_problem(response.status_code, body, response.text, out)
    return 1 if response.status_code in (409, 413, 422) else 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nomination.cli", description=__doc__.split("\n", 1)[0])
    parser.add_argument("command", choices=sorted(ENDPOINTS))
    parser.add_argument("file", type=Path)
    parser.add_argument("--fiscal-year", required=True, type=parse_fiscal_year, help="2024, FY2024, R6 or 令和6年度")
    parser.add_argument("--dry-run", action="store_true", help="validate and report without writing")
    parser.add_argument("--url", default=get_settings().nomination_url, help="the nomination service")
    parser.add_argument("--timeout", type=float, default=120.0)
    return parser


def _is_json(response: httpx.Response) -> bool:
    return "json" in response.headers.get("content-type", "")


def _print_import(report: dict[str, Any], out: TextIO) -> None:
    summary = report["summary"]
    mode = "（試行・書き込みなし / dry run, nothing written）" if report["dry_run"] else ""
    print(f"{report['kind']} FY{report['fiscal_year']} — {report['encoding']}, {report['rows']} rows {mode}", file=out)
    print(
        f"追加 added {summary['added']} / 変更 changed {summary['changed']} / "
        f"変更なし unchanged {summary['unchanged']} / 削除 removed {summary['removed']} "
        f"→ 合計 total {report['total']}",
        file=out,
    )
    _print_keys("追加 added", report["added"], out)
    _print_keys("変更 changed", [f"{row['key']} ({', '.join(row['fields'])})" for row in report["changed"]], out)
    _print_keys("削除 removed", report["removed"], out)
    if report["ignored_columns"]:
        print(f"無視した列 ignored columns: {', '.join(report['ignored_columns'])}", file=out)
    if not report["dry_run"]:
        print("取り込みました / imported" if report["applied"] else "変更なし / nothing changed", file=out)


def _print_keys(label: str, keys: list[str], out: TextIO) -> None:
    if not keys:
        return
    shown = ", ".join(keys[:LIST_LIMIT])
    more = f" … (+{len(keys) - LIST_LIMIT})" if len(keys) > LIST_LIMIT else ""
    print(f"  {label}: {shown}{more}", file=out)


def _print_sheet(report: dict[str, Any], out: TextIO) -> None:
    summary = report["summary"]
    mode = "（試行 / dry run）" if report["dry_run"] else ""
    print(f"nominations FY{report['fiscal_year']} {mode}", file=out)
    print(f"受付 accepted {summary['accepted']} / 不受理 refused {summary['refused']}", file=out)
    for row in report["results"]:
        if row["outcome"] == "accepted":
            print(f"  {row['line']:>5} 行目 {row['staff_id']}: 受付 accepted ({row['slot']})", file=out)
        else:
            print(f"  {row['line']:>5} 行目 {row['staff_id']}: {row['code']} {row['message_ja'] or ''}", file=out)


def _print_problem(status: int, problem: dict[str, Any], text: str, out: TextIO) -> None:
    if not problem:
        print(f"HTTP {status}: {text[:500]}", file=out)
        return
    print(f"{problem.get('title_ja', '')} / {problem.get('title', '')} [{problem.get('code', status)}]", file=out)
    for row in problem.get("bad_rows", []):
        where = f"{row['line']:>5} 行目" if row["line"] is not None else "ファイル全体"
        print(f"  {where} {row['code']}: {row['message_ja']} / {row['message_en']}", file=out)
    if problem.get("detail") and not problem.get("bad_rows"):
        print(f"  {problem['detail']}", file=out)


if __name__ == "__main__":
    raise SystemExit(main())
