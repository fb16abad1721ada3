from datetime import date

from tests import factories


def test_quote_of_a_simple_contract(app, cli):
    factories.launch("US", "2013-03-19")
    plist = factories.price_list("US", "USD", {("VS-ENT", "basic", 12): "450.00"})
    factories.contract(plist, number="SNS-000001", lines=[("VS-ENT", 2)], end_date="2026-12-31")
    result = cli("quote", "SNS-000001", "--date", "2026-11-22", "--json")
    assert result.exit_code == 0, result.output
    assert '"total": "900.00"' in result.output
    assert date(2026, 12, 31)
