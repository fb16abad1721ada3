"""Running the same work in several threads at once, each with its own app context and
database session, as concurrent requests or command runs would."""
import threading

from portal.extensions import db


def run_together(app, work, count=2, timeout=60):
    """Run ``work()`` in ``count`` threads released at the same moment; each commits what
    its work leaves pending. Returns the results; fails if any thread raised."""
    barrier = threading.Barrier(count)
    results, errors = [], []

    def run():
        with app.app_context():
            try:
                barrier.wait(timeout=10)
                results.append(work())
                db.session.commit()
            except Exception as error:  # noqa: BLE001  reported by the assertion below
                errors.append(error)
                db.session.rollback()
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not errors, errors
    return results
