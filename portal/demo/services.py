"""The demo data set: price lists, today's rates and a dozen contracts in every state the
portal handles, dated relative to the day it is loaded."""
from datetime import timedelta
from decimal import Decimal
from importlib import resources

from portal.imports import services as imports
from portal.markets.services import seed_launch_dates
from portal.rates.services import upsert_rates
from portal.renewals.rules import Rate

#: Plausible units per 1 EUR, stored as today's rates so every currency can be paid in.
DEMO_RATES = {
    "USD": "1.0861", "GBP": "0.8412", "JPY": "162.35", "KRW": "1459.20", "BRL": "6.0692",
    "CHF": "0.9378", "SEK": "11.2140", "NOK": "11.6895", "DKK": "7.4603", "PLN": "4.2580",
    "CZK": "25.143", "HUF": "402.15", "AUD": "1.6520", "NZD": "1.8231", "CAD": "1.5012",
    "CNY": "7.8244", "HKD": "8.4523", "SGD": "1.4501", "INR": "91.245", "MYR": "4.8902",
    "THB": "37.512", "TWD": "34.871", "MXN": "19.8722", "ZAR": "19.7411", "RUB": "98.150",
    "TRY": "37.2240",
}

PARTNER = "NORTHWIND-RESELL"


def _contract(number, days_to_end, country, price_list, level, lines, *, account,
              email, language=None, channel="direct", partner=None, term=12, status="active",
              region=None, today):
    end = today + timedelta(days=days_to_end)
    return {
        "number": number, "channel": channel, "partner": partner,
        "account": {"name": account, "country": country, "region": region},
        "contacts": [{"name": account.split()[0] + " Renewals", "email": email,
                      "language": language, "primary": True}],
        "price_list": price_list, "service_level": level, "term_months": term,
        "start_date": (end - timedelta(days=364)).isoformat(), "end_date": end.isoformat(),
        "status": status,
        "lines": [{"product_code": code, "quantity": qty} for code, qty in lines],
    }


def demo_contracts(today):
    c = _contract
    return [
        c("SNS-100001", 45, "US", "US", "basic", [("VS-ENT", 2), ("BK-AGT", 5)],
          account="Contoso Inc.", email="it@contoso.example", today=today),
        c("SNS-100002", 25, "DE", "EMEA-EUR", "production", [("VS-ENT", 3)],
          account="Muster GmbH", email="eva@muster.example", language="de", today=today),
        c("SNS-100003", -20, "GB", "UK", "basic", [("VS-ENT", 2), ("BK-AGT", 4)],
          account="Albion Data Ltd", email="ops@albion.example", today=today),
        c("SNS-100004", 59, "JP", "JP", "basic", [("VS-ENT", 2), ("BK-AGT", 3)],
          account="Sakura Systems KK", email="renew@sakura.example", language="ja", today=today),
        c("SNS-100005", 14, "KR", "KR", "production", [("VS-ENT", 2)],
          account="Hanul Tech", email="admin@hanul.example", language="ko", today=today),
        c("SNS-100006", 30, "BR", "BR", "basic", [("VS-ENT", 1), ("BK-AGT", 2)],
          account="Ipanema Software Ltda", email="ti@ipanema.example", language="pt_BR",
          today=today),
        c("SNS-100007", 40, "US", "US", "basic", [("VS-ENT", 1)], channel="oem",
          account="Fabrikam OEM Devices", email="buy@fabrikam.example", today=today),
        c("SNS-100008", 50, "FR", "EMEA-EUR", "basic", [("VS-ENT", 2)], channel="partner",
          partner=PARTNER, account="Durand SARL", email="compta@durand.example",
          language="fr", today=today),
        c("SNS-100009", 35, "US", "US", "production", [("VS-ENT", 6), ("MON-CLD", 4)],
          account="Globex Corporation", email="licensing@globex.example", today=today),
        c("SNS-100010", 60, "US", "US", "business_critical", [("VS-ENT", 1)],
          account="Initech LLC", email="it@initech.example", today=today),
        c("SNS-100011", -400, "US", "US", "basic", [("VS-ENT", 1)],
          account="Umbrella Labs", email="it@umbrella.example", today=today),
        c("SNS-100012", 20, "NL", "EMEA-EUR", "basic", [("VS-ENT", 1), ("BK-AGT", 2)],
          account="Van Dijk BV", email="inkoop@vandijk.example", language="nl", today=today),
        c("SNS-100013", 28, "LV", "BALTIC-LVL", "basic", [("VS-ENT", 1)],
          account="Daugava SIA", email="it@daugava.example", today=today),
        c("SNS-100014", 75, "CA", "US", "basic", [("VS-ENT", 1)], region="CA-QC",
          account="Laurentide Inc.", email="ti@laurentide.example", language="fr",
          today=today),
        # Contoso's other contracts: due with SNS-100001, renewable in one order with it.
        c("SNS-100015", 52, "US", "US", "production", [("BK-AGT", 8)],
          account="Contoso Inc.", email="it@contoso.example", today=today),
        c("SNS-100016", -10, "US", "US", "basic", [("MON-CLD", 3)],
          account="Contoso Inc.", email="it@contoso.example", today=today),
        c("SNS-100017", 33, "US", "US", "production", [("VS-ENT", 40)],
          account="Contoso Inc.", email="it@contoso.example", today=today),
    ]


def load_demo(today):
    """Load (or refresh) the demo set; returns the contract numbers."""
    seed_launch_dates()
    path = resources.files("portal.demo").joinpath("data/pricelists.csv")
    with resources.as_file(path) as csv_path:
        imports.import_pricelists(str(csv_path))
    upsert_rates([Rate(c, Decimal(v), today) for c, v in DEMO_RATES.items()], source="demo")
    contracts = demo_contracts(today)
    imports.upsert_contracts(contracts, "demo contracts")
    return [c["number"] for c in contracts]
