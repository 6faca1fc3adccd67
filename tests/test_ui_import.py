"""The admin page "Import from acme.sh / certbot": an uploaded archive, extracted safely into a
temporary directory that is always removed, previewed or imported, the report on the page.
The reader is replaced by one returning a Found built here (tests/test_import_store.py's Home)."""

import io
import os
import stat
import tarfile
import tempfile
import uuid
import zipfile
from pathlib import Path
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from certs import importers
from certs.importers import archive as archive_import
from certs.importers.found import Problem
from certs.models import Certificate
from tests.test_import_acmesh import FIXTURE as ACMESH_FIXTURE
from tests.test_import_certbot import ConfigDir
from tests.test_import_store import Home, Pki

URL = reverse("ui:import")


@pytest.fixture(scope="module")
def pki():
    return Pki()


@pytest.fixture
def admin_client(client, django_user_model):
    admin = django_user_model.objects.create_superuser("root", password="pw-root-123")
    client.force_login(admin)
    client.user = admin
    return client


@pytest.fixture
def reader(pki):
    """The reader: remembers the directory it was given, and finds one certificate there with
    a note about one of its files."""
    home = Home(pki)
    home.add(["a.example.com"], challenge="http-01-standalone")
    seen = []

    def read(path, confined=False):
        assert confined  # the page never reads the server's files a conf names
        seen.append(Path(path))
        home.certificates[0].notes = [Problem(f"{path}/a.example.com/a.example.com.conf", "Le_PreHook dropped", 3)]
        found = home.found()
        found.root = path
        return found

    with mock.patch.object(importers, "reader", return_value=read) as patched:
        patched.seen = seen
        yield patched


def _tar_gz(files, links=(), name="home.tar.gz"):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for path, target in links:
            info = tarfile.TarInfo(path)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return SimpleUploadedFile(name, buffer.getvalue())


def _zip(files, name="home.zip", links=()):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, target in links:
            info = zipfile.ZipInfo(path)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
        for path, text in files.items():
            archive.writestr(path, text)
    return SimpleUploadedFile(name, buffer.getvalue())


ACMESH_HOME = {"acmesh-home/account.conf": "", "acmesh-home/a.example.com/a.example.com.conf": "Le_Domain='a'\n"}


def _post(client, archive, action="preview", owner=None):
    return client.post(URL, {"archive": archive, "client": "", "owner": (owner or client.user).pk,
                             "action": action})


def test_the_preview_shows_what_would_be_created_and_stores_nothing(admin_client, reader):
    response = _post(admin_client, _tar_gz(ACMESH_HOME))

    assert response.status_code == 200
    page = response.content.decode()
    assert "Preview: nothing was stored" in page and "would create" in page
    # Paths are those of the archive, not of the temporary directory it was unpacked in.
    assert "acmesh-home/a.example.com/a.example.com.conf:3: Le_PreHook dropped" in page
    assert "certpanel-import-" not in page
    assert "The acme.sh files in home.tar.gz: acmesh-home." in page
    assert not Certificate.objects.exists()
    reader.assert_called_with(importers.ACMESH)
    assert reader.seen[0].name == "acmesh-home" and not reader.seen[0].exists()  # removed afterwards


def test_import_stores_the_certificates_for_the_chosen_owner(admin_client, reader):
    home = dict(ACMESH_HOME)
    response = _post(admin_client, _zip(home), action="import")

    page = response.content.decode()
    assert "Import report" in page and "created" in page
    assert Certificate.objects.get().domains == ["a.example.com"]
    assert Certificate.objects.get().owner == admin_client.user


def test_the_home_may_be_the_archives_top_folder(admin_client, reader):
    _post(admin_client, _tar_gz({"account.conf": "", "a.example.com/a.example.com.conf": ""}, name="h.tgz"))

    assert reader.seen and reader.seen[0].name.startswith("certpanel-import-")


@pytest.mark.parametrize("archive", [
    _zip({"acmesh-home/account.conf": "", "../escaped.conf": "Le_Domain='x'\n"}),
    _tar_gz({"acmesh-home/account.conf": "", "acmesh-home/../../escaped.conf": ""}),
], ids=["zip-dotdot", "tar-dotdot"])
def test_members_outside_the_archives_folder_are_refused(admin_client, reader, archive):
    response = _post(admin_client, archive, action="import")

    page = response.content.decode()
    assert "is refused" in page
    assert not reader.seen and not Certificate.objects.exists()
    assert not (Path(os.sep) / "tmp" / "escaped.conf").exists()


# Each link alone stays inside; together a -> b/c/../.. with b -> . leads to the folder above.
ESCAPE = f"escaped-{uuid.uuid4().hex}.conf"
CHAIN = [("a", "b/c/../.."), ("b", ".")]


@pytest.mark.parametrize("archive", [
    _zip({"c/": "", f"a/{ESCAPE}": "written outside"}, links=CHAIN),
    _tar_gz({"c/keep": "", f"a/{ESCAPE}": "written outside"}, links=CHAIN),
], ids=["zip", "tar"])
def test_a_chain_of_links_cannot_lead_outside(admin_client, reader, archive):
    response = _post(admin_client, archive, action="import")

    assert response.status_code == 200
    assert not (Path(tempfile.gettempdir()) / ESCAPE).exists()
    assert not reader.seen  # what is left is no acme.sh home


def test_an_absolute_link_is_left_out_and_the_rest_imports(admin_client, reader):
    # certbot links an old Let's Encrypt account folder to the new one by its absolute path.
    archive = _tar_gz(ACMESH_HOME, links=[("acmesh-home/ca/old", "/etc/letsencrypt/accounts/old")])

    response = _post(admin_client, archive, action="import")

    page = response.content.decode()
    assert reader.seen
    assert "Left out of the archive" in page
    assert "acmesh-home/ca/old → /etc/letsencrypt/accounts/old: this link leads outside" in page


