"""Build step of the wheel: copy the top-level templates and static files into the
package and compile the translation catalogs, so an installed portal is self-contained.

Everything else about the package is declared in pyproject.toml.
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
COPIED = ("templates", "static")


def compile_catalogs(source, target):
    """``translations/<locale>/LC_MESSAGES/messages.po`` -> ``messages.mo`` in ``target``."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for po_path in sorted(source.glob("*/LC_MESSAGES/messages.po")):
        locale = po_path.parts[-3]
        with po_path.open("rb") as handle:
            catalog = read_po(handle, locale=locale)
        mo_path = target / locale / "LC_MESSAGES" / "messages.mo"
        mo_path.parent.mkdir(parents=True, exist_ok=True)
        with mo_path.open("wb") as out:
            write_mo(out, catalog, use_fuzzy=False)


class BuildWithAssets(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the checkout's own folders
        target = Path(self.build_lib) / "portal" / "_assets"
        for name in COPIED:
            shutil.copytree(HERE / name, target / name, dirs_exist_ok=True)
        compile_catalogs(HERE / "translations", target / "translations")


setup(cmdclass={"build_py": BuildWithAssets})
