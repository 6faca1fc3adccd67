"""Site services shared by the UI and the API.

Names have one owner. A name belongs to one site (SiteDomain is unique), and a registrable
domain (example.com, example.co.uk) to one user: a user may add names only under registrable
domains no other user's site uses, so nobody can take a customer's domain before the customer
adds it. An administrator is not restricted, and may share a registrable domain on the
Settings page so that every user may add names under it."""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from certs import site_removal
from panel.deployment import dispatch
from panel.models import PanelHttps, PanelSettings, Site, SiteDomain
from panel.security import homes, quotas
from panel.toolkit import access, outbound, task_queue, validation


def clean_site_fields(domains, root, proxy_pass, exclude_pk=None, actor=None, owner=None,
                      confirm_system_root=False):
    """Validated (domains, root, proxy_pass); raises ValidationError keyed by field.

    `actor` is who enters the values; `owner` whose site it is (the actor unless an admin edits
    another's site). Neither a root nor an upstream: a static site in <owner's home>/<first domain>/.
    An admin may name any directory as the document root and add any free name; a user (or no
    actor) a directory inside their home or one granted to them (panel.security.homes) that no
    other owner's site uses, and new names only under registrable domains no other owner uses.
    Every root obeys panel.security.homes.check_document_root: an administrator's outside the
    web directories only with `confirm_system_root` (or as the site already had it)."""
    errors = {}
    admin = actor is not None and access.is_admin(actor)
    try:
        domains = _clean_domains(domains, actor, admin, exclude_pk)
    except ValidationError as exc:
        errors["domains"] = exc.messages
    root, proxy_pass = (root or "").strip(), (proxy_pass or "").strip()
    owner = owner or actor
    if not root and not proxy_pass and owner is not None and "domains" not in errors:
        root = homes.default_document_root(owner, domains[0])
    if bool(root) == bool(proxy_pass):
        errors["root"] = [_("Give either a document root or a reverse-proxy upstream (proxy_pass), not both.")]
    elif root:
        try:
            root = validation.validate_document_root(root, homes.document_roots_of(actor) if actor else [])
            if not admin:
                validation.check_root_not_shared(root, _roots_of_other_owners(actor, exclude_pk))
            kept = exclude_pk is not None and Site.objects.filter(pk=exclude_pk, root=root).exists()
            homes.check_document_root(root, owner, confirmed=confirm_system_root or kept)
        except ValidationError as exc:
            errors["root"] = exc.error_list  # with their codes: the form offers the confirmation
    else:
        try:
            proxy_pass = validation.validate_upstream(proxy_pass)
            if not admin:
                outbound.check_url(proxy_pass)  # nginx connects, not the panel: checked now and at each apply
        except ValidationError as exc:
            errors["proxy_pass"] = exc.messages
        except outbound.OutboundRefused as exc:
            errors["proxy_pass"] = [str(exc)]
    if errors:
        raise ValidationError(errors)
    return domains, root, proxy_pass


def _clean_domains(domains, actor, admin, exclude_pk):
    """The names, normalised, if `actor` may have them on the site `exclude_pk` (None: a new
    site); ValidationError with the first reason otherwise."""
    domains = validation.normalize_domain_list(domains)
    taken = _domains_in_use(domains, exclude_pk)
    if taken:
        raise ValidationError(_("Already used by another site: %(names)s") % {"names": _shown(taken)})
    panel_domain = PanelHttps.objects.filter(pk=1).values_list("domain", flat=True).first()
    if panel_domain and panel_domain in domains:
        # Its HTTP-01 and its port-80 server are the panel's (panel.hosting.panel_domain).
        raise ValidationError(_("%(name)s is the panel's own domain.") % {"name": _shown([panel_domain])})
    too_wide = [] if admin else [name for name in domains if validation.above_registrable_domains(name)]
    if too_wide:
        raise ValidationError(_("%(names)s would take in the names of every owner under it: only an administrator "
                                "may add such a name.") % {"names": _shown(too_wide)})
    claimed = [] if admin else _claimed_by_others(domains, actor, exclude_pk)
    if claimed:
        raise ValidationError(ngettext(
            "%(names)s belongs to another user: names under it can only be added by its owner. An "
            "administrator can share it on the Settings page.",
            "%(names)s belong to other users: names under them can only be added by their owners. An "
            "administrator can share them on the Settings page.", len(claimed)) % {"names": _shown(claimed)})
    return domains


