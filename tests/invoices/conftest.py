from tests.selfservice.conftest import (  # noqa: F401  (fixtures shared with self-service)
    card,
    card_app,
    make_checkout,
    renewed_by_card,
    renewed_offline,
    stripe_client,
    stripe_emulator,
    today,
    web,
)
from tests.access import (  # noqa: F401  (staff fixtures)
    _cheap_password_hashing,
    sales,
    sales_user,
)
