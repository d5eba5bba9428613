"""Billing's layering: imports inside billing form no cycle, tasks import services and never the
reverse, every ledger entry is written in ledger.py and every row lock is taken in lock_objects.py."""
import ast
from pathlib import Path

import billing

BILLING = Path(billing.__file__).parent


def _modules() -> dict[str, ast.Module]:
    """Billing's modules (no migrations), parsed, by dotted name."""
    found = {}
    for path in sorted(BILLING.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        name = ".".join(("billing", *path.relative_to(BILLING).with_suffix("").parts)).removesuffix(".__init__")
        found[name] = ast.parse(path.read_text(), filename=str(path))
    return found


def _imports(name: str, tree: ast.Module, known: set[str]) -> set[str]:
    """The billing modules that `name` imports, at the top or inside a function."""
    package = name if name == "billing" else name.rsplit(".", 1)[0]
    targets = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names)
    return {target for target in targets if target in known and target != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, tree, set(modules)) for name, tree in modules.items()}


def test_billing_imports_form_no_cycle():
    graph, done, path = _graph(), set(), []

    def visit(name: str) -> None:
        assert name not in path, " -> ".join([*path[path.index(name):], name])
        if name in done:
            return
        path.append(name)
        for target in sorted(graph[name]):
            visit(target)
        path.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)
    assert {"billing.ledger", "billing.lock_objects", "billing.accounts"} <= set(graph)
    assert "billing.services" not in graph


def test_tasks_import_services_and_no_billing_module_imports_tasks():
    graph = _graph()
    assert {"billing.alerts", "billing.promos"} <= graph["billing.tasks"]
    assert [name for name, targets in graph.items() if "billing.tasks" in targets] == []


def _sources() -> dict[str, str]:
    return {path.name: path.read_text() for path in BILLING.glob("*.py")}


def test_only_the_ledger_writes_ledger_entries_and_balances():
    for name, text in _sources().items():
        writes = ("LedgerEntry.objects.create", "LedgerEntry.objects.bulk_create", "INSERT INTO billing_ledgerentry",
                  "balance_units +=", "SET balance_units")
        assert name == "ledger.py" or not any(write in text for write in writes), name


def test_only_lock_objects_takes_row_locks():
    for name, text in _sources().items():
        assert name == "lock_objects.py" or ("select_for_update" not in text and "FOR UPDATE" not in text), name
