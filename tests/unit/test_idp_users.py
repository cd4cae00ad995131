"""The demo users of the local identity provider come from the demo data set, one per role and two
department heads and trainees who belong together; their passwords are stored only as scrypt hashes."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

from dx_tools.demo_data import generate
from dx_tools.idp import DEMO_PASSWORD, demo_users, hash_password, write_users


def test_there_is_a_demo_user_for_each_role() -> None:
    users = {user.username: user for user in demo_users()}
    assert set(users) == {"dx.office", "hr.office", "info.policy", "dept.head1", "dept.head2", "trainee1", "trainee2"}
    assert [users[name].dx_role for name in ("dx.office", "hr.office", "info.policy")] == [
        "dx_office",
        "hr_office",
        "info_policy",
    ]
    assert len({user.sub for user in users.values()}) == len(users)


def test_heads_and_trainees_are_real_people_of_the_demo_data() -> None:
    latest = generate()[-1]
    roster = {person.staff_id: person for person in latest.staff}
    recommended = {n.staff_id for n in latest.nominations if n.slot == "recommended"}
    users = {user.username: user for user in demo_users()}
    for number in (1, 2):
        head, trainee = users[f"dept.head{number}"], users[f"trainee{number}"]
        assert trainee.dx_staff_id in recommended
        assert roster[str(trainee.dx_staff_id)].department_code == trainee.dx_department
        assert roster[str(head.dx_staff_id)].is_manager
        assert head.dx_department == trainee.dx_department  # each head sees a trainee of their own
    assert users["dept.head1"].dx_department != users["dept.head2"].dx_department


def test_a_password_is_stored_as_a_salted_scrypt_hash(tmp_path: Path) -> None:
    stored = hash_password("secret-one")
    assert stored != hash_password("secret-one")  # salted
    scheme, n, r, p, salt, digest = stored.split("$")
    assert scheme == "scrypt"

    def unb64(text: str) -> bytes:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

    again = hashlib.scrypt(b"secret-one", salt=unb64(salt), n=int(n), r=int(r), p=int(p), dklen=len(unb64(digest)))
    assert again == unb64(digest)

    write_users(tmp_path / "users.json")
    text = (tmp_path / "users.json").read_text(encoding="utf-8")
    assert DEMO_PASSWORD not in text
    assert all(record["password_hash"].startswith("scrypt$") for record in json.loads(text))
