"""A thin adapter over certbot's `acme` package. Imports nothing from Django.

The rest of the panel talks to a CA only through `AcmeClient`, which takes and
returns plain values (URLs, PEM text, small dataclasses), so the order state
machine can persist everything it needs to resume after a crash.
"""

from certs.acme.client import AcmeClient, AcmeError, AuthorizationState, ChallengeState, OrderState
from certs.acme.keys import generate_account_key, generate_private_key, make_csr

__all__ = [
    "AcmeClient",
    "AcmeError",
    "AuthorizationState",
    "ChallengeState",
    "OrderState",
    "generate_account_key",
    "generate_private_key",
    "make_csr",
]
