"""Loads the demo history into a running system through its public HTTP APIs and the signed webhook.

`python -m dx_tools.demo [--seed 2024] [--years 2024-2028]`. Everything goes through the front door, as
the offices and the e-learning platform would send it: Shift_JIS department lists and rosters with
Japanese headers, nominations, sessions and curricula, classroom attendance, e-learning completions
as signed webhooks (our JSON completion and xAPI statements), a CSV backfill of baseline completions,
fiscal-year closings, a few late completions and a few statements for unknown sessions or people.
Loading twice changes nothing: every request is idempotent or refused as already done.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Sequence
from typing import Any

import httpx
from tqdm import tqdm

from dx_shared.client_credentials import client_token_async
from dx_shared.envelope import deterministic_id
from dx_shared.settings import Settings, get_settings
from dx_tools.demo_data import Completion, Session, YearPlan, generate
from training.webhook_signing import sign

CONCURRENCY = 12


class Loader:
    def __init__(self, settings: Settings, http: httpx.AsyncClient, progress: tqdm[Any]) -> None:
        self.settings = settings
        self.http = http
        self.progress = progress
        self.secret = settings.webhook_secret_list[0]
        self.refusals: dict[str, int] = defaultdict(int)
        self._gate = asyncio.Semaphore(CONCURRENCY)

    async def call(
        self, method: str, url: str, *, ok_codes: tuple[str, ...] = (), step: int = 1, **kwargs: Any
    ) -> httpx.Response:
        async with self._gate:
            for attempt in range(5):
                try:
                    response = await self.http.request(method, url, **kwargs)
                except httpx.TransportError:
                    if attempt == 4:
                        raise
                    await asyncio.sleep(0.5 * (attempt + 1))
                    continue
                break
        self.progress.update(step)
        if response.status_code >= 400:
            code = _problem_code(response)
            if code in ok_codes:
                self.refusals[code] += 1
            else:
                raise RuntimeError(f"{method} {url} → {response.status_code} {response.text[:400]}")
        return response

    async def gather(self, calls: Sequence[Awaitable[httpx.Response]]) -> None:
        await asyncio.gather(*calls)

    # ---- one fiscal year ---------------------------------------------------------------------

    async def rosters(self, plan: YearPlan) -> None:
        nomination = self.settings.nomination_url
        departments = io.StringIO()
        departments.write("所属コード,所属名,部局,有効\n")
        for dept in plan.departments:
            departments.write(f"{dept.code},{dept.name},{dept.bureau},{'○' if dept.active else '×'}\n")
        await self.call(
            "POST",
            f"{nomination}/api/v1/departments/import",
            params={"fiscal_year": plan.fiscal_year},
            content=departments.getvalue().encode("cp932"),
            headers={"content-type": "text/csv"},
        )
        roster = io.StringIO()
        roster.write("職員番号,氏名,所属コード,管理職\n")
        for person in plan.staff:
            roster.write(
                f"{person.staff_id},{person.name},{person.department_code},{'1' if person.is_manager else '0'}\n"
            )
        await self.call(
            "POST",
            f"{nomination}/api/v1/staff/import",
            params={"fiscal_year": plan.fiscal_year},
            content=roster.getvalue().encode("cp932"),
            headers={"content-type": "text/csv"},
        )

    async def sessions(self, plan: YearPlan) -> None:
        training = self.settings.training_url
        await self.gather(
            [self.call("POST", f"{training}/api/v1/sessions", json=_session_body(s)) for s in plan.sessions]
        )
        await self.gather(
            [
                self.call("PUT", f"{training}/api/v1/curricula/{plan.fiscal_year}/{stage}", json={"session_ids": ids})
                for stage, ids in plan.curricula.items()
            ]
        )

    async def nominations(self, plan: YearPlan) -> None:
        url = f"{self.settings.nomination_url}/api/v1/nominations"
        await self.gather(
            [
                self.call(
                    "POST",
                    url,
                    json={
                        "staff_id": n.staff_id,
                        "fiscal_year": plan.fiscal_year,
                        "slot": n.slot,
                        "department_code": n.department_code,
                    },
                    ok_codes=("ALREADY_NOMINATED", "QUOTA_EXCEEDED", "NOT_NEW"),
                )
                for n in plan.nominations
            ]
        )

    async def completions(self, plan: YearPlan) -> None:
        sessions = {s.session_id: s for s in plan.sessions}
        attendance: dict[str, list[str]] = defaultdict(list)
        webhooks: list[Completion] = []
        for completion in plan.promoter_completions:
            if completion.method == "e_learning":
                webhooks.append(completion)
            else:
                attendance[completion.session_id].append(completion.staff_id)
        backfill = [c for c in plan.baseline_completions if c.method == "e_learning"]
        for completion in plan.baseline_completions:
            if completion.method != "e_learning":
                attendance[completion.session_id].append(completion.staff_id)
        calls: list[Awaitable[httpx.Response]] = [self.webhook(c, sessions[c.session_id]) for c in webhooks]
        for session_id, staff_ids in attendance.items():
            session = sessions[session_id]
            calls.append(
                self.call(
                    "POST",
                    f"{self.settings.training_url}/api/v1/sessions/{session_id}/attendance",
                    json={"staff_ids": staff_ids, "occurred_at": session.starts_at.isoformat()},
                    ok_codes=("CAPACITY_EXCEEDED",),
                )
            )
        if backfill:
            csv = "研修ID,職員番号,修了日時\n" + "".join(
                f"{c.session_id},{c.staff_id},{c.occurred_at.isoformat()}\n" for c in backfill
            )
            calls.append(
                self.call(
                    "POST",
                    f"{self.settings.training_url}/api/v1/completions/import",
                    content=csv.encode("utf-8-sig"),
                    headers={"content-type": "text/csv"},
                )
            )
        await self.gather(calls)

    async def webhook(self, completion: Completion, session: Session) -> httpx.Response:
        delivery = deterministic_id("demo-webhook", completion.session_id, completion.staff_id)
        if session.move_on == "completed":
            document: dict[str, Any] = {
                "type": "completion",
                "completion_id": delivery,
                "session_id": completion.session_id,
                "staff_id": completion.staff_id,
                "occurred_at": completion.occurred_at.isoformat(),
            }
        else:
            document = _statement(delivery, completion.session_id, completion.staff_id, completion, completion.passed)
        return await self.post_webhook(document, f"msg_{delivery}")

    async def post_webhook(self, document: dict[str, Any], msg_id: str) -> httpx.Response:
        body = json.dumps(document, ensure_ascii=False).encode()
        return await self.call(
            "POST",
            f"{self.settings.training_url}/webhooks/elearning",
            content=body,
            headers=sign(self.secret, body, msg_id),
        )

    async def close(self, fiscal_year: int) -> None:
        await self.call(
            "POST",
            f"{self.settings.progression_url}/api/v1/fiscal-years/{fiscal_year}/close",
            json={"actor": "DX推進課"},
            ok_codes=("FISCAL_YEAR_ALREADY_CLOSED",),
        )

    async def late_and_unmatched(self, plan: YearPlan) -> None:
        calls = []
        for completion in plan.late_for_previous_year:
            delivery = deterministic_id("demo-late", completion.session_id, completion.staff_id)
            calls.append(
                self.post_webhook(
                    {
                        "type": "completion",
                        "completion_id": delivery,
                        "session_id": completion.session_id,
                        "staff_id": completion.staff_id,
                        "occurred_at": completion.occurred_at.isoformat(),
                    },
                    f"msg_{delivery}",
                )
            )
        for index, stray in enumerate(plan.unmatched):
            delivery = deterministic_id("demo-unmatched", plan.fiscal_year, index)
            fake = Completion(stray["activity"], stray["staff_id"], plan.sessions[0].starts_at, "e_learning")
            calls.append(
                self.post_webhook(
                    _statement(delivery, stray["activity"], stray["staff_id"], fake, True), f"msg_{delivery}"
                )
            )
        await self.gather(calls)


def _problem_code(response: httpx.Response) -> str:
    try:
        return str(response.json().get("code", ""))
    except ValueError:
        return ""


def _session_body(session: Session) -> dict[str, Any]:
    return {
        "session_id": session.session_id,
        "fiscal_year": session.fiscal_year,
        "method": session.method,
        "audience": session.audience,
        "stage": session.stage,
        "title": session.title,
        "starts_at": session.starts_at.isoformat(),
        "capacity": session.capacity,
        "move_on": session.move_on,
    }


def _statement(statement_id: str, activity: str, staff_id: str, completion: Completion, passed: bool) -> dict[str, Any]:
    return {
        "id": statement_id,
        "actor": {"objectType": "Agent", "account": {"homePage": "https://elearning.example", "name": staff_id}},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed", "display": {"en-US": "completed"}},
        "object": {"id": activity if "://" in activity else f"https://elearning.example/activities/{activity}"},
        "result": {"completion": True, "success": passed, "score": {"scaled": 0.9 if passed else 0.4}},
        "timestamp": completion.occurred_at.isoformat(),
    }


def _steps(plans: list[YearPlan]) -> int:
    total = 0
    for plan in plans:
        attendance = {
            c.session_id for c in plan.promoter_completions + plan.baseline_completions if c.method != "e_learning"
        }
        webhooks = sum(1 for c in plan.promoter_completions if c.method == "e_learning")
        total += 2 + len(plan.sessions) + len(plan.curricula) + len(plan.nominations) + len(attendance) + webhooks + 1
        total += len(plan.late_for_previous_year) + len(plan.unmatched) + 1
    return total


async def wait_until_settled(settings: Settings, http: httpx.AsyncClient, timeout: float = 600) -> None:
    """Waits until the reports stop changing: every event has flowed through every service."""
    deadline = time.monotonic() + timeout
    previous, stable = None, 0
    while time.monotonic() < deadline:
        plan = (await http.get(f"{settings.reporting_url}/api/v1/reports/plan")).json()
        pipeline = (await http.get(f"{settings.reporting_url}/api/v1/reports/pipeline")).json()
        snapshot = json.dumps([plan, pipeline.get("streams")], sort_keys=True, default=str)
        stable = stable + 1 if snapshot == previous else 0
        if stable >= 3:
            return
        previous = snapshot
        await asyncio.sleep(1.0)


async def load(settings: Settings, seed: int, years: range, *, quiet: bool = False) -> dict[str, int]:
    plans = [plan for plan in generate(seed) if plan.fiscal_year in years]
    started = time.monotonic()
    # The loader is a program: a client-credentials token (client dx-loader), as CONTRACT.md "Identity" says.
    token = await client_token_async(settings)
    async with httpx.AsyncClient(timeout=120, headers={"Authorization": f"Bearer {token}"}) as http:
        with tqdm(total=_steps(plans), desc="デモデータ投入 / loading demo data", unit="req", disable=quiet) as bar:
            loader = Loader(settings, http, bar)
            previous: YearPlan | None = None
            for plan in plans:
                bar.set_postfix_str(f"FY{plan.fiscal_year} 令和{plan.fiscal_year - 2018}年度")
                await loader.rosters(plan)
                await loader.sessions(plan)
                await loader.nominations(plan)
                await loader.completions(plan)
                if previous is not None:
                    await loader.close(previous.fiscal_year)
                await loader.late_and_unmatched(plan)
                previous = plan
            bar.set_postfix_str("反映待ち / waiting for the reports")
            await wait_until_settled(settings, http)
            bar.update(1)
    if not quiet:
        print(f"demo data loaded in {time.monotonic() - started:.0f}s; expected refusals: {dict(loader.refusals)}")
    return dict(loader.refusals)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dx_tools.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--years", default="2024-2028", help="e.g. 2024-2028 or 2024")
    args = parser.parse_args(argv)
    first, _, last = args.years.partition("-")
    asyncio.run(load(get_settings(), args.seed, range(int(first), int(last or first) + 1)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
