"""The layers of docs/architecture.md hold: the contract in .importlinter is kept, every
module has its place in it, no portal import sits inside a function (where it would
hide a cycle) and no module uses a private name of another package. Each check is also
shown to fail on a bad import."""
import ast
import logging
from pathlib import Path

import grimp
import pytest
from importlinter import api
from importlinter.cli import lint_imports
from importlinter.contracts.layers import LayersContract

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / ".importlinter"
PORTAL = ROOT / "portal"


def module_name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package(module):
    """What "another package" means: portal.orders for portal.orders.services, and each
    top-level module (portal.money) for itself."""
    return ".".join(module.split(".")[:2])


def source_files():
    return sorted(path for path in PORTAL.rglob("*.py") if "migrations" not in path.parts)


@pytest.fixture(scope="module")
def configuration():
    return api.read_configuration(str(CONFIG))


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph("portal", cache_dir=None)


def layers_contract(configuration):
    (options,) = configuration["contracts_options"]
    return LayersContract(name=options["name"], session_options=configuration["session_options"],
                          contract_options=options)


def layered_modules(configuration):
    (options,) = configuration["contracts_options"]
    return {name.strip().strip("()") for line in options["layers"]
            for name in line.replace(":", "|").split("|")}


def test_lint_imports_keeps_the_contract():
    # The command sets up its logging with dictConfig, which disables every logger that
    # exists already (the portal's among them); later tests in this process need them.
    loggers = [logger for logger in logging.Logger.manager.loggerDict.values()
               if isinstance(logger, logging.Logger) and not logger.disabled]
    try:
        assert lint_imports(config_filename=str(CONFIG), no_cache=True, no_logo=True) == 0
    finally:
        for logger in loggers:
            logger.disabled = False


def test_the_contract_holds_on_the_code(configuration, graph):
    assert layers_contract(configuration).check(graph, verbose=False).kept


@pytest.mark.parametrize("importer, imported", [
    ("portal.money", "portal.orders.services"),  # a leaf reaching up
    ("portal.orders.refunds", "portal.payments.claims"),  # order services into payments
    ("portal.payments.webhooks", "portal.notices.services"),  # independent siblings
    ("portal.payments.cards", "portal.notices.services"),  # payments reaching the notices
    ("portal.payments.claims", "portal.payments.cards"),  # a claim reaching up to settling
    ("portal.payments.webhooks", "portal.payments.reconciliation"),  # independent siblings
    ("portal.renewals.rules", "portal.extensions"),  # pure rules into the database
    ("portal.mail.outbox", "portal"),  # up through create_app to every page
])
def test_a_bad_import_breaks_the_contract(configuration, importer, imported):
    graph = grimp.build_graph("portal", cache_dir=None)
    graph.add_import(importer=importer, imported=imported, line_number=1, line_contents="")
    assert not layers_contract(configuration).check(graph, verbose=False).kept


def test_every_module_has_a_layer(configuration, graph):
    """A new module is placed in .importlinter (and so in docs/architecture.md); only the
    root package and package modules that import nothing are outside the layers."""
    layered = layered_modules(configuration)
    unplaced = sorted(
        module for module in graph.modules
        if module != "portal"
        and not any(module == name or module.startswith(name + ".") for name in layered)
        and graph.find_modules_directly_imported_by(module)
    )
    assert unplaced == []
    assert layered <= set(graph.modules)  # no stale names


def import_problems(source, module):
    """``[(line, text)]``: portal imports inside a function, and private names of another
    package, imported or read as an attribute of an imported module."""
    tree = ast.parse(source)
    problems, modules = [], {}
    for function in ast.walk(tree):
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(function):
                for name in imported_portal_names(node, module):
                    problems.append((node.lineno, f"import of {name} inside {function.name}()"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = resolved(node, module)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                if not base.startswith("portal"):
                    continue
                if is_module(full):
                    modules[alias.asname or alias.name] = full
                elif private(alias.name) and package(base) != package(module):
                    problems.append((node.lineno, f"private name {full}"))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("portal") and alias.asname:
                    modules[alias.asname] = alias.name
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and private(node.attr) and node.value.id in modules
                and package(modules[node.value.id]) != package(module)):
            problems.append((node.lineno, f"private name {modules[node.value.id]}.{node.attr}"))
    return problems


def is_module(name):
    path = PORTAL.parent / Path(*name.split("."))
    return path.with_suffix(".py").is_file() or path.is_dir()


def private(name):
    return name.startswith("_") and not name.startswith("__")


def resolved(node, module):
    if not node.level:
        return node.module or ""
    parts = module.split(".")[: -node.level]
    return ".".join(parts + ([node.module] if node.module else []))


def imported_portal_names(node, module):
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name.startswith("portal")]
    if isinstance(node, ast.ImportFrom) and resolved(node, module).startswith("portal"):
        return [resolved(node, module)]
    return []


def test_no_import_inside_a_function_and_no_private_name_across_packages():
    found = {module_name(path): import_problems(path.read_text(), module_name(path))
             for path in source_files()}
    assert {module: problems for module, problems in found.items() if problems} == {}


def test_the_import_check_finds_what_it_forbids():
    source = (
        "from portal.orders.services import _option, open_order\n"
        "from portal.autorenew import services as autorenew\n"
        "from portal.checkout import _private_helper\n"
        "def charge():\n"
        "    from portal.payments.cards import settle\n"
        "    return autorenew._list_price, autorenew.turn_off\n"
    )
    problems = [text for _line, text in import_problems(source, "portal.notices.services")]
    assert sorted(problems) == sorted([
        "private name portal.orders.services._option",
        "private name portal.checkout._private_helper",
        "import of portal.payments.cards inside charge()",
        "private name portal.autorenew.services._list_price",
    ])
    # Within one package a private name is the package's own business.
    assert import_problems("from portal.notices.models import _x\n", "portal.notices.services") == []
