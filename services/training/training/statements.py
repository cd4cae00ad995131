"""What the e-learning platform may post, and how it maps to a reported result.

Two shapes are accepted:

- our own completion document::

      {"type": "completion", "session_id": "S-2025-001", "staff_id": "A1001",
       "occurred_at": "2025-06-01T10:00:00+09:00", "success": true, "score": 0.9,
       "completion_id": "lms-42"}

  (`success`, `score` and `completion_id` optional; without `completion_id` the delivery's
  `webhook-id` identifies it);
- an xAPI statement: `actor.account.name` is the staff id, `verb.id` the ADL verb IRI (or its display
  word), `object.id` the session's xAPI activity id or an IRI ending in the session id, `result.completion`,
  `result.success`, `result.score.scaled`, `timestamp` when it happened and `id` the statement id;
- a batch: a JSON array of 1 to `MAX_BATCH` xAPI statements, as a learning record store forwards them.
  Each is read exactly as if it had come alone; one unreadable statement refuses the whole batch.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from dx_shared.contracts import CompletionSource
from dx_shared.problems import MAX_ERRORS, clip
from training.domain import ReportedResult, Verb, outcome_of

ADL_VERBS = "http://adlnet.gov/expapi/verbs/"
EARLIEST_YEAR, LATEST_YEAR = 1990, 2200
MAX_BATCH = 100
VERB_IRIS = {f"{ADL_VERBS}{verb.value}": verb for verb in Verb}

# Text that PostgreSQL can store (no NUL) and that is short enough to be an identifier.
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=512, pattern=r"^[^\x00-\x1f]+$")]


class UnsupportedPayload(ValueError):
    """Valid JSON that is neither a completion document nor an xAPI statement we can read."""

    status: ClassVar[int] = 422
    code = "UNSUPPORTED_PAYLOAD"
    title_en = "The body is neither a completion nor an xAPI statement"
    title_ja = "本文が修了データ・xAPIステートメントのいずれの形式でもありません"

    def __init__(self, detail: str, errors: list[dict[str, Any]] | None = None, **facts: int) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.facts = facts


class EmptyBatch(UnsupportedPayload):
    code = "EMPTY_BATCH"
    title_en = "A batch must hold at least one xAPI statement"
    title_ja = "一括送信には1件以上のxAPIステートメントが必要です"


class BatchTooLarge(UnsupportedPayload):
    status = 413
    code = "BATCH_TOO_LARGE"
    title_en = f"A batch may hold at most {MAX_BATCH} xAPI statements"
    title_ja = f"一括送信できるxAPIステートメントは{MAX_BATCH}件までです"


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)


class CompletionDocument(_Lenient):
    type: Literal["completion"]
    session_id: Identifier
    staff_id: Identifier
    occurred_at: AwareDatetime
    success: bool | None = None
    score: float | None = None
    completion_id: Identifier | None = None


class XapiAccount(_Lenient):
    name: Identifier
    homePage: str | None = None


class XapiActor(_Lenient):
    account: XapiAccount


class XapiVerb(_Lenient):
    id: Identifier
    display: dict[str, str] = Field(default_factory=dict)


class XapiActivity(_Lenient):
    id: Identifier


class XapiScore(_Lenient):
    scaled: float | None = Field(None, ge=-1, le=1)


class XapiResult(_Lenient):
    completion: bool | None = None
    success: bool | None = None
    score: XapiScore | None = None


class XapiStatement(_Lenient):
    id: Identifier | None = None
    actor: XapiActor
    verb: XapiVerb
    object: XapiActivity
    result: XapiResult | None = None
    timestamp: datetime | None = None

    def verb_meaning(self) -> Verb | None:
        if self.verb.id in VERB_IRIS:
            return VERB_IRIS[self.verb.id]
        words = [self.verb.id, *self.verb.display.values()]
        for word in words:
            try:
                return Verb(word.strip().lower())
            except ValueError:
                continue
        return None


def _validation_errors(exc: ValidationError) -> list[dict[str, Any]]:
    # Locations may name unexpected keys and messages may quote the input: both clipped, input never echoed.
    return [
        {"loc": [part if isinstance(part, int) else clip(str(part), 64) for part in error["loc"]][:10],
         "msg": clip(str(error["msg"]))}
        for error in exc.errors(include_url=False)[:MAX_ERRORS]
    ]


def read_document(document: object, *, webhook_id: str, sent_at: datetime) -> ReportedResult | None:
    """The reported result in a posted document; None for a well-formed xAPI statement whose verb
    cannot complete anything (launched, initialized…), which is acknowledged and ignored."""
    if not isinstance(document, dict):
        raise UnsupportedPayload("the body must be a JSON object")
    reported: ReportedResult | None
    try:
        if document.get("type") == "completion":
            reported = _from_completion_document(CompletionDocument.model_validate(document), webhook_id)
        elif {"actor", "verb", "object"} <= document.keys():
            reported = _from_statement(XapiStatement.model_validate(document), webhook_id, sent_at)
        else:
            raise UnsupportedPayload('expected {"type": "completion", ...} or an xAPI statement (actor, verb, object)')
    except ValidationError as exc:
        raise UnsupportedPayload("the body does not have the expected fields", _validation_errors(exc)) from exc
    if reported is not None and not _plausible(reported.occurred_at):
        raise UnsupportedPayload(f"occurred_at {reported.occurred_at.isoformat()} is out of range")
    return reported


@dataclass(frozen=True)
class BatchItem:
    """One statement of a batch: what it reports (None: a verb that completes nothing) and its own text."""

    reported: ReportedResult | None
    text: str
    digest: str


def payload_digest(document: object) -> str:
    """SHA-256 of the document's canonical JSON (sorted keys, no spaces): a retry of the same content,
    however formatted, has the same digest; a different body under a reused id has another."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def read_batch(documents: list[object], *, webhook_id: str, sent_at: datetime) -> list[BatchItem]:
    """The statements of a batch, in order. A statement without an id is keyed by the delivery and its
    position, so that two of them in one delivery stay two."""
    if not documents:
        raise EmptyBatch("the array is empty")
    if len(documents) > MAX_BATCH:
        raise BatchTooLarge(f"{len(documents)} statements; split the batch", limit=MAX_BATCH)
    items = []
    for position, document in enumerate(documents):
        try:
            if not isinstance(document, dict) or not {"actor", "verb", "object"} <= document.keys():
                raise UnsupportedPayload("each element of a batch must be an xAPI statement (actor, verb, object)")
            reported = read_document(document, webhook_id=f"{webhook_id}#{position}", sent_at=sent_at)
        except UnsupportedPayload as exc:
            errors = [{**error, "loc": [position, *error["loc"]]} for error in exc.errors]
            raise UnsupportedPayload(f"statement {position}: {exc.detail}", errors, position=position) from exc
        items.append(BatchItem(reported, json.dumps(document), payload_digest(document)))
    return items


