"""Which names a user may have a certificate for: the one rule, used when a certificate is
requested (certs.certificates) and whenever an order starts (certs.orders)."""

from certs.models import ChallengeType
from panel.models import SiteDomain
from panel.toolkit import access


def names_not_on_sites(owner, names, challenge) -> list[str]:
    """The names `owner` may not validate with `challenge`, in their order; [] when all may be.

    With HTTP-01 the panel's challenge directory answers for every name on this server, so a
    user may only have names of their own sites: anything else would let one customer obtain
    a certificate (and key) for another's domain. DNS-01 proves control of the zone itself;
    the modes for servers the panel does not manage are for administrators, who may name any."""
    if ChallengeType(challenge) != ChallengeType.HTTP01 or access.is_admin(owner):
        return []
    owned = set(SiteDomain.objects.filter(site__owner=owner, name__in=names).values_list("name", flat=True))
    return [name for name in names if name not in owned]
