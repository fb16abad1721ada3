from tests.access import *  # noqa: F401,F403 - the shared staff and partner fixtures
