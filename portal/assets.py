"""Where the templates, static files and compiled translation catalogs are.

The source tree keeps them at its top level (``templates/``, ``static/``,
``translations/``); a built wheel carries copies inside the package, under
``portal/_assets/`` (``setup.py`` puts them there and compiles the catalogs), so an
installed portal needs nothing outside its own package.
"""
from pathlib import Path

PACKAGE_ASSETS = Path(__file__).resolve().parent / "_assets"
SOURCE_ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("templates", "static", "translations")


def assets_root():
    """The folder holding ``templates/``, ``static/`` and ``translations/``."""
    if (PACKAGE_ASSETS / "templates").is_dir():
        return PACKAGE_ASSETS
    return SOURCE_ROOT


def is_source_tree():
    """True when running from a checkout, whose catalogs are compiled on demand."""
    return assets_root() == SOURCE_ROOT


def folder(name):
    if name not in FOLDERS:
        raise ValueError(f"no asset folder {name!r}")
    return assets_root() / name
