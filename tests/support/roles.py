"""Who a test request comes from: the one place tests state a role (converted to tokens with identity)."""

from __future__ import annotations


def as_role(role: str, *, department: str | None = None, staff_id: str | None = None) -> dict[str, str]:
    """The request headers that make a request come from `role` (and its department or person)."""
    headers = {"X-DX-Role": role}
    if department is not None:
        headers["X-DX-Department"] = department
    if staff_id is not None:
        headers["X-DX-Staff-Id"] = staff_id
    return headers