def _shown(names):
    """Names in a message, as the user typed them: in Unicode, not punycode."""
    return ", ".join(map(validation.unicode_domain, names))


def _roots_of_other_owners(actor, exclude_pk):
    sites = Site.objects.exclude(root="").exclude(pk=exclude_pk)
    if actor is not None:
        sites = sites.exclude(owner=actor)
    return sites.values_list("root", flat=True)


def _domains_in_use(domains, exclude_pk):
    taken = SiteDomain.objects.filter(name__in=domains).exclude(site_id=exclude_pk)
    return sorted(taken.values_list("name", flat=True))


def _claimed_by_others(domains, actor, exclude_pk):
    """The registrable domains of the names being added (not already on the site) that another
    owner's site has a name under, unless an administrator shared them; sorted."""
    current = set(SiteDomain.objects.filter(site_id=exclude_pk).values_list("name", flat=True)) if exclude_pk else set()
    trees = {validation.registrable_domain(name) for name in domains if name not in current}
    trees -= PanelSettings.load().shared_name_set()
    if not trees:
        return []
    under = Q()
    for tree in trees:
        under |= Q(name=tree) | Q(name__endswith="." + tree)
    others = SiteDomain.objects.filter(under).exclude(site_id=exclude_pk)
    if actor is not None:
        others = others.exclude(site__owner=actor)
    # A longer public suffix can sit under a tree (s3.amazonaws.com under amazonaws.com): compare trees.
    return sorted(trees & {validation.registrable_domain(name) for name in others.values_list("name", flat=True)})


def clean_shared_names(text):
    """The Settings page's shared registrable domains, normalised one per line; ValidationError
    naming a line that is not a registrable domain."""
    names = []
    for line in (text or "").split():
        name = validation.normalize_domain(line, allow_wildcard=False)
        if validation.registrable_domain(name) != name:
            raise ValidationError(_("“%(name)s” is not a registrable domain: share %(tree)s instead.")
                                  % {"name": line, "tree": validation.registrable_domain(name)})
        if name not in names:
            names.append(name)
    return "\n".join(names)


def save_site(site: Site):
    """Store the site and queue its nginx config. A new site must fit its owner's quota."""
    task_queue.require_reachable()
    with transaction.atomic():
        if site.pk is None:
            quotas.check_room_for_site(site.owner)
        homes.prepare_document_root(site.owner, site.root, site.domains[0])
        site.config_status = Site.ConfigStatus.PENDING
        site.save()
        SiteDomain.objects.filter(site=site).exclude(name__in=site.domains).delete()
        existing = set(SiteDomain.objects.filter(site=site).values_list("name", flat=True))
        try:
            with transaction.atomic():
                SiteDomain.objects.bulk_create(
                    [SiteDomain(site=site, name=n) for n in site.domains if n not in existing]
                )
        except IntegrityError:
            raise ValidationError({"domains": [_("One of these names was just taken by another site.")]})
        dispatch.queue_site_apply(site.pk)
    return site


def names_added(site: Site, names, actor):
    """The site's names with `names` added, checked as an edit of the site by `actor` checks
    names (in use, claimed by another owner, too wide); ValidationError otherwise."""
    wanted = site.domains + [name for name in names if name not in site.domains]
    return _clean_domains(wanted, actor, actor is not None and access.is_admin(actor), site.pk)


def add_names(site: Site, names, actor):
    """Add names to the site (the SSL tab's "also *.<domain>" tick) and queue its config."""
    site.domains = names_added(site, names, actor)
    return save_site(site)


def delete_site(site: Site, certificates=site_removal.KEEP):
    """Delete the site and queue the removal of its vhost. Its owner's certificates that no other
    site of the owner uses are kept renewing, stopped, or revoked at the CA and stopped
    (`certificates`); returns the versions revoked. The CA is asked only once the site is
    deleted: revoking is the one step that cannot be undone, so if the CA refuses
    (site_removal.RevocationFailed) no site serves a revoked certificate; those left are no
    longer renewed, and can be revoked from their own pages."""
    site_id = site.pk
    task_queue.require_reachable()
    alone, _shared, _foreign = site_removal.certificates_of(site)
    with transaction.atomic():
        site_removal.release(alone, certificates)
        site.delete()
        dispatch.queue_site_removal(site_id)
    return site_removal.revoke_all(alone) if certificates == site_removal.REVOKE else []
