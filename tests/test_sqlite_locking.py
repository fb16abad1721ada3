"""SQLite (the embedded default) under concurrent requests: a transaction that reads and
then writes must wait for another writer, never fail with "database is locked" (a
deferred transaction cannot upgrade its read lock while another connection writes)."""
import threading
import time

from sqlalchemy import create_engine, text

import portal.extensions  # noqa: F401  (registers the SQLite connection and begin hooks)


def test_read_then_write_transactions_wait_for_each_other(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'lock.db'}")
    with engine.begin() as connection:
        connection.execute(text("create table counter (n integer not null)"))
        connection.execute(text("insert into counter values (0)"))
    errors, start = [], threading.Barrier(4)

    def bump():
        try:
            start.wait()
            with engine.begin() as connection:
                n = connection.execute(text("select n from counter")).scalar_one()
                time.sleep(0.05)  # the other transactions read meanwhile
                connection.execute(text("update counter set n = :n"), {"n": n + 1})
        except Exception as error:  # noqa: BLE001  (the test collects any failure)
            errors.append(error)

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    with engine.connect() as connection:
        assert connection.execute(text("select n from counter")).scalar_one() == 4, "lost update"
    engine.dispose()
