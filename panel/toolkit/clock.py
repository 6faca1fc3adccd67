"""The time renewal decisions are made at.

Production: the real time. End-to-end tests set CERTPANEL_TEST_CLOCK_FILE and write
an ISO time into it, so a certificate can become due without anyone sleeping for
years; only renewal scheduling reads this clock, never ACME or claims.
"""

import datetime
from pathlib import Path

from django.conf import settings
from django.utils import timezone


def now() -> datetime.datetime:
    path = settings.TEST_CLOCK_FILE
    if path:
        try:
            text = Path(path).read_text().strip()
        except FileNotFoundError:
            text = ""
        if text:
            return datetime.datetime.fromisoformat(text)
    return timezone.now()
