"""A home per user: <settings.HOME_ROOT>/<name>/, created by the panel. A user's document roots
(by default <home>/<domain>/) and install paths lie inside it, or inside a directory an
administrator granted them (panel.models.RootGrant); nowhere else. Administrators keep their
freedom: a document root anywhere, install paths below settings.INSTALL_ROOTS or their home.

The validators (panel.toolkit.validation.validate_path_within) take the roots computed here.
"""

import logging
import re
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.html import escape
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from certs.models import InstallTarget
from panel.models import RootGrant, Site
from panel.toolkit import files, validation

log = logging.getLogger(__name__)

# A username that is a plain file name is the home's name as it is. Anything else (".", "..",
# a leading dot, "_" or "-", a "/", spaces, non-ASCII letters, over 64 characters) gets "_u<id>",
# which no plain name can be, since a plain name starts with a letter or digit.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")
HOME_MODE = 0o755  # nginx (another system user) reads the sites below it


def directory_name(username, user_id) -> str:
    if _PLAIN_NAME.fullmatch(username):
        return username
    return f"_u{user_id}"


def home_of(user) -> Path:
    return Path(settings.HOME_ROOT) / directory_name(user.get_username(), user.pk)


def ensure_home(user) -> Path:
    """The user's home, created if it is not there yet. Raises OSError."""
    home = home_of(user)
    if not home.is_dir():
        home.mkdir(mode=HOME_MODE, parents=True, exist_ok=True)
        home.chmod(HOME_MODE)  # whatever the process's umask
    return home


def granted_roots(user) -> list[Path]:
    return [Path(path) for path in RootGrant.objects.filter(user=user).values_list("path", flat=True)]


def own_roots(user) -> list[Path]:
    """The user's home and the directories granted to them."""
    return [home_of(user), *granted_roots(user)]


def _is_administrator(user):
    # The role, not access.is_admin: a deactivated administrator's certificates still renew, and
    # their install targets must keep working.
    return user.is_superuser


def document_roots_of(user):
    """Where `user`'s sites may keep their files: anywhere for an administrator."""
    return validation.ANYWHERE if _is_administrator(user) else own_roots(user)


def install_roots_of(user) -> list[Path]:
    """Where `user`'s install targets may write; an administrator also below settings.INSTALL_ROOTS.
    The home is created if missing: it is the one directory a new user's targets can name at once."""
    try:
        ensure_home(user)
    except OSError as exc:  # validate_target_path then says the directory does not exist
        log.warning("could not create the home of user %s: %s", user.pk, exc)
    roots = own_roots(user)
    if _is_administrator(user):
        roots += settings.INSTALL_ROOTS
    return roots


def default_document_root(user, primary_domain) -> str:
    """<home>/<domain>; a wildcard's directory is _wildcard.<domain> (“_” is in no host name)."""
    name = "_wildcard." + primary_domain[2:] if primary_domain.startswith("*.") else primary_domain
    return str(home_of(user) / name)


CONFIRM_SYSTEM_ROOT_LABEL = gettext_lazy(
    "Serve this directory although it is outside the homes and web directories")


def web_directories(owner) -> list[Path]:
    """Where sites are meant to live: the homes, the configured web roots, the owner's grants.
    An administrator's root elsewhere (/usr, /opt, /var/lib) needs a confirmation."""
    return [Path(settings.HOME_ROOT), *map(Path, settings.ALLOWED_ROOTS), *granted_roots(owner)]


def creatable_roots(owner) -> list[Path]:
    """Where a document root that does not exist yet is created for `owner`'s site (with a
    start page): their home and grants; an administrator's also below settings.ALLOWED_ROOTS."""
    roots = own_roots(owner)
    return roots + list(map(Path, settings.ALLOWED_ROOTS)) if _is_administrator(owner) else roots


def check_document_root(root, owner, confirmed):
    """The rules every document root obeys, from the form, the API or anywhere else, once it
    passed validation.validate_document_root: never a system directory or the panel's data
    (also through a link); an existing directory or one the panel will create; outside the
    web directories only when `confirmed` (an administrator's tick). ValidationError if not."""
    validation.check_root_serves_no_secrets(root)
    path = Path(root)
    if path.exists() and not path.is_dir():
        raise ValidationError(_("%(dir)s is a file, not a directory: give the directory that holds "
                                "the site's files.") % {"dir": root})
    creatable, web = creatable_roots(owner), web_directories(owner)
    if not path.exists() and not validation.is_under(path, creatable):
        raise ValidationError(_("%(dir)s does not exist, and the panel creates a document root "
                                "only inside %(where)s. Create the directory on the server first, "
                                "or choose one there.")
                              % {"dir": root, "where": ", ".join(map(str, creatable))})
    if not confirmed and not validation.is_under(path, web):
        raise ValidationError(
            _("%(dir)s lies outside the users' homes and the web directories (%(roots)s): "
              "nginx will serve every file in it to anyone. If that is what you want, confirm "
              "it (“%(confirm)s”; confirm_system_root in the API).")
            % {"dir": root, "roots": ", ".join(map(str, web)),
               "confirm": CONFIRM_SYSTEM_ROOT_LABEL},
            code="confirm_system_root")


