"""Small state machines: a status is a ``StrEnum`` stored as its string, the database
refuses any other value (a CHECK constraint built from the enum), and every change of
status goes through the machine's one ``move``, which refuses an illegal one."""
import re
from enum import StrEnum

from sqlalchemy import CheckConstraint, String, literal_column

from portal.errors import PortalError


class IllegalTransition(PortalError):
    """A status change the state machine does not allow."""


class StateMachine:
    """The legal moves between the values of ``states`` (a StrEnum): ``moves`` maps each
    value to the values it may change to."""

    def __init__(self, name, states: type[StrEnum], moves, *, attribute="status"):
        missing = set(states) - set(moves)
        if missing:
            raise ValueError(f"{name}: no moves given for {sorted(missing)}")
        self.name = name
        self.states = states
        self.moves = {states(state): frozenset(states(to) for to in targets)
                      for state, targets in moves.items()}
        self.attribute = attribute

    def allows(self, current, new):
        return self.states(new) in self.moves[self.states(current)]

    def move(self, row, new, *, label=None):
        """Set ``row``'s status to ``new``; IllegalTransition when the machine forbids it.
        ``label`` names the row in the error (its reference, its id)."""
        current = getattr(row, self.attribute)
        try:
            allowed = self.allows(current, new)
        except ValueError:  # a status the machine does not know
            allowed = False
        if not allowed:
            raise IllegalTransition(
                f"{self.name} {label or getattr(row, 'id', '')}: {current} -> {new}")
        setattr(row, self.attribute, self.states(new))

    def check_constraint(self):
        """The CHECK constraint that keeps the column to the machine's values."""
        values = ", ".join(f"'{state.value}'" for state in self.states)
        return CheckConstraint(f"{self.attribute} in ({values})", name=self.attribute)


STATE_NAME = re.compile(r"[a-z][a-z_]*")


def one_of(column, states):
    """SQL: ``column IN ('a', 'b')`` with the states written into the statement: they are
    the code's own names, never input, so there is nothing to bind, no list to expand on
    every execution, and the statement stays short enough for the driver to keep."""
    names = [str(state) for state in states]
    for name in names:
        if not STATE_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a state name")
    return column.in_([literal_column(f"'{name}'", String) for name in names])