@pytest.mark.parametrize("make", [_zip, _tar_gz], ids=["zip", "tar"])
def test_certbots_live_links_into_archive_are_kept(make):
    upload = make({"le/archive/a.test/cert1.pem": "PEM"},
                  links=[("le/live/a.test/cert.pem", "../../archive/a.test/cert1.pem")])

    with archive_import.extracted(upload) as (root, left_out):
        assert (root / "le/live/a.test/cert.pem").read_text() == "PEM" and not left_out


def test_a_hard_link_to_a_file_outside_is_refused(admin_client, reader):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("acmesh-home/account.conf")
        info.type, info.linkname = tarfile.LNKTYPE, "/etc/passwd"
        tar.addfile(info)

    response = _post(admin_client, SimpleUploadedFile("home.tar", buffer.getvalue()), action="import")

    assert "holds neither" in response.content.decode() and not reader.seen  # account.conf was left out


def test_a_corrupt_or_foreign_archive_is_named_clearly(admin_client, reader):
    corrupt = _post(admin_client, SimpleUploadedFile("home.tar.gz", b"\x1f\x8b not really gzip"))
    foreign = _post(admin_client, _tar_gz({"notes/readme.txt": "hello"}))
    wrong_suffix = _post(admin_client, SimpleUploadedFile("home.rar", b"Rar!"))

    assert "it is damaged" in corrupt.content.decode()
    assert "The archive holds neither an acme.sh home" in foreign.content.decode()
    assert "Upload a .tar.gz, .tgz, .tar or .zip file." in wrong_suffix.content.decode()
    assert not reader.seen


def test_the_chosen_client_must_match_the_files(admin_client, reader):
    response = admin_client.post(URL, {"archive": _tar_gz(ACMESH_HOME), "client": importers.CERTBOT,
                                       "owner": admin_client.user.pk, "action": "preview"})

    assert "The archive does not hold a certbot config dir" in response.content.decode()


def test_the_page_is_for_administrators_only(alice_client, reader):
    assert alice_client.get(URL).status_code == 403
    assert alice_client.post(URL, {"archive": _tar_gz(ACMESH_HOME), "action": "import"}).status_code == 403
    assert not reader.seen and not Certificate.objects.exists()


def test_the_admin_navigation_links_the_page(admin_client):
    assert URL in admin_client.get(reverse("ui:dashboard")).content.decode()


def test_the_preview_of_a_home_written_by_acmesh(admin_client, settings, tmp_path):
    """The real reader on /work/shared/fixtures' acme.sh home: what can come over, and what to change."""
    settings.WEBROOT_ROOTS = [tmp_path]
    archive = SimpleUploadedFile("acmesh.tar.gz", ACMESH_FIXTURE.read_bytes())

    page = _post(admin_client, archive).content.decode()

    assert "Certificates: 2 would create, 1 not imported" in page
    assert "Cloudflare credentials (auth_token, zone_id) from acme.sh dns_cf" in page
    assert "acmesh-home/sample.test_ecc/sample.test.conf: webroot:" in page
    assert "add /var/www/sample to CERTPANEL_WEBROOT_ROOTS" in page
    assert not Certificate.objects.exists()


def test_the_report_reads_in_the_pages_language(admin_client, settings, tmp_path):
    """A Chinese page gets the report's own lines in Chinese too; paths, setting names and
    the client's values stay as they are written."""
    settings.WEBROOT_ROOTS = [tmp_path]
    admin_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    archive = SimpleUploadedFile("acmesh.tar.gz", ACMESH_FIXTURE.read_bytes())

    page = _post(admin_client, archive).content.decode()

    assert "证书：将创建 2 项, 未导入 1 项" in page
    assert "来自 acme.sh dns_cf 的 Cloudflare 凭据（auth_token, zone_id）" in page
    assert "如需导入，请把 /var/www/sample 加入 CERTPANEL_WEBROOT_ROOTS" in page
    assert "would create" not in page and "not carried over" not in page


def test_an_archive_too_big_for_one_request_points_to_the_command(admin_client, reader, monkeypatch):
    monkeypatch.setattr(archive_import, "MAX_PAGE_CERTIFICATES", 0)

    response = _post(admin_client, _tar_gz(ACMESH_HOME), action="import")

    assert "This archive holds more certificates (1) than this page imports at once (0)" in response.content.decode()
    assert "manage.py import_acmesh PATH" in response.content.decode()
    assert not Certificate.objects.exists()


def test_a_credentials_file_the_conf_names_on_this_server_is_not_read(admin_client, tmp_path):
    """The real certbot reader: an uploaded conf naming a credentials file that happens to exist on
    this server gets a problem saying where to put it, not this server's credentials."""
    certbot_dir = ConfigDir(tmp_path / "letsencrypt")
    ini = certbot_dir.dns("zone", "cloudflare", {"api_token": "this-servers-token"})  # beside the dir
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(certbot_dir.root, arcname="letsencrypt")

    response = _post(admin_client, SimpleUploadedFile("le.tar.gz", buffer.getvalue()), action="import")

    page = response.content.decode()
    assert "Certificates: 1 not imported" in page
    assert (f"letsencrypt/renewal/zone.conf:14: dns_cloudflare_credentials names {ini}, outside the uploaded "
            "config dir, so it is not read from this server: put the file into the archive as "
            "letsencrypt/cloudflare.ini") in page
    assert "manage.py import_certbot PATH" in page and "certpanel-import-" not in page
    assert not Certificate.objects.exists()
