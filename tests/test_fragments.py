"""Page pieces kept between requests (``fragment`` in portal/web.py): a piece is rendered
again whenever anything it shows differs, per page locale, and the store stays bounded."""
from decimal import Decimal

from flask import Flask

from portal.web import install_fragment_cache

TEMPLATE = '{% call fragment("piece", value) %}{{ value }} #{{ render() }}{% endcall %}'


def _renderer(size=8):
    app = Flask(__name__)
    install_fragment_cache(app, size=size)
    template = app.jinja_env.from_string(TEMPLATE)
    renders = []

    def render(value, locale="en"):
        with app.test_request_context("/"):
            return template.render(value=value, page_locale=locale,
                                   render=lambda: renders.append(value) or len(renders))

    return app, render, renders


def test_a_piece_is_rendered_once_for_the_same_values_and_locale():
    _, render, renders = _renderer()
    assert render(1) == "1 #1"
    assert render(1) == "1 #1"  # kept: the body did not run again
    assert render(2) == "2 #2"
    assert render(1, locale="de") == "1 #3"
    assert render(Decimal("1.0")) == "1.0 #4"
    assert render(Decimal("1.00")) == "1.00 #5"  # equal numbers, written differently
    assert render(Decimal("1.0")) == "1.0 #4"
    assert len(renders) == 5


def test_the_store_keeps_the_most_recently_used_pieces():
    app, render, renders = _renderer(size=2)
    render("a"), render("b"), render("a"), render("c")  # "b" is the least recently used
    assert len(app.extensions["page_fragments"]) == 2
    assert render("a") == "a #1"
    assert render("b") == "b #4"  # rendered again
