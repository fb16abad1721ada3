import json

from tests import factories


def test_quote_of_a_simple_contract(app, cli):
    factories.launch("US", "2013-03-19")
    plist = factories.price_list("US", "USD", {("VS-ENT", "basic", 12): "450.00"})
    factories.contract(plist, number="SNS-000001", lines=[("VS-ENT", 2)], end_date="2026-12-31")
    result = cli("quote", "SNS-000001", "--date", "2026-11-22", "--json")
    assert result.exit_code == 0, result.output
    quote = json.loads(result.output)
    assert (quote["contract"], quote["quote_date"], quote["currency"], quote["eligible"]) == (
        "SNS-000001", "2026-11-22", "USD", True)
    [option] = quote["options"]
    # 2 x 450.00 for the twelve months that follow the contract's last day.
    assert (option["term_start"], option["term_end"], option["lapsed_days"]) == (
        "2027-01-01", "2027-12-31", 0)
    assert (option["term_fee"], option["total"], option["within_cap"]) == (
        "900.00", "900.00", True)
