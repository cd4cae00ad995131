"""Who a test request comes from: the one place tests state a role, as a real token from the test IdP."""

from __future__ import annotations

from tests.support.identity import bearer


def as_role(role: str, *, department: str | None = None, staff_id: str | None = None) -> dict[str, str]:
    """The Authorization header of a signed-in person with `role` (and its department or person)."""
    return bearer(role, department=department, staff_id=staff_id)
