"""Payment methods offered per country and pay currency, read from the markets data file."""
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True, repr=False)
class PaymentMethod:
    """One method of the markets data file; its code names it within a process (the
    file is read once), which is all its ``repr`` says: pages key kept pieces by it."""

    code: str
    kind: str  # "card" or "offline"
    countries: frozenset | None  # None: everywhere
    excluded: frozenset
    currencies: frozenset | None  # None: every payment currency
    retired: bool = False
    redirect: bool = False

    def offered(self, country, currency):
        if self.retired:
            return False
        if self.countries is not None and country not in self.countries:
            return False
        if country in self.excluded:
            return False
        return self.currencies is None or currency in self.currencies

    def __repr__(self):
        return f"PaymentMethod({self.code!r}, {self.kind!r}, redirect={self.redirect})"


def _expand(codes, regions):
    if codes is None:
        return None
    expanded = set()
    for code in codes:
        expanded.update(regions[code[1:]] if code.startswith("@") else [code])
    return frozenset(expanded)


@cache
def all_methods():
    data = json.loads(
        resources.files("portal.markets").joinpath("data/payment_methods.json").read_text()
    )
    regions = data["regions"]
    return tuple(
        PaymentMethod(
            code=m["code"],
            kind=m["kind"],
            countries=_expand(m["countries"], regions),
            excluded=frozenset(m.get("except", ())),
            currencies=None if m["currencies"] is None else frozenset(m["currencies"]),
            retired=m.get("retired", False),
            redirect=m.get("redirect", False),
        )
        for m in data["methods"]
    )


def methods_for(country, currency):
    """The methods a customer in ``country`` paying in ``currency`` may choose, in table order."""
    return [m for m in all_methods() if m.offered(country, currency)]


def method(code):
    for candidate in all_methods():
        if candidate.code == code:
            return candidate
    raise KeyError(code)
