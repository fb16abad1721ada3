"""Launch dates: loaded once from the data file, then kept by staff in the database."""
import json
from datetime import date
from importlib import resources

from sqlalchemy import select

from portal.extensions import db
from portal.markets.models import MarketLaunch


def launch_groups():
    data = json.loads(
        resources.files("portal.markets").joinpath("data/launches.json").read_text()
    )
    return data["groups"]


def seed_launch_dates():
    """Insert the data file's launch dates for countries not yet in the table."""
    known = set(db.session.scalars(select(MarketLaunch.country)))
    added = 0
    for group in launch_groups():
        for country in group["countries"]:
            if country not in known:
                db.session.add(
                    MarketLaunch(
                        country=country,
                        launch_date=date.fromisoformat(group["launch_date"]),
                        market_group=group["name"],
                    )
                )
                known.add(country)
                added += 1
    return added


def launch_date(country):
    row = db.session.get(MarketLaunch, country)
    return row.launch_date if row else None