def prepare_document_root(owner, root, primary_domain):
    """Create a document root that does not exist yet inside creatable_roots(owner), with a
    default index.html (as other hosting panels do), so the new site answers at once.
    Raises ValidationError keyed by "root"."""
    path = Path(root)
    if not root or path.exists() or not validation.is_under(path, creatable_roots(owner)):
        return
    try:
        ensure_home(owner)
        path.mkdir(mode=HOME_MODE, parents=True, exist_ok=True)
        path.chmod(HOME_MODE)
        files.write_atomic(path / "index.html", _default_page(primary_domain), mode=0o644)
    except OSError as exc:
        raise ValidationError({"root": [_("The directory %(dir)s could not be created (%(reason)s); ask an "
                                          "administrator to check the home directories.")
                                        % {"dir": path, "reason": exc.strerror or exc}]})


def _default_page(domain):
    # Public: it names no path and no account, only the site.
    title = escape(domain)
    text = escape(_("This site has been created. Replace this page with your own content."))
    return (f'<!doctype html>\n<html>\n<head>\n<meta charset="utf-8">\n<title>{title}</title>\n</head>\n'
            f"<body>\n<h1>{title}</h1>\n<p>{text}</p>\n</body>\n</html>\n")


# --- grants, set by administrators on the user page


def grantable_roots() -> list[Path]:
    """An administrator grants directories from below these."""
    return [*settings.ALLOWED_ROOTS, *settings.INSTALL_ROOTS]


def clean_grants(paths) -> list[str]:
    """Validated, distinct directories to grant; raises ValidationError naming the first bad one."""
    cleaned = []
    for value in paths:
        try:
            path = str(validation.validate_path_under(value, grantable_roots(), _("granted directory")))
        except ValidationError as exc:
            raise ValidationError(f"{value}: {' '.join(exc.messages)}")
        if overlaps_homes(Path(path)):
            raise ValidationError(_("%(path)s: it holds or lies inside the users' homes (%(homes)s), other users' "
                                    "files included: grant a directory beside them.")
                                  % {"path": value, "homes": settings.HOME_ROOT})
        if path not in cleaned:
            cleaned.append(path)
    return sorted(cleaned)


def overlaps_homes(path: Path) -> bool:
    """Is `path` the homes' directory, inside it, or above it: no grant may be (every user's
    home is there)."""
    homes = Path(settings.HOME_ROOT).resolve()
    return path == homes or homes in path.parents or path in homes.parents


def set_grants(user, paths):
    """Make `paths` (clean_grants) exactly the user's granted directories."""
    with transaction.atomic():
        RootGrant.objects.filter(user=user).exclude(path__in=paths).delete()
        have = set(RootGrant.objects.filter(user=user).values_list("path", flat=True))
        RootGrant.objects.bulk_create([RootGrant(user=user, path=path) for path in paths if path not in have])


# --- paths stored before homes existed (manage.py check_homes, migration panel 0007)


def paths_outside_homes():
    """[(kind, object, path, owner, granted)] for every site root and install path of a
    non-administrator that lies outside their home: `granted` says whether a grant covers it
    (it keeps working) or not (the next edit is refused, and an install target fails)."""
    rows = []
    for site in Site.objects.exclude(root="").select_related("owner").order_by("id"):
        rows += _outside(site.owner, "site", site, [site.root])
    for target in InstallTarget.objects.select_related("owner").order_by("id"):
        rows += _outside(target.owner, "install target", target, list(target.paths().values()))
    return rows


def _outside(owner, kind, obj, paths):
    if _is_administrator(owner):
        return []
    home, grants = home_of(owner), granted_roots(owner)
    return [(kind, obj, path, owner, validation.is_under(Path(path), grants)) for path in paths
            if not validation.is_under(Path(path), [home])]


def grant_for(kind, path) -> str:
    """The directory to grant so that `path` keeps working: a site's root itself, an install file's folder."""
    return path if kind == "site" else str(Path(path).parent)
