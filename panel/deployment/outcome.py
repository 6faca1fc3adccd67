"""What a certificate's owner sees of its deployment: a version nginx cannot be given yet
(its files could not be written) is the certificate's error, and a line in the log of the
order that issued it, until a later apply installs it."""

from django.utils.translation import gettext_noop

from certs.models import Certificate
from certs.problems import Failure

NOT_DEPLOYED = "Not yet served by nginx: "  # how the certificate's error starts, in English


def record_failure(version, error):
    """Show `error` (why the version's files could not be written) once per failure."""
    message = gettext_noop("Not yet served by nginx: the certificate's files could not be "
                           "written; the panel keeps trying. Check the disk space and the "
                           "permissions of the data directory.")
    failure = Failure(message, {"raw": error})
    message = failure.english()
    if Certificate.objects.filter(pk=version.certificate_id).exclude(last_error=message).update(
            last_error=message, last_failure=failure.as_json()):
        if version.order is not None:
            version.order.log(gettext_noop("nginx cannot serve this certificate yet, retrying: %(error)s"),
                              level="error", error=error)


def record_success(version):
    """The version is installed: clear a deployment error shown before."""
    shown = Certificate.objects.filter(pk=version.certificate_id,
                                       last_error__startswith=NOT_DEPLOYED)
    if shown.update(last_error="", last_failure=None):
        if version.order is not None:
            version.order.log(gettext_noop("Certificate installed in nginx"))
