"""``portal staff add``: password from stdin or a confirmed prompt; bad input changes nothing."""
from sqlalchemy import func, select

from portal.audit.models import AuditEntry
from portal.extensions import db
from portal.staff.accounts import authenticate, find_staff
from portal.staff.models import StaffUser
from tests.access import PASSWORD


def _staff_count():
    return db.session.scalar(select(func.count(StaffUser.id)))


def test_add_with_password_from_stdin(cli):
    result = cli("staff", "add", "Desk@Portal.example", "--role", "admin", "--password-stdin",
                 input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    user = find_staff("desk@portal.example")
    assert user.role == "admin" and user.email == "desk@portal.example"
    assert authenticate("desk@portal.example", PASSWORD) is user
    assert db.session.scalar(select(AuditEntry.action).where(
        AuditEntry.target == "desk@portal.example")) == "staff.add"


def test_add_with_confirmed_prompt(cli):
    result = cli("staff", "add", "sales@portal.example", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert find_staff("sales@portal.example").role == "sales"


def test_prompt_mismatch_then_match(cli):
    result = cli("staff", "add", "s2@portal.example",
                 input=f"{PASSWORD}\nsomething else!!\n{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0
    assert "do not match" in result.output
    assert find_staff("s2@portal.example") is not None


def test_bad_input_is_one_line_and_changes_nothing(cli, sales_user):
    before = _staff_count()
    for args, stdin, message in [
        (("sam.sales@portal.example",), PASSWORD, "already exists"),
        (("new@portal.example",), "short", "at least 12 characters"),
        (("not an email",), PASSWORD, "is not an email address"),
    ]:
        result = cli("staff", "add", *args, "--password-stdin", input=stdin + "\n")
        assert result.exit_code != 0
        assert message in result.output
        assert len(result.output.strip().splitlines()) == 1
    assert cli("staff", "add", "x@portal.example", "--role", "boss",
               "--password-stdin", input=PASSWORD).exit_code != 0
    assert _staff_count() == before