def _plausible(moment: datetime) -> bool:
    try:
        return EARLIEST_YEAR <= moment.astimezone(UTC).year <= LATEST_YEAR
    except OverflowError:
        return False


def _from_completion_document(doc: CompletionDocument, webhook_id: str) -> ReportedResult:
    source_key = f"completion:{doc.completion_id}" if doc.completion_id else f"delivery:{webhook_id}"
    return ReportedResult(
        source=CompletionSource.WEBHOOK,
        source_key=source_key,
        session_ref=doc.session_id,
        staff_id=doc.staff_id,
        occurred_at=doc.occurred_at,
        outcome=outcome_of(Verb.COMPLETED, success=doc.success),
        success=doc.success,
        score=doc.score,
    )


def _from_statement(statement: XapiStatement, webhook_id: str, sent_at: datetime) -> ReportedResult | None:
    verb = statement.verb_meaning()
    if verb is None:
        return None
    result = statement.result or XapiResult()
    occurred_at = statement.timestamp or sent_at
    if occurred_at.tzinfo is None:
        # xAPI: a timestamp without a time zone may be read as UTC.
        occurred_at = occurred_at.replace(tzinfo=UTC)
    return ReportedResult(
        source=CompletionSource.XAPI,
        source_key=f"xapi:{statement.id.lower()}" if statement.id else f"delivery:{webhook_id}",
        session_ref=statement.object.id,
        staff_id=statement.actor.account.name,
        occurred_at=occurred_at,
        outcome=outcome_of(verb, completion=result.completion, success=result.success),
        success=True if verb is Verb.PASSED else False if verb is Verb.FAILED else result.success,
        score=result.score.scaled if result.score else None,
    )
